"""Explainers configured once per method for one model function, and attribution grids → image heat-maps.

Moved here from the app (issue 16): the viewer only calls it. ``ExplainerCache`` builds each Captum-based
explainer once per (method, input shape) — the "configured once" rule — and ``heatmap`` turns an
attribution on a model grid into a [0, 1] map of the image's size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from inference.explain.captum_explainers import GradientShapExplainer, OcclusionExplainer
from inference.explain.integrated_gradients import IntegratedGradientsExplainer
from inference.explain.visual import attribution_to_heatmap, rank_features
from inference.progress import CancelToken, ProgressCallback


class ExplainerCache:
    """One explainer per method for a given model function."""

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
