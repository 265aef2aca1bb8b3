"""The shipped outcome predictor as the viewer's :class:`~app.controllers.clinical.CasePredictor`.

All model work happens in :mod:`inference.fusion.service` (features through the one case builder and its
cache, per-outcome models, conformal sets, attributions restricted to the lungs); this adapter only turns a
:class:`ClinicalCase` into pixels + masks + EHR and the answers into the app's :class:`PredictionState` /
:class:`ExplanationResult`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.model.clinical import ClinicalCase, ExplanationResult, OutcomeResult, PredictionState
from inference.errors import ModelLoadError
from inference.progress import CancelToken, ProgressCallback
from inference.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO_ROOT / "resources" / "models" / "fusion"


class FusionCaseAdapter:
    """Configured once (the :class:`OutcomeService`); ``predict`` / ``explain`` per case."""

    def __init__(self, service: object, model_dir: Path) -> None:
        from inference.fusion.service import OutcomeService

        assert isinstance(service, OutcomeService)
        self.service = service
        self.model_dir = Path(model_dir)
        self.actor = f"AI:{service.model_id}"
        self.base_rates: dict[str, float] = dict(service.base_rates)
        # the diagrams `train --figures` wrote: beside the model, else in docs/figures (source checkout)
        pngs = sorted(self.model_dir.glob("reliability_*.png")) or sorted(
            (REPO_ROOT / "docs" / "figures").glob("reliability_*.png"))
        self.reliability_pngs: dict[str, Path] = {p.stem.removeprefix("reliability_"): p for p in pngs}
        cards = [self.model_dir / "MODEL_CARD.md", self.model_dir / "model_card.md", REPO_ROOT / "docs" / "model_card.md"]
        self.model_card: Path | None = next((c for c in cards if c.is_file()), None)

    @classmethod
    def load(cls, model_dir: Path, settings: Settings) -> FusionCaseAdapter:
        from inference.fusion.service import OutcomeService
        from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter

        return cls(OutcomeService.load(model_dir, settings, lung_segmenter=load_shared_lung_segmenter), model_dir)

    def _inputs(self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray],
                cancel: CancelToken | None) -> tuple[dict, list]:
        from inference.fusion.case import ImageInput
        from inference.io.loader import open_image

        values = dict(ehr)
        values.setdefault("view", case.images[0].view if case.images else None)
        images = []
        for im in case.images:
            if cancel is not None:
                cancel.raise_if_cancelled()
            pixels = open_image(im.path).array[0]
            mask = masks.get(im.filename)
            images.append(ImageInput(im.filename, im.offset, pixels,
                                     mask if mask is not None and mask.shape == pixels.shape else None))
        return values, images

    def predict(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], alpha: float, tent: bool,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> PredictionState:
        """``tent`` is accepted for the controller's sake; the shipped models have nothing to adapt."""
        values, images = self._inputs(case, ehr, masks, cancel)
        pred, record = self.service.predict(case.patient_id, values, images, alpha, "both", progress, cancel)
        return PredictionState(
            outcomes={o.name: OutcomeResult(o.name, o.probability, frozenset(o.prediction_set), dict(o.sets))
                      for o in pred.outcomes},
            alpha=alpha, tent=False,
            severity={s.filename: s.values.get("geographic_extent", (0.0, 0.0, 0.0)) for s in pred.severity},
            gate=pred.gate, time_weights=self.service.predictor.time_weights(record),
            used_images=list(record.filenames), model_version=self.service.model_id,
        )

    def explain(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], outcome: str, method: str,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> ExplanationResult:
        """Lung-occlusion attribution whatever ``method`` was asked (the shipped models are not differentiable
        end to end); the result says so in its ``method``."""
        values, images = self._inputs(case, ehr, masks, cancel)
        ex = self.service.explain(case.patient_id, values, images, outcome, "both", progress, cancel)
        ehr_ranked = list(ex.ehr) + [(name, 0.0) for name in ex.missing]
        return ExplanationResult(
            "occlusion", outcome, {n: np.abs(m.values) for n, m in ex.image_maps.items()}, ehr_ranked,
            ex.time_weights, ex.image_share,
            signed_heatmaps={n: m.values for n, m in ex.image_maps.items()},
            lungs={n: m.lungs for n, m in ex.image_maps.items()},
            mask_sources={n: m.mask_source for n, m in ex.image_maps.items()},
        )


def load_case_predictor(settings: Settings, model_dir: Path = MODEL_DIR) -> FusionCaseAdapter:
    """The shipped outcome predictor wrapped for the viewer; :class:`ModelLoadError` when it is not installed."""
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"The outcome model files were not found in '{model_dir}'.")
    return FusionCaseAdapter.load(model_dir, settings)
