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
    cells = _scored_cells(lungs, cell, min_overlap)
    for k, (r, c) in enumerate(cells):
        if cancel is not None:
            cancel.raise_if_cancelled()
        without = lungs.copy()
        without[r:r + cell, c:c + cell] = False
        attr[r:r + cell, c:c + cell] = base - float(logit_with_lungs(without))
        progress((k + 1) / len(cells), f"lung region {k + 1}/{len(cells)}")
    return attr * lungs


def _scored_cells(lungs: np.ndarray, cell: int, min_overlap: float) -> list[tuple[int, int]]:
    """Top-left corners of the cells ``lung_occlusion`` scores: those at least ``min_overlap`` lung (a
    cell with a sliver of lung moves the logit too little to be worth a model call)."""
    h, w = lungs.shape
    return [(r, c) for r in range(0, h, cell) for c in range(0, w, cell)
            if lungs[r:r + cell, c:c + cell].mean() >= min_overlap]


def scored_pixels(lungs: np.ndarray, cell: int = 16, min_overlap: float = 0.2) -> np.ndarray:
    """(h, w) bool: the lung pixels ``lung_occlusion`` gives a value (same ``cell`` / ``min_overlap``).
    Passed to :func:`restrict_to_lungs` so a scored cell whose effect is exactly 0 stays 0."""
    lungs = np.asarray(lungs, bool)
    out = np.zeros(lungs.shape, bool)
    for r, c in _scored_cells(lungs, cell, min_overlap):
        out[r:r + cell, c:c + cell] = True
    return out & lungs


def restrict_to_lungs(attr_frame: np.ndarray, lungs: np.ndarray, smooth_cells: float = 0.5, cell: int = 16,
                      mask_source: str = "supplied", scored: np.ndarray | None = None) -> LungAttribution:
    """Model-frame attribution (h, w) → image-size map (H, W) of ``lungs``: unscored pixels filled from
    the nearest scored one, smoothed, resized, multiplied by the lung mask and divided by its largest
    |value| inside the lungs.

    Why the fill: cells with little lung overlap are never scored (see ``lung_occlusion``); left at 0
    they showed as square "no effect" holes and steps along the lung edge, a statement the model never
    made. ``scored`` (from :func:`scored_pixels`) says which pixels carry a value; without it, the
    non-zero pixels are taken as scored."""
    lungs = np.asarray(lungs, bool)
    a = np.asarray(attr_frame, np.float64)
    support = np.asarray(scored, bool) if scored is not None else a != 0
    if support.shape != a.shape:
        raise ValueError("scored mask and attribution differ in shape")
    if support.any() and not support.all():  # nearest scored value everywhere else (edges, outside the lungs)
        _, (rows, cols) = ndimage.distance_transform_edt(~support, return_indices=True)
        a = a[rows, cols]
    if smooth_cells > 0:  # everything is filled now: a plain blur, no zeros bleed in from outside the lungs
        a = ndimage.gaussian_filter(a, smooth_cells * cell)
    t = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    big = F.interpolate(t, size=lungs.shape, mode="bilinear", align_corners=False)[0, 0].numpy() * lungs
    scale = float(np.abs(big[lungs]).max()) if lungs.any() else 0.0
    values = (big / scale if scale > 0 else big).astype(np.float32)
    return LungAttribution(np.clip(values, -1.0, 1.0), lungs, scale, mask_source)
