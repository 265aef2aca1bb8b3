"""Attributions on the anatomy: which part of the lungs moved the risk, restricted to and normalised within
the lung mask.

Why not pixel gradients: the shipped outcome models read lung-zone statistics and pooled embeddings, not
pixels, and trees have no gradient. Both explainers here are model-agnostic occlusions over square lung
cells; they differ in what a cell is replaced by:

- ``reference_occlusion`` (what the viewer and the report show): the lung mask stays, and the cell's
  content is replaced by what a *normal lung* looks like there (the caller's ``logit_with_normal``; the
  outcome service uses the cohort's clear-lung reference, ``inference/fusion/normal_lung.py``). The cell
  is credited with logit(as it is) − logit(cell normal): positive = this region looks abnormal in a way
  that raises the risk, ~0 = it looks like a normal lung (or the model does not care), negative = it looks
  *better* than a normal lung in the model's eyes. That answers the clinician's question ("which parts
  look worse than a normal lung, and by how much does that raise the risk?").
- ``lung_occlusion`` (the earlier method, kept for comparison in ``docs/results.md``): the cell is taken
  out of the lung mask. With lung-zone *averages* as features that credits a cell for being worse than
  the rest of its own lungs, and it changes lung area and zone boundaries: on opaque lungs most cells
  came out blue.

Positive has the same meaning as a positive EHR attribution. Outside the lungs the map is exactly 0.
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

    def without(square: np.ndarray) -> float:
        return float(logit_with_lungs(lungs & ~square))

    return _per_cell(lambda: float(logit_with_lungs(lungs)), without, lungs, cell, min_overlap, progress, cancel)


def reference_occlusion(
    logit_with_normal: Callable[[np.ndarray], float], lungs: np.ndarray, cell: int = 16, min_overlap: float = 0.2,
    progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
) -> np.ndarray:
    """(h, w) signed attribution (logit units) in the model frame: per ``cell``-pixel square of the lungs,
    ``logit(as is) − logit(the square's lung pixels replaced by a normal lung)``; 0 outside the lungs.
    ``logit_with_normal(replace)`` gets the (h, w) bool pixels to replace (none: the image as it is)."""
    lungs = np.asarray(lungs, bool)

    def normal(square: np.ndarray) -> float:
        return float(logit_with_normal(lungs & square))

    return _per_cell(lambda: float(logit_with_normal(np.zeros_like(lungs))), normal, lungs, cell, min_overlap,
                     progress, cancel)


def _per_cell(
    base_logit: Callable[[], float], logit_changed: Callable[[np.ndarray], float], lungs: np.ndarray, cell: int,
    min_overlap: float, progress: ProgressCallback, cancel: CancelToken | None,
) -> np.ndarray:
    """The occlusion loop both explainers share: base − logit with one scored cell changed, per cell."""
    h, w = lungs.shape
    attr = np.zeros((h, w), np.float32)
    if not lungs.any():
        return attr
    base = base_logit()
    cells = scored_cells(lungs, cell, min_overlap)
    square = np.zeros((h, w), bool)
    for k, (r, c) in enumerate(cells):
        if cancel is not None:
            cancel.raise_if_cancelled()
        square[:] = False
        square[r:r + cell, c:c + cell] = True
        attr[r:r + cell, c:c + cell] = base - logit_changed(square)
        progress((k + 1) / len(cells), f"lung region {k + 1}/{len(cells)}")
    return attr * lungs


def cells_by_attribution(attr: np.ndarray, lungs: np.ndarray, cell: int = 16, min_overlap: float = 0.2
                         ) -> list[tuple[int, int]]:
    """The scored cells (top-left corners), highest attribution first: the order of a deletion check."""
    cells = scored_cells(np.asarray(lungs, bool), cell, min_overlap)
    return sorted(cells, key=lambda rc: -float(attr[rc[0], rc[1]]))


def deletion_curve(logit_changed: Callable[[np.ndarray], float], lungs: np.ndarray, order: list[tuple[int, int]],
                   cell: int = 16, steps: int | None = None) -> np.ndarray:
    """Faithfulness check: logits after changing the first k cells of ``order`` together, k = 0 … len(order)
    (``steps``: only at that many evenly spaced k after 0). ``logit_changed(pixels)`` is the explainer's
    own change (e.g. replace by a normal lung); a map is faithful when its top cells lower the logit
    faster than random cells do."""
    lungs = np.asarray(lungs, bool)
    n = len(order)
    stops = range(1, n + 1) if steps is None or steps >= n else np.linspace(0, n, steps + 1).round().astype(int)[1:]
    changed = np.zeros(lungs.shape, bool)
    out = [float(logit_changed(changed))]
    done = 0
    for k in stops:
        for r, c in order[done:k]:
            changed[r:r + cell, c:c + cell] = True
        done = int(k)
        out.append(float(logit_changed(changed & lungs)))
    return np.array(out)


def scored_cells(lungs: np.ndarray, cell: int, min_overlap: float) -> list[tuple[int, int]]:
    """Top-left corners of the cells the occlusions score: those at least ``min_overlap`` lung (a
    cell with a sliver of lung moves the logit too little to be worth a model call)."""
    h, w = lungs.shape
    return [(r, c) for r in range(0, h, cell) for c in range(0, w, cell)
            if lungs[r:r + cell, c:c + cell].mean() >= min_overlap]


def scored_pixels(lungs: np.ndarray, cell: int = 16, min_overlap: float = 0.2) -> np.ndarray:
    """(h, w) bool: the lung pixels the occlusions give a value (same ``cell`` / ``min_overlap``).
    Passed to :func:`restrict_to_lungs` so a scored cell whose effect is exactly 0 stays 0."""
    lungs = np.asarray(lungs, bool)
    out = np.zeros(lungs.shape, bool)
    for r, c in scored_cells(lungs, cell, min_overlap):
        out[r:r + cell, c:c + cell] = True
    return out & lungs


def restrict_to_lungs(attr_frame: np.ndarray, lungs: np.ndarray, smooth_cells: float = 0.5, cell: int = 16,
                      mask_source: str = "supplied", scored: np.ndarray | None = None) -> LungAttribution:
    """Model-frame attribution (h, w) → image-size map (H, W) of ``lungs``: unscored pixels filled from
    the nearest scored one, smoothed, resized, multiplied by the lung mask and divided by its largest
    |value| inside the lungs.

    Why the fill: cells with little lung overlap are never scored (see ``scored_cells``); left at 0
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
