"""What the viewer calls: the shipped outcome predictor + the case builder, predict and explain per case.

The app hands over pixels, optional lung masks and the EHR values it shows (what-if edits included);
everything model-shaped — features, lung masks made automatically, probabilities, conformal sets,
attributions restricted to the lungs — happens here, so the app never touches a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.explain.anatomy import (
    LungAttribution,
    lung_occlusion,
    reference_occlusion,
    restrict_to_lungs,
    scored_pixels,
)
from inference.fusion.case import CaseBuilder, ImageInput, ImageParts, SegmenterFactory
from inference.fusion.cohort import NUMERIC_FIELDS
from inference.fusion.design import PatientRecord
from inference.fusion.normal_lung import NormalisableImage, NormalLungReference, find_reference
from inference.fusion.outcome_model import OutcomePredictor, Prediction
from inference.fusion.shipped import SHIPPED_MODEL_DIR
from inference.progress import CancelToken, ProgressCallback, no_progress, scaled

EXPLANATION_METHOD = "normal-lung reference"  # a cell replaced by a normal lung (inference/fusion/normal_lung.py)
MASK_METHOD = "lung occlusion"  # the earlier method: a cell taken out of the lung mask (no reference file)
REPLACE_EMBEDDING = False  # True: a normal cell also gets the reference's encoder vectors (read worse: docs/results.md)
OCCLUSION_CELL = 24  # px of the 256-px model frame: ~35 lung cells per X-ray (16 px: ~80, 2.3x slower)


@dataclass
class Explanation:
    """Why the model gave this risk, in logit units (positive = towards the outcome)."""

    outcome: str
    probability: float
    image_maps: dict[str, LungAttribution]  # filename → signed map inside the lungs
    ehr: list[tuple[str, float]]  # field → change of the logit against the cohort's typical value
    missing: list[str]  # EHR fields the model saw as missing (no attribution)
    image_share: float  # 0 = the EHR decided, 1 = the X-rays decided
    time_weights: dict[str, float] = field(default_factory=dict)  # filename → share of the image effect
    method: str = EXPLANATION_METHOD


class OutcomeService:
    """Configured once (model folder + feature cache); ``predict`` / ``explain`` per case."""

    def __init__(self, predictor: OutcomePredictor, builder: CaseBuilder,
                 reference: NormalLungReference | None = None, replace_embedding: bool = REPLACE_EMBEDDING) -> None:
        """``reference``: the normal lung the image maps compare against; None = the earlier
        remove-from-the-mask occlusion (kept for comparisons). ``replace_embedding``: whether a normal
        cell also gets the reference's encoder vectors (see :data:`REPLACE_EMBEDDING`)."""
        self.predictor = predictor
        self.builder = builder
        self.reference = reference
        self.replace_embedding = replace_embedding

    @classmethod
    def load(cls, model_dir: Path, settings: object, cache_dir: Path | None = None, *,
             lung_segmenter: SegmenterFactory | None) -> OutcomeService:
        """``lung_segmenter``: see :meth:`CaseBuilder.from_settings` (the app passes
        ``inference.segmentation.cxr_lungs_shared.load_shared_lung_segmenter``). The normal-lung reference
        comes from beside the model, else the shipped one."""
        path = find_reference(model_dir, SHIPPED_MODEL_DIR)
        return cls(OutcomePredictor.load(model_dir),
                   CaseBuilder.from_settings(settings, cache_dir, lung_segmenter=lung_segmenter),
                   NormalLungReference.load(path) if path is not None else None)

    @property
    def explanation_method(self) -> str:
        return EXPLANATION_METHOD if self.reference is not None else MASK_METHOD

    @property
    def base_rates(self) -> dict[str, float]:
        return self.predictor.base_rates

    @property
    def model_id(self) -> str:
        return self.predictor.model_id

    def record(self, patient_id: str, ehr: dict[str, float | str | None], images: Sequence[ImageInput],
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> PatientRecord:
        return self.builder.build(patient_id, ehr, images, progress, cancel)

    def predict(self, patient_id: str, ehr: dict[str, float | str | None], images: Sequence[ImageInput],
                alpha: float = 0.1, modalities: str = "both", progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> tuple[Prediction, PatientRecord]:
        record = self.record(patient_id, ehr, images if modalities != "ehr" else [], scaled(progress, 0.0, 0.9), cancel)
        prediction = self.predictor.predict(record, alpha=alpha, modalities=modalities)
        progress(1.0, "prediction done")
        return prediction, record

    def explain(self, patient_id: str, ehr: dict[str, float | str | None], images: Sequence[ImageInput],
                outcome: str, modalities: str = "both", progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> Explanation:
        record = self.record(patient_id, ehr, images if modalities != "ehr" else [], scaled(progress, 0.0, 0.2), cancel)
        seen, mod = self.predictor.effective(record, modalities)
        head = self.predictor.head(outcome, mod)

        encoders = self.predictor.encoders_for(mod)

        def logit(rec: PatientRecord) -> float:
            return float(head.model.logits([rec], encoders)[0])

        base = logit(seen)
        ehr_attr, missing = self._ehr_attribution(seen, logit, base)
        maps: dict[str, LungAttribution] = {}
        weights: dict[str, float] = {}
        if "image" in head.model.spec.blocks and seen.images:
            by_name = {im.filename: im for im in images}
            for t, name in enumerate(seen.filenames):
                weights[name] = abs(base - logit(_without_image(seen, t)))
                parts = self.builder.image_parts(by_name[name].image, by_name[name].mask)
                if parts.frame_lungs is None or parts.lungs is None:
                    continue  # no lungs found: no map rather than a map outside the body
                step = scaled(progress, 0.2 + 0.8 * t / len(seen.filenames), 0.2 + 0.8 * (t + 1) / len(seen.filenames))
                frame_attr = self.image_attribution(seen, t, parts, logit, step, cancel)
                maps[name] = restrict_to_lungs(frame_attr, parts.lungs, cell=OCCLUSION_CELL, mask_source=parts.source,
                                               scored=scored_pixels(parts.frame_lungs, OCCLUSION_CELL))
            total = sum(weights.values())
            weights = {k: (v / total if total > 1e-9 else 1.0 / len(weights)) for k, v in weights.items()}
        progress(1.0, "explanation done")
        return Explanation(outcome, float(head.probability(np.array([base]))[0]), maps, ehr_attr, missing,
                           self.predictor.image_share(seen, outcome, mod), weights, self.explanation_method)

    def image_logit(self, record: PatientRecord, t: int, parts: ImageParts, logit: Callable[[PatientRecord], float]
                    ) -> Callable[[np.ndarray], float]:
        """The explainer's perturbation of X-ray ``t`` as a function of a (h, w) model-frame pixel mask:
        with a reference, the logit with those lung pixels made normal; without, the logit with those
        pixels as the lung mask (``lung_occlusion``'s convention)."""
        if self.reference is None:
            return lambda lungs: logit(_replace_image(record, t, parts.features(lungs)))
        image = NormalisableImage(self.reference, parts.frame, parts.embedding, parts.frame_lungs, parts.source,  # type: ignore[arg-type]
                                  self.replace_embedding)
        return lambda replace: logit(_replace_image(record, t, image.features(replace)))

    def image_attribution(self, record: PatientRecord, t: int, parts: ImageParts,
                          logit: Callable[[PatientRecord], float], progress: ProgressCallback = no_progress,
                          cancel: CancelToken | None = None) -> np.ndarray:
        """Model-frame signed attribution (logit units) of X-ray ``t`` of ``record``."""
        explainer = lung_occlusion if self.reference is None else reference_occlusion
        return explainer(self.image_logit(record, t, parts, logit), parts.frame_lungs, cell=OCCLUSION_CELL,  # type: ignore[arg-type]
                         progress=progress, cancel=cancel)

    def _ehr_attribution(self, record: PatientRecord, logit, base: float) -> tuple[list[tuple[str, float]], list[str]]:  # noqa: ANN001
        """Per numeric field: logit(value) − logit(cohort median); missing fields get none (listed apart)."""
        medians = dict(zip((f[0] for f in NUMERIC_FIELDS), self.predictor.encoders.ehr.medians, strict=True))
        out, missing = [], []
        for name, median in medians.items():
            value = record.ehr.get(name)
            if value is None:
                missing.append(name)
                continue
            typical = PatientRecord(record.patient_id, {**record.ehr, name: median}, record.images,
                                    record.filenames, record.offsets)
            out.append((name, base - logit(typical)))
        out.sort(key=lambda kv: -abs(kv[1]))
        return out, missing


def _without_image(record: PatientRecord, t: int) -> PatientRecord:
    keep = [i for i in range(len(record.images)) if i != t]
    return PatientRecord(record.patient_id, record.ehr, [record.images[i] for i in keep],
                         [record.filenames[i] for i in keep], [record.offsets[i] for i in keep])


def _replace_image(record: PatientRecord, t: int, features: object) -> PatientRecord:
    images = list(record.images)
    images[t] = features  # type: ignore[call-overload]
    return PatientRecord(record.patient_id, record.ehr, images, record.filenames, record.offsets)
