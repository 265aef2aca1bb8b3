"""Mask clean-up and geometry helpers shared by the session, the CLI and the quality checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.models.preprocess import PreprocessInfo

CLICK_MARGIN = 0.25  # logits: a click's pixel ends up clearly on its side of the threshold


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component (a box prompt means one object)."""
    from scipy import ndimage  # imported on first use: it costs ~0.3 s of the viewer's start-up

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_fill_holes(mask).astype(bool)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` inclusive pixel bounds of a 2-D mask, or ``None`` when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def low_res_to_logits(low_res: object, info: PreprocessInfo) -> np.ndarray | None:
    """Full-size (H, W) logits from low-res logits in the embedding's padded model frame, else ``None``.

    Only LiteMedSAM's ``side``×``side`` logits qualify: the same crop + bilinear upsampling as the
    backend then reproduces its full-size logits exactly (MedSAM2's live in another frame).
    """
    if not isinstance(low_res, np.ndarray) or low_res.shape != (info.side, info.side):
        return None
    return info.logits_to_original_array(low_res)  # numpy: the viewer's post-processing needs no torch


def threshold_low_res(low_res: object, info: PreprocessInfo, threshold: float) -> np.ndarray | None:
    """Full-size mask of the low-res logits thresholded at ``threshold`` (upstream: 0), or ``None``."""
    logits = low_res_to_logits(low_res, info)
    return None if logits is None else logits > threshold


def click_threshold(logits: np.ndarray, points: Sequence[tuple[float, float, bool]], start: float) -> float:
    """The mask threshold after the user's clicks, in order: each click makes its own pixel right.

    A positive click lowers the threshold just under the clicked pixel's logit (the mask grows into
    what the model rated next most likely), a negative click raises it just over (the mask shrinks).
    """
    h, w = logits.shape
    t = start
    for x, y, positive in points:
        v = float(logits[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)])
        t = min(t, v - CLICK_MARGIN) if positive else max(t, v + CLICK_MARGIN)
    return t
