"""The MedFusion-Mamba predictor: load a model directory (sha256-verified), predict one patient.

Kept as a candidate architecture (its nested-CV row is in ``docs/results.md``); the shipped model is the
JSON :class:`inference.fusion.outcome_model.OutcomePredictor`.

A model directory holds ``model.pt`` (state dict), ``config.json`` (model config + EHR normaliser),
``calibration.json`` (temperature per head, Mondrian conformal calibration scores per outcome, severity
conformal residuals) and ``manifest.json`` (sha256 of each file). The shipped model is checked against
the sha256 values in the package code (``inference.fusion.shipped``: a manifest next to the files is
rewritten as easily as the files); a model trained into another folder is checked against its own
manifest (a half-copied or corrupted model is never used). The error says which check failed. The
shipped folder holds the outcome predictor's files, so this loader refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inference.errors import ModelLoadError
from inference.fusion.cohort import OUTCOMES, ImageRecord, Patient
from inference.fusion.dataset import Batch, EHRNormaliser, make_batch
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.results import OUTCOME_TITLES, ConformalSetWording, SeverityPrediction
from inference.fusion.shipped import sha256_of, verify_files
from inference.fusion.tent import tent_adapt
from inference.gpu_fallback import run_with_gpu_fallback
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal

# The MedFusion-Mamba model's files (a candidate architecture; the shipped model is the JSON outcome predictor).
MODEL_FILES = ("model.pt", "config.json", "calibration.json")
SEVERITY_RANGES = {"geographic_extent": 8.0, "opacity": 6.0}


@dataclass
class PatientInput:
    """One patient as the app or CLI knows it: EHR values (missing = None/absent) and image features."""

    patient_id: str
    ehr: dict[str, float | str | None] = field(default_factory=dict)
    images: list[tuple[str, float | None, np.ndarray]] = field(default_factory=list)  # (name, offset, features)


@dataclass
class OutcomePrediction(ConformalSetWording):
    name: str
    title: str
    probability: float
    prediction_set: frozenset[int]


@dataclass
class Prediction:
    outcomes: list[OutcomePrediction]
    severity: list[SeverityPrediction]
    gate: float  # weight of the image path (0 = EHR only, 1 = image only)
    step_weights: list[float]  # per image in time order
    alpha: float
    tent: bool = False


class FusionPredictor:
    """Configured once from a model directory, then called per patient."""

    def __init__(self, model: MedFusionModel, normaliser: EHRNormaliser, scalers: list[TemperatureScaler],
                 conformal: list[MondrianConformal | None], severity: list[ConformalRegressor | None],
                 model_id: str) -> None:
        self.model = model.eval()
        self.normaliser = normaliser
        self.scalers = scalers
        self.conformal = conformal
        self.severity_conformal = severity
        self.model_id = model_id
        self.on_message: Callable[[str], None] | None = None  # hears a GPU-out-of-memory → CPU fallback

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path, extra: dict | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), directory / "model.pt")
        (directory / "config.json").write_text(json.dumps(
            {"model": self.model.config.to_dict(), "normaliser": self.normaliser.to_dict(),
             "outcomes": list(OUTCOMES), "model_id": self.model_id, **(extra or {})}, indent=2))
        (directory / "calibration.json").write_text(json.dumps({
            "temperature": [s.to_dict() for s in self.scalers],
            "conformal": [c.to_dict() if c else None for c in self.conformal],
            "severity": [r.to_dict() if r else None for r in self.severity_conformal],
        }))
        manifest = {name: sha256_of(directory / name) for name in MODEL_FILES}
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, directory: Path) -> FusionPredictor:
        directory = Path(directory)
        verify_files(directory, MODEL_FILES, "Fusion model")
        try:
            config_raw = json.loads((directory / "config.json").read_text())
            calib = json.loads((directory / "calibration.json").read_text())
            model = MedFusionModel(FusionConfig.from_dict(config_raw["model"]))
            model.load_state_dict(torch.load(directory / "model.pt", weights_only=True), strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ModelLoadError(f"Fusion model in {directory} does not match this version's architecture.") from err
        return cls(
            model, EHRNormaliser(**config_raw["normaliser"]),
            [TemperatureScaler.from_dict(d) for d in calib["temperature"]],
            [MondrianConformal.from_dict(d) if d else None for d in calib["conformal"]],
            [ConformalRegressor.from_dict(d) if d else None for d in calib["severity"]],
            config_raw.get("model_id", directory.name),
        )

    # ---- prediction --------------------------------------------------------------------------
    def batch_for(self, patient: PatientInput, modalities: str = "both") -> Batch:
        features = {name: f for name, _, f in patient.images}
        record = Patient(patient.patient_id, dict(patient.ehr) if modalities != "image" else {},
                         [ImageRecord(name, offset) for name, offset, _ in patient.images])
        return make_batch([record], features.get, self.normaliser, self.model.config.feature_dim,
                          use_images=modalities != "ehr")

    def forward_fn(self, batch: Batch):  # noqa: ANN201 - returns a closure for explainers
        """(features, numeric) → logits, other inputs fixed: the tuple-of-modalities form explainers take."""
        def fn(features: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
            n = features.shape[0]
            rep = lambda t: t.expand(n, *t.shape[1:])  # noqa: E731
            return self.model(features, rep(batch.times), rep(batch.image_mask), numeric,
                              rep(batch.categorical), rep(batch.ehr_missing)).logits
        return fn

    def predict(self, patient: PatientInput, alpha: float = 0.1, tent: bool = False,
                modalities: str = "both") -> Prediction:
        batch = self.batch_for(patient, modalities)
        model = tent_adapt(self.model, batch.model_inputs()) if tent else self.model
        out = run_with_gpu_fallback(_forward, model, batch.model_inputs(), on_message=self.on_message)
        logits = out.logits[0].detach().cpu().numpy()
        outcomes = []
        for k, name in enumerate(OUTCOMES):
            prob = float(self.scalers[k].transform(np.array([logits[k]]))[0])
            conformal = self.conformal[k]
            pset = conformal.predict_set(np.array([prob]), alpha=alpha)[0] if conformal else frozenset()
            outcomes.append(OutcomePrediction(name, OUTCOME_TITLES[name], prob, pset))
        severity = []
        for j, names in enumerate(batch.filenames[0]):
            values = {}
            for s, (sname, top) in enumerate(SEVERITY_RANGES.items()):
                estimate = float(np.clip(out.severity[0, j, s].item() * top, 0.0, top))
                reg = self.severity_conformal[s]
                if reg is not None:
                    lo, hi = reg.interval(np.array([estimate]), alpha=alpha)
                    values[sname] = (estimate, float(lo[0]), float(hi[0]))
                else:
                    values[sname] = (estimate, 0.0, top)
            severity.append(SeverityPrediction(names, values))
        weights = out.step_weights[0, : len(batch.filenames[0])].tolist()
        return Prediction(outcomes, severity, float(out.gate[0]), weights, alpha, tent)


def _forward(model: MedFusionModel, inputs: tuple[torch.Tensor, ...]):  # noqa: ANN202 - the model's output type
    """One no-grad pass with the inputs on the model's device (the CPU again after an out-of-memory fallback)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(*(t.to(device) for t in inputs))
