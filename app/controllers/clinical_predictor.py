"""Adapter between the viewer's clinical loop and ``inference.fusion`` (the shipped fusion predictor).

The controller speaks :class:`~app.controllers.clinical.CasePredictor` (case + EHR + masks in, a
:class:`PredictionState` / :class:`ExplanationResult` out); this module turns those into the fusion
predictor's inputs and back, and runs the ``inference.explain`` explainers (configured once per method).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from inference.errors import ModelLoadError
from inference.explain import (
    GradientShapExplainer,
    IntegratedGradientsExplainer,
    OcclusionExplainer,
    attribution_to_heatmap,
    rank_features,
)
from inference.progress import CancelToken, ProgressCallback
from inference.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO_ROOT / "resources" / "models" / "fusion"


class ExplainerCache:
    """One explainer per method for a given model function (the 'configured once' rule)."""

    def __init__(self, model_fn: Callable[..., torch.Tensor], image_window: int = 8, n_steps: int = 24) -> None:
        self.model_fn = model_fn
        self.image_window = image_window
        self.n_steps = n_steps
        self._cache: dict[str, object] = {}

    def get(self, method: str, image_shape: tuple[int, ...]) -> object:
        """``image_shape`` without the batch axis: (T, C, h, w); occlusion patches are w×w per time step."""
        key = f"{method}:{image_shape}"
        if key not in self._cache:
            if method == "ig":
                self._cache[key] = IntegratedGradientsExplainer(self.model_fn, n_steps=self.n_steps, steps_per_chunk=8)
            elif method == "occlusion":
                w = self.image_window
                window = (1, image_shape[1], w, w)
                self._cache[key] = OcclusionExplainer(self.model_fn, sliding_window_shapes=(window, (1,)))
            elif method == "gradshap":
                self._cache[key] = GradientShapExplainer(self.model_fn, n_samples=16, samples_per_chunk=8)
            else:
                raise ValueError(f"unknown explanation method {method!r}")
        return self._cache[key]

    def attribute(
        self, method: str, images: torch.Tensor, ehr: torch.Tensor, extra: tuple, target: int,
        names: list[str], progress: ProgressCallback, cancel: CancelToken | None,
    ) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """``images`` [1, T, C, h, w], ``ehr`` [1, F] → image attributions [T, C, h, w], ranked EHR attributions."""
        explainer = self.get(method, tuple(images.shape[1:]))
        if method == "gradshap":
            dist = (torch.zeros((4, *images.shape[1:])), torch.zeros((4, *ehr.shape[1:])))
            explainer.baselines = dist  # type: ignore[attr-defined]
        res = explainer((images, ehr), target=target, additional_forward_args=extra,  # type: ignore[operator]
                        progress=progress, cancel=cancel)
        img_attr = res[0][0].detach().cpu().numpy()  # [T, C, h, w]
        ehr_attr = res[1][0].detach().cpu().numpy().reshape(-1)
        return img_attr, rank_features(ehr_attr, names)


def heatmap(attr: np.ndarray, shape: tuple[int, int], crop: tuple[int, int] | None = None) -> np.ndarray:
    """[C, h, w] attribution → [0,1] map of the image ``shape`` (``crop``: the valid top-left part of the grid)."""
    grid = attribution_to_heatmap(attr, mode="abs")
    if crop is not None:
        grid = grid[: max(1, crop[0]), : max(1, crop[1])]
    t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def load_case_predictor(settings: Settings, model_dir: Path = MODEL_DIR):  # noqa: ANN201 - CasePredictor
    """The shipped fusion predictor wrapped for the viewer; :class:`ModelLoadError` when it is not installed."""
    # PREDICTION WIRING: app/controllers/fusion_adapter.py maps FusionPredictor <-> PredictionState.
    try:
        from app.controllers.fusion_adapter import FusionCaseAdapter
        from inference.fusion.predictor import FusionPredictor  # noqa: F401 - presence check
    except ImportError as exc:
        raise ModelLoadError(
            "The outcome prediction model is not installed in this build, so no prediction can be made."
        ) from exc
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"The outcome model files were not found in '{model_dir}'.")
    return FusionCaseAdapter.load(model_dir, settings)
