"""The shipped :class:`~inference.fusion.predictor.FusionPredictor` as the viewer's ``CasePredictor``.

Prediction: per image, LiteMedSAM features pooled in the current mask (cached on disk by image + mask hash,
so after a mask edit only that image is re-encoded), the EHR with the user's what-if values (missing stays
missing), then the calibrated, conformal prediction.

Explanation: the pooled features are not pixels, so attributions are taken on the encoder's 64×64
embedding grid of every image in the sequence, through a differentiable copy of the ROI pooling and the
fusion model; the grid attribution is cropped to the image area and resized onto the X-ray.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from app.controllers.clinical_predictor import ExplainerCache, heatmap
from app.model.clinical import ClinicalCase, ExplanationResult, OutcomeResult, PredictionState
from inference.fusion.cohort import NUMERIC_FIELDS, OUTCOMES
from inference.fusion.features import EMBED_GRID, FeatureExtractor, embedding_roi_weights
from inference.fusion.predictor import FusionPredictor, PatientInput
from inference.io.loader import open_image
from inference.models.preprocess import MODEL_SIDE, preprocess_slice
from inference.progress import CancelToken, ProgressCallback, scaled
from inference.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def pool_torch(emb: torch.Tensor, inside: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Differentiable twin of ``pool_embedding``: emb [B, T, C, 64, 64], inside [T, 64, 64] → [B, T, 2C+1]."""
    feats = []
    for t in range(emb.shape[1]):
        flat = emb[:, t][:, :, inside[t]]  # [B, C, N]
        a = area[t].expand(emb.shape[0], 1)
        feats.append(torch.cat([flat.mean(dim=2), flat.max(dim=2).values, a], dim=1))
    return torch.stack(feats, dim=1)


class FusionCaseAdapter:
    """Configured once (predictor + encoder + explainers); ``predict``/``explain`` per case."""

    def __init__(self, predictor: FusionPredictor, model_dir: Path, settings: Settings) -> None:
        self.fusion = predictor
        self.model_dir = Path(model_dir)
        self.settings = settings
        self.actor = f"AI:{predictor.model_id}"
        # the diagrams `train --figures` wrote: beside the model, else in docs/figures (source checkout)
        pngs = sorted(self.model_dir.glob("reliability_*.png")) or sorted(
            (REPO_ROOT / "docs" / "figures").glob("reliability_*.png"))
        self.reliability_pngs: dict[str, Path] = {p.stem.removeprefix("reliability_"): p for p in pngs}
        cards = [self.model_dir / "MODEL_CARD.md", self.model_dir / "model_card.md", REPO_ROOT / "docs" / "model_card.md"]
        self.model_card: Path | None = next((c for c in cards if c.is_file()), None)
        self._encoder: torch.nn.Module | None = None
        self._extractor: FeatureExtractor | None = None
        self._embeddings: dict[str, torch.Tensor] = {}  # image content hash -> embedding (explain reuses)

    @classmethod
    def load(cls, model_dir: Path, settings: Settings) -> FusionCaseAdapter:
        return cls(FusionPredictor.load(model_dir), model_dir, settings)

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            from inference.models.device import select_device
            from inference.models.litemedsam import load_litemedsam

            self._encoder = load_litemedsam(select_device(self.settings.device))
            self._extractor = FeatureExtractor(self._encoder, self.settings.resolved_cache_dir() / "fusion_features")
        return self._extractor

    def _patient(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray],
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> tuple[PatientInput, dict[str, np.ndarray]]:
        values = dict(ehr)
        values.setdefault("view", case.images[0].view if case.images else None)
        arrays: dict[str, np.ndarray] = {}
        images = []
        for i, im in enumerate(case.images):
            if cancel is not None:
                cancel.raise_if_cancelled()
            arrays[im.filename] = open_image(im.path).array[0]
            mask = masks.get(im.filename)
            if mask is not None and mask.shape != arrays[im.filename].shape:
                mask = None
            images.append((im.filename, im.offset, self.extractor(arrays[im.filename], mask)))
            progress((i + 1) / max(1, len(case.images)), f"image features {i + 1}/{len(case.images)}")
        return PatientInput(case.patient_id, values, images), arrays

    def predict(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], alpha: float, tent: bool,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> PredictionState:
        patient, _ = self._patient(case, ehr, masks, scaled(progress, 0.0, 0.9), cancel)
        pred = self.fusion.predict(patient, alpha=alpha, tent=tent)
        used = self.fusion.batch_for(patient).filenames[0]
        progress(1.0, "prediction done")
        return PredictionState(
            outcomes={o.name: OutcomeResult(o.name, o.probability, frozenset(o.prediction_set)) for o in pred.outcomes},
            alpha=alpha, tent=tent,
            severity={s.filename: s.values.get("geographic_extent", (0.0, 0.0, 0.0)) for s in pred.severity},
            gate=float(pred.gate), time_weights=dict(zip(used, pred.step_weights, strict=False)),
            used_images=list(used), model_version=self.fusion.model_id,
        )

    def explain(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], outcome: str, method: str,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> ExplanationResult:
        from inference.models.litemedsam import encode

        patient, arrays = self._patient(case, ehr, masks, scaled(progress, 0.0, 0.2), cancel)
        batch = self.fusion.batch_for(patient)
        used = batch.filenames[0]
        embs, inside, area, crops = [], [], [], []
        for i, name in enumerate(used):
            if cancel is not None:
                cancel.raise_if_cancelled()
            tensor, info = preprocess_slice(arrays[name], None)
            key = hashlib.sha256(np.ascontiguousarray(arrays[name]).tobytes()).hexdigest()
            if key not in self._embeddings:
                self._embeddings[key] = encode(self.extractor.model, tensor)[0].cpu()  # type: ignore[arg-type]
            embs.append(self._embeddings[key])
            mask = masks.get(name) if masks.get(name) is not None and masks[name].shape == arrays[name].shape else None
            w = torch.from_numpy(embedding_roi_weights(mask, info.original_size, info.new_size))
            ins = w > 0.5 if bool((w > 0.5).any()) else (w > 0 if bool((w > 0).any()) else torch.ones_like(w, dtype=torch.bool))
            inside.append(ins)
            area.append(torch.tensor([float(w.sum()) / EMBED_GRID**2]))
            cell = MODEL_SIDE // EMBED_GRID
            crops.append((-(-info.new_size[0] // cell), -(-info.new_size[1] // cell)))
            progress(0.2 + 0.3 * (i + 1) / len(used), f"image embedding {i + 1}/{len(used)}")
        emb = torch.stack(embs)[None]  # [1, T, C, 64, 64]
        inside_t, area_t = torch.stack(inside), torch.stack(area)
        forward = self.fusion.forward_fn(batch)

        def model_fn(e: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
            return forward(pool_torch(e, inside_t, area_t), numeric)

        explainers = ExplainerCache(model_fn, image_window=16, n_steps=16)
        names = [f[0] for f in NUMERIC_FIELDS]
        attr, ranked = explainers.attribute(
            method, emb, batch.numeric, (), list(OUTCOMES).index(outcome), names, scaled(progress, 0.5, 1.0), cancel
        )
        missing = {n for n, v in zip(names, batch.ehr_missing[0].tolist(), strict=False) if v}
        ranked = [(n, 0.0 if n in missing else v) for n, v in ranked]
        heat = {name: heatmap(attr[t], arrays[name].shape, crops[t]) for t, name in enumerate(used)}
        pred = self.fusion.predict(patient, alpha=0.1)
        return ExplanationResult(method, outcome, heat, ranked, dict(zip(used, pred.step_weights, strict=False)),
                                 float(pred.gate))
