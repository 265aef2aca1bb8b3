"""The shipped outcome predictor: per outcome, the candidate nested CV chose, for each input modality.

A model folder holds ``config.json`` (ids, outcomes, what was chosen and why), ``model.json`` (fitted
encoders, per-outcome models as coefficients / tree tables, temperatures, conformal calibration scores,
severity regressor intervals) and ``manifest.json`` (sha256 of both; the shipped folder is checked against
the values built into ``inference.fusion.shipped`` instead). Nothing is pickled: every number is read from
JSON and checked, because every file is untrusted.

Per outcome and modality ('both', 'ehr', 'image') there is one :class:`OutcomeModel`, a temperature and a
conformal calibrator (Mondrian or pooled, chosen in training). ``predict`` returns calibrated
probabilities, conformal sets at 80/90/95 % and the training prevalence (``base_rates``) next to them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from inference.errors import ModelLoadError
from inference.fusion import modality_weight
from inference.fusion.candidates import Encoders, OutcomeModel
from inference.fusion.design import SEVERITY_NAMES, SEVERITY_TOP, EHREncoder, ImageEncoder, PatientRecord
from inference.fusion.results import OUTCOME_TITLES, ConformalSetWording, SeverityPrediction
from inference.fusion.shipped import MODEL_FILES, sha256_of, verify_files
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal, conformal_from_dict

MODALITIES = ("both", "ehr", "image")
# Heads trained on X-rays whose lungs were *not* supplied (automatic mask, or none): used when no X-ray of
# the patient came with a supplied mask, so features and calibration match what the model sees.
AUTO_HEADS = ("both/auto", "image/auto")
HEAD_KEYS = MODALITIES + AUTO_HEADS
SET_ALPHAS = (0.2, 0.1, 0.05)
FORMAT = "medfusion-outcomes-v2"


@dataclass
class OutcomeHead:
    """One outcome × modality: the model, its temperature and its conformal calibrator."""

    model: OutcomeModel
    temperature: float
    conformal: MondrianConformal | None
    cv_auroc: float = math.nan

    def probability(self, logits: np.ndarray) -> np.ndarray:
        return expit(np.asarray(logits, np.float64) / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "temperature": self.temperature, "cv_auroc": self.cv_auroc,
                "conformal": self.conformal.to_dict() if self.conformal is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutcomeHead:
        temperature = float(data["temperature"])
        if not (math.isfinite(temperature) and 0.01 <= temperature <= 100):
            raise ValueError("temperature out of range")
        conformal = conformal_from_dict(data["conformal"]) if data.get("conformal") else None
        if conformal is not None:
            for scores in conformal.scores.values():
                if not (np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()):
                    raise ValueError("conformal scores must lie in [0, 1]")
        return cls(OutcomeModel.from_dict(data["model"]), temperature, conformal, float(data.get("cv_auroc", math.nan)))


@dataclass
class OutcomePrediction(ConformalSetWording):
    name: str
    title: str
    probability: float
    sets: dict[float, frozenset[int]]  # alpha → conformal set
    alpha: float
    base_rate: float
    model: str  # the chosen candidate, e.g. "EHR · logistic"

    @property
    def prediction_set(self) -> frozenset[int]:
        return self.sets.get(self.alpha, frozenset({0, 1}))


@dataclass
class Prediction:
    outcomes: list[OutcomePrediction]
    severity: list[SeverityPrediction]
    alpha: float
    modalities: str
    image_share: dict[str, float] = field(default_factory=dict)  # outcome → share of |logit change| from images

    @property
    def gate(self) -> float:
        """Mean image share over outcomes (0 = EHR only, 1 = image only): the viewer's single gauge."""
        return float(np.mean(list(self.image_share.values()))) if self.image_share else 0.0


class OutcomePredictor:
    """Configured once from a model folder; ``predict(record)`` per patient."""

    def __init__(self, encoders: Encoders, heads: dict[str, dict[str, OutcomeHead]], base_rates: dict[str, float],
                 severity: list[ConformalRegressor | None], model_id: str, config: dict[str, Any] | None = None,
                 auto_encoders: Encoders | None = None) -> None:
        self.encoders = encoders
        self.auto_encoders = auto_encoders  # fitted on X-rays without supplied masks, read by the '/auto' heads
        self.heads = heads
        self.base_rates = base_rates
        self.severity_conformal = severity
        self.model_id = model_id
        self.config = config or {}
        self.outcomes = tuple(heads)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path, extra: dict[str, Any] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {"format": FORMAT, "model_id": self.model_id, "outcomes": list(self.outcomes),
                  "base_rates": self.base_rates, "set_alphas": list(SET_ALPHAS), **self.config, **(extra or {})}
        model = {
            "encoders": _encoders_dict(self.encoders),
            "encoders_auto": _encoders_dict(self.auto_encoders) if self.auto_encoders is not None else None,
            "heads": {o: {m: h.to_dict() for m, h in by_mod.items()} for o, by_mod in self.heads.items()},
            "severity": [r.to_dict() if r is not None else None for r in self.severity_conformal],
        }
        (directory / "config.json").write_text(json.dumps(config, indent=1))
        (directory / "model.json").write_text(json.dumps(model, separators=(",", ":")))
        manifest = {name: sha256_of(directory / name) for name in MODEL_FILES}
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, directory: Path) -> OutcomePredictor:
        """Verify every file's sha256 (the shipped folder against the values built into
        ``inference.fusion.shipped``, any other folder against its manifest), then parse and check."""
        directory = Path(directory)
        verify_files(directory, MODEL_FILES, "Outcome model")
        try:
            config = json.loads((directory / "config.json").read_text())
            raw = json.loads((directory / "model.json").read_text())
            if config.get("format") != FORMAT:
                raise ValueError("format")
            encoders = _encoders_from(raw["encoders"])
            auto_encoders = _encoders_from(raw["encoders_auto"]) if raw.get("encoders_auto") else None
            heads = {str(o): {str(m): OutcomeHead.from_dict(h) for m, h in by_mod.items() if m in HEAD_KEYS}
                     for o, by_mod in raw["heads"].items()}
            severity = [ConformalRegressor.from_dict(r) if r else None for r in raw["severity"]]
            base_rates = {str(k): float(v) for k, v in config["base_rates"].items()}
            if len({frozenset(by_mod) for by_mod in heads.values()}) != 1:
                raise ValueError("outcomes ship different sets of heads")
            for outcome, by_mod in heads.items():
                if not set(MODALITIES) <= set(by_mod) or outcome not in base_rates:
                    raise ValueError(f"outcome {outcome} lacks a modality or base rate")
                for key, head in by_mod.items():
                    enc = auto_encoders if key in AUTO_HEADS else encoders
                    if enc is None:
                        raise ValueError("an '/auto' head without its encoders")
                    _check_encoders_cover(head.model, enc)
                    if not np.isfinite(head.model.logits([PatientRecord("check", {})], enc)).all():
                        raise ValueError("a model gives a non-finite logit")
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, AssertionError) as err:
            raise ModelLoadError(f"Outcome model in {directory} does not match this version's format.") from err
        keep = {k: v for k, v in config.items() if k not in ("format", "model_id", "outcomes", "base_rates", "set_alphas")}
        return cls(encoders, heads, base_rates, severity, str(config.get("model_id", directory.name)), keep,
                   auto_encoders)

    # ---- prediction --------------------------------------------------------------------------
    def head(self, outcome: str, modalities: str) -> OutcomeHead:
        return self.heads[outcome][modalities]

    def encoders_for(self, key: str) -> Encoders:
        """The encoders a head reads ('/auto' heads: the ones fitted without supplied masks)."""
        return self.auto_encoders if key in AUTO_HEADS and self.auto_encoders is not None else self.encoders

    def effective(self, record: PatientRecord, modalities: str) -> tuple[PatientRecord, str]:
        """The record the model sees and the head that reads it: 'image' drops the EHR, 'ehr' drops the
        X-rays, no X-ray → 'ehr'; without any supplied lung mask the '/auto' head (when shipped)."""
        if modalities not in HEAD_KEYS:
            raise ValueError(f"modalities must be one of {MODALITIES}")
        base = modalities.split("/")[0]
        if base == "ehr" or not record.images:
            return PatientRecord(record.patient_id, dict(record.ehr)), "ehr"
        seen = record if base == "both" else PatientRecord(record.patient_id, {}, record.images, record.filenames,
                                                            record.offsets)
        supplied = any(im.mask_source == "supplied" for im in record.images)
        auto = f"{base}/auto"
        key = auto if (modalities == auto or not supplied) and auto in self.heads[self.outcomes[0]] else base
        return seen, key

    def logits(self, records: Sequence[PatientRecord], outcome: str, modalities: str = "both") -> np.ndarray:
        """Raw (uncalibrated) logits for several records, all with the given modality head."""
        return self.head(outcome, modalities).model.logits(records, self.encoders_for(modalities))

    def probability(self, record: PatientRecord, outcome: str, modalities: str = "both") -> float:
        rec, mod = self.effective(record, modalities)
        head = self.head(outcome, mod)
        return float(head.probability(head.model.logits([rec], self.encoders_for(mod)))[0])

    def predict(self, record: PatientRecord, alpha: float = 0.1, modalities: str = "both") -> Prediction:
        rec, mod = self.effective(record, modalities)
        outcomes, shares = [], {}
        for name in self.outcomes:
            head = self.head(name, mod)
            p = float(head.probability(head.model.logits([rec], self.encoders_for(mod)))[0])
            alphas = sorted({*SET_ALPHAS, alpha})
            sets = {a: (head.conformal.predict_set(np.array([p]), alpha=a)[0] if head.conformal else frozenset({0, 1}))
                    for a in alphas}
            outcomes.append(OutcomePrediction(name, OUTCOME_TITLES.get(name, name), p, sets, alpha,
                                              self.base_rates[name], head.model.spec.name))
            shares[name] = self.image_share(rec, name, mod)
        return Prediction(outcomes, self.severity_of(rec, alpha), alpha, mod, shares)

    def image_share(self, record: PatientRecord, outcome: str, modalities: str) -> float:
        """The X-rays' weight in this prediction (0 = the clinical values decided, 1 = the X-rays did):
        |logit change when the X-ray features become the cohort's typical ones| over that plus |change
        when the measured clinical values become the cohort medians|. Not "without X-rays": the models
        never saw a patient without one, so that reference put the weight at ~100 % for nearly everyone
        (``inference.fusion.modality_weight`` says more)."""
        if not modalities.startswith("both"):
            return 1.0 if modalities.startswith("image") else 0.0
        return modality_weight.image_share(self.head(outcome, modalities).model, self.encoders_for(modalities), record)

    def time_weights(self, record: PatientRecord, modalities: str = "both") -> dict[str, float]:
        """Per X-ray, its share of the image effect: |logit change when that X-ray is left out|, averaged
        over outcomes and normalised to sum 1 (equal shares when no X-ray changes anything)."""
        rec, mod = self.effective(record, modalities)
        if not rec.images:
            return {}
        shares = np.zeros(len(rec.images))
        for outcome in self.outcomes:
            model, enc = self.head(outcome, mod).model, self.encoders_for(mod)
            full = model.logits([rec], enc)[0]
            for t in range(len(rec.images)):
                keep = [i for i in range(len(rec.images)) if i != t]
                other = PatientRecord(rec.patient_id, rec.ehr, [rec.images[i] for i in keep],
                                      [rec.filenames[i] for i in keep], [rec.offsets[i] for i in keep])
                shares[t] += abs(full - model.logits([other], enc)[0])
        total = float(shares.sum())
        weights = shares / total if total > 1e-9 else np.full(len(shares), 1.0 / len(shares))
        return dict(zip(rec.filenames, weights.tolist(), strict=True))

    def severity_of(self, record: PatientRecord, alpha: float) -> list[SeverityPrediction]:
        encoder = next((e for e in self.encoders.images.values() if e.severity is not None), None)
        out = []
        for name, image in zip(record.filenames, record.images, strict=False):
            values = {}
            estimate = encoder.severity_of(image) if encoder is not None else np.full(2, np.nan)
            for j, (sname, top) in enumerate(zip(SEVERITY_NAMES, SEVERITY_TOP, strict=True)):
                reg = self.severity_conformal[j] if j < len(self.severity_conformal) else None
                if not np.isfinite(estimate[j]):
                    values[sname] = (math.nan, 0.0, top)
                elif reg is not None:
                    lo, hi = reg.interval(np.array([estimate[j]]), alpha=alpha)
                    values[sname] = (float(estimate[j]), float(lo[0]), float(hi[0]))
                else:
                    values[sname] = (float(estimate[j]), 0.0, top)
            out.append(SeverityPrediction(name, values))
        return out


def _encoders_dict(encoders: Encoders) -> dict[str, Any]:
    return {"ehr": encoders.ehr.to_dict(), "images": {k: v.to_dict() for k, v in encoders.images.items()}}


def _encoders_from(raw: dict[str, Any]) -> Encoders:
    return Encoders(EHREncoder.from_dict(raw["ehr"]), {str(k): ImageEncoder.from_dict(v) for k, v in raw["images"].items()})


def _check_encoders_cover(model: OutcomeModel, encoders: Encoders) -> None:
    if model.spec.head == "baseline":
        raise ValueError("the logistic baseline is a reference row, not a shippable model")
    if "image" in model.spec.blocks and model.spec.head != "stack" and model.spec.image_set not in encoders.images:
        raise ValueError(f"no image encoder for feature set {model.spec.image_set}")
    for part in model.parts:
        _check_encoders_cover(part, encoders)
