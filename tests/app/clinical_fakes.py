"""A small, real torch predictor for the clinical UI tests (the shipped fusion model is tested elsewhere).

It reads the case's images and masks, gives the model the EHR with a missing mask, and uses the real
``inference.explain`` explainers and ``MondrianConformal`` sets, so the UI is driven end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.model.clinical import (
    EHR_FIELDS,
    OUTCOMES,
    ClinicalCase,
    ExplanationResult,
    OutcomeResult,
    PredictionState,
)
from inference.explain.cache import ExplainerCache, heatmap
from inference.uncertainty.conformal import MondrianConformal

SIZE = 48
NUMERIC = [f.name for f in EHR_FIELDS if f.numeric]


class TinyFusion(torch.nn.Module):
    """logits[B, K] = spatially weighted mean of the masked image sequence + linear EHR (missing masked)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
        self.register_buffer("spatial", torch.exp(-((xx - 0.4) ** 2 + yy**2) * 3)[None, None])
        self.ehr_w = torch.nn.Parameter(torch.randn(len(NUMERIC), len(OUTCOMES), generator=g) * 0.05)
        self.img_w = torch.nn.Parameter(torch.linspace(-2, 2, len(OUTCOMES)))
        self.time = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, ehr: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        per_t = (images * self.spatial).mean(dim=(2, 3, 4))  # [B, T]
        w = torch.softmax(torch.arange(per_t.shape[1], dtype=per_t.dtype) * 0.3 + self.time, 0)
        img = (per_t * w).sum(1, keepdim=True) * 4 - 1
        return img * self.img_w + (ehr * (1 - missing)) @ self.ehr_w

    def time_weights(self, n: int) -> np.ndarray:
        return torch.softmax(torch.arange(n, dtype=torch.float32) * 0.3 + self.time, 0).detach().numpy()


class TinyCasePredictor:
    actor = "AI:tiny-test-model"
    model_card: Path | None = None

    def __init__(self) -> None:
        self.reliability_pngs: dict[str, Path] = {}
        self.net = TinyFusion().eval()
        self.explainers = ExplainerCache(self.net, image_window=8, n_steps=8)
        rng = np.random.default_rng(0)
        p = rng.uniform(size=400)
        self.conformal = MondrianConformal(alpha=0.1).fit(p, (rng.uniform(size=400) < p).astype(float))
        self.calls = 0

    def _inputs(self, case: ClinicalCase, ehr: dict, masks: dict) -> tuple[torch.Tensor, ...]:
        frames = []
        for im in case.images:
            arr = np.asarray(Image.open(im.path).convert("L").resize((SIZE, SIZE)), np.float32) / 255
            mask = masks.get(im.filename)
            if mask is not None:
                arr = arr * np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((SIZE, SIZE))) / 255
            frames.append(arr)
        images = torch.tensor(np.stack(frames))[None, :, None]
        vals = [ehr.get(n) for n in NUMERIC]
        values = torch.tensor([[float(v) if v is not None else 0.0 for v in vals]])
        missing = torch.tensor([[0.0 if v is not None else 1.0 for v in vals]])
        return images, values, missing

    def predict(self, case, ehr, masks, alpha, tent, progress, cancel) -> PredictionState:  # noqa: ANN001
        self.calls += 1
        images, values, missing = self._inputs(case, ehr, masks)
        with torch.no_grad():
            probs = torch.sigmoid(self.net(images, values, missing))[0].numpy()
        sets = self.conformal.predict_set(probs, alpha=alpha)
        outcomes = {k: OutcomeResult(k, float(p), s) for k, p, s in zip(OUTCOMES, probs, sets, strict=True)}
        names = [im.filename for im in case.images]
        return PredictionState(outcomes, alpha, tent, gate=0.6, used_images=names, model_version="tiny",
                               time_weights=dict(zip(names, self.net.time_weights(len(names)).tolist(), strict=True)))

    def explain(self, case, ehr, masks, outcome, method, progress, cancel) -> ExplanationResult:  # noqa: ANN001
        images, values, missing = self._inputs(case, ehr, masks)
        shapes = [Image.open(im.path).size[::-1] for im in case.images]
        attr, ranked = self.explainers.attribute(
            method, images, values, (missing,), list(OUTCOMES).index(outcome), NUMERIC, progress, cancel
        )
        heat = [heatmap(attr[t], shapes[t]) for t in range(len(shapes))]
        names = [im.filename for im in case.images]
        return ExplanationResult(method, outcome, dict(zip(names, heat, strict=True)), ranked,
                                 dict(zip(names, self.net.time_weights(len(names)).tolist(), strict=True)), 0.6)
