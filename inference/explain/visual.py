"""Turn attributions into what the UI shows: an overlay heat-map and a ranked feature list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import ndimage
from torch import Tensor


def _to_numpy(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def attribution_to_heatmap(
    attr: Tensor | np.ndarray, shape: tuple[int, int] | None = None, *,
    mode: Literal["abs", "signed", "positive"] = "abs", smooth_sigma: float = 1.0,
    clip_percentile: float = 99.0,
) -> np.ndarray:
    """Map a 2-D image attribution (extra leading axes such as batch/channels are summed) to
    float32 in [0, 1] of ``shape`` (H, W) for the viewer overlay.

    ``abs``: importance magnitude; ``positive``: evidence *for* the target only; ``signed``: 0.5 is
    neutral, above pushes towards the target. Values are smoothed (Gaussian, in attribution
    pixels) and scaled by the ``clip_percentile`` of |attr| so one hot pixel cannot wash out the map.
    """
    a = _to_numpy(attr)
    if a.ndim < 2:
        raise ValueError(f"need an image attribution with at least 2 dims, got shape {a.shape}")
    a = a.reshape(-1, *a.shape[-2:]).sum(0)
    if mode == "abs":
        a = np.abs(a)
    elif mode == "positive":
        a = np.clip(a, 0.0, None)
    elif mode != "signed":
        raise ValueError(f"unknown heat-map mode {mode!r}")
    if smooth_sigma > 0:
        a = ndimage.gaussian_filter(a, smooth_sigma)
    if shape is not None and tuple(shape) != a.shape:
        zoom = (shape[0] / a.shape[0], shape[1] / a.shape[1])
        a = ndimage.zoom(a, zoom, order=1, grid_mode=True, mode="nearest")
        a = a[: shape[0], : shape[1]]
    scale = float(np.percentile(np.abs(a), clip_percentile)) if a.size else 0.0
    if not np.isfinite(scale) or scale <= 0:
        return np.full(a.shape, 0.5 if mode == "signed" else 0.0, dtype=np.float32)
    if mode == "signed":
        return (0.5 + 0.5 * np.clip(a / scale, -1.0, 1.0)).astype(np.float32)
    return np.clip(a / scale, 0.0, 1.0).astype(np.float32)


def rank_features(
    attr_vector: Tensor | np.ndarray, names: Sequence[str], top_k: int | None = None
) -> list[tuple[str, float]]:
    """``(name, signed value)`` sorted by |value|, largest first (for the EHR bar chart)."""
    v = _to_numpy(attr_vector)
    if v.ndim > 1:
        v = v.reshape(-1, v.shape[-1]).sum(0)
    if v.shape[0] != len(names):
        raise ValueError(f"{v.shape[0]} attributions for {len(names)} feature names")
    order = np.argsort(-np.abs(v), kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [(names[i], float(v[i])) for i in order]
