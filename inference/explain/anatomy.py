"""Attributions on the anatomy: which part of the lungs moved the risk, restricted to and normalised within
the lung mask.

Why not pixel gradients: the shipped outcome models read lung-zone statistics and pooled embeddings, not
pixels, and trees have no gradient. ``lung_occlusion`` is model-agnostic: it takes one lung cell at a
time out of the lung mask, recomputes the image features and the model's logit, and credits the cell
with the change (logit with the cell − logit without it). Positive = this part of the lungs pushes the
risk *up* (the same meaning as a positive EHR attribution). Outside the lungs the map is exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from inference.progress import CancelToken, ProgressCallback, no_progress


@dataclass
class LungAttribution:
    """Signed map in [-1, 1] of the image's size, 0 outside ``lungs``; ``scale`` = logit change of ±1."""

    values: np.ndarray  # (H, W) float32
    lungs: np.ndarray  # (H, W) bool
    scale: float
    mask_source: str = "supplied"  # "supplied" | "auto"

    def positive(self) -> np.ndarray:
        """[0, 1] map of the regions that push towards the outcome (what a single-colour overlay shows)."""
        return np.clip(self.values, 0.0, 1.0).astype(np.float32)


def lung_occlusion(
    logit_with_lungs: Callable[[np.ndarray], float], lungs: np.ndarray, cell: int = 16, min_overlap: float = 0.2,
    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
) -> np.ndarray:
    """(h, w) signed attribution (logit units) in the model frame: per ``cell``-pixel square of the lungs,
    ``logit(lungs) − logit(lungs without the square)``; 0 outside the lungs."""
    lungs = np.asarray(lungs, bool)
    h, w = lungs.shape
    attr = np.zeros((h, w), np.float32)
    if not lungs.any():
        return attr
    base = float(logit_with_lungs(lungs))
    cells = [(r, c) for r in range(0, h, cell) for c in range(0, w, cell)
             if lungs[r:r + cell, c:c + cell].mean() >= min_overlap]
    for k, (r, c) in enumerate(cells):
        if cancel is not None:
            cancel.raise_if_cancelled()
        without = lungs.copy()
        without[r:r + cell, c:c + cell] = False
        attr[r:r + cell, c:c + cell] = base - float(logit_with_lungs(without))
        progress((k + 1) / len(cells), f"lung region {k + 1}/{len(cells)}")
    return attr * lungs


def restrict_to_lungs(attr_frame: np.ndarray, lungs: np.ndarray, smooth_cells: float = 0.5, cell: int = 16,
                      mask_source: str = "supplied") -> LungAttribution:
    """Model-frame attribution (h, w) → image-size map (H, W) of ``lungs``: smoothed within the lungs,
    resized, multiplied by the lung mask and divided by its largest |value| inside the lungs."""
    lungs = np.asarray(lungs, bool)
    a = np.asarray(attr_frame, np.float64)
    if smooth_cells > 0:  # normalised convolution: smoothing does not bleed zeros from outside the lungs
        support = (a != 0).astype(np.float64)
        sigma = smooth_cells * cell
        num, den = ndimage.gaussian_filter(a, sigma), ndimage.gaussian_filter(support, sigma)
        a = np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0) * (support > 0)
    t = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    big = F.interpolate(t, size=lungs.shape, mode="bilinear", align_corners=False)[0, 0].numpy() * lungs
    scale = float(np.abs(big[lungs]).max()) if lungs.any() else 0.0
    values = (big / scale if scale > 0 else big).astype(np.float32)
    return LungAttribution(np.clip(values, -1.0, 1.0), lungs, scale, mask_source)
