"""Per-slice confidence of a drawn mask: how much it changes under perturbations it should not depend on.

Why not the model's predicted IoU: LiteMedSAM's IoU head rates its own masks 0.82–0.95 whether their
Dice is 0.69 or 0.97 (a lung nodule under the soft-tissue window), so a strip showing it is green while
the mask is wrong. The agreement measure asks instead: would the mask be the same if the box had been
drawn a little differently (each side moved by ``fraction`` of the box size: grown, shrunk, shifted
two ways), and, when the window in use is not the one showing the object best
(:func:`inference.segmentation.windowing.choose_window`), under that window? The confidence is the
mean Dice between the drawn mask and the jittered boxes' masks, or the Dice with the best window's
mask when that is lower (two independent doubts: the weaker one bounds the trust). 1.0 = nothing a
user could plausibly have done differently changes the mask.

On CT a third, independent check joins (:func:`intensity_agreement`): the Dice between the mask and its
part beyond the half-maximum level between the object's and its surround's intensity, the classical
partial-volume edge; it flags the faint end slices of a lesion that the model outlines too large.
The confidence is the lowest of the three.

What it does not see: a mask that is wrong the same way under every check (e.g. only the solid core of
a part-solid nodule, whose ground-glass rim reads as surround). docs/segmentation.md reports how it
tracks the real Dice on synthetic lesions (whose reference *is* the half-maximum boundary, so the third
check is flattered there) and on ``ct/lung1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.segmentation.backend import Box, Point
from inference.segmentation.postprocess import dice, fill_holes, largest_component

Levels = tuple[float, float, float]  # (object median, surround level, surround robust SD) in HU

# Each pattern moves (x0, y0, x1, y1) by these multiples of fraction × box size.
JITTER_PATTERNS: tuple[tuple[int, int, int, int], ...] = (
    (-1, -1, 1, 1),  # grown
    (1, 1, -1, -1),  # shrunk
    (1, 1, 1, 1),  # shifted down-right
    (-1, -1, -1, -1),  # shifted up-left
)


def jittered_boxes(box: Box, shape: tuple[int, int], fraction: float) -> list[Box]:
    """The box with each side moved by ``fraction`` of its size in the :data:`JITTER_PATTERNS`."""
    x0, y0, x1, y1 = box
    dx, dy = fraction * (x1 - x0), fraction * (y1 - y0)
    h, w = shape
    out: list[Box] = []
    for a, b, c, d in JITTER_PATTERNS:
        nx0, ny0 = min(max(x0 + a * dx, 0.0), w - 2.0), min(max(y0 + b * dy, 0.0), h - 2.0)
        nx1, ny1 = max(min(x1 + c * dx, w - 1.0), nx0 + 1.0), max(min(y1 + d * dy, h - 1.0), ny0 + 1.0)
        out.append((nx0, ny0, nx1, ny1))
    return out


def jittered_points(points: Sequence[Point], shape: tuple[int, int], step: float) -> list[tuple[Point, ...]]:
    """Click sets with every click moved ``step`` pixels in one of four directions (point-only prompts)."""
    h, w = shape
    out: list[tuple[Point, ...]] = []
    for ddx, ddy in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
        out.append(tuple((min(max(x + ddx, 0.0), w - 1.0), min(max(y + ddy, 0.0), h - 1.0), p) for x, y, p in points))
    return out


def agreement(drawn: np.ndarray, alternatives: Sequence[np.ndarray]) -> float:
    """Mean Dice of ``drawn`` with each alternative mask (1.0 when there is nothing to compare)."""
    if not alternatives:
        return 1.0
    return float(np.mean([dice(drawn, alt) for alt in alternatives]))


def object_contrast(plane: np.ndarray, mask: np.ndarray) -> tuple[float, float, float] | None:
    """(object median, surround level, surround robust SD) of ``mask`` on ``plane``; ``None`` if empty.

    The surround is a ring that starts 2 px outside the mask (past the partial-volume edge) and is as
    wide as a third of the object's equivalent radius (at least 2 px). Its level is the quartile on the
    far side from the object (the lung around a nodule, not the chest wall it touches), its spread the
    robust SD of that half of the ring.
    """
    area = int(mask.sum())
    if area == 0:
        return None
    from scipy import ndimage  # on first use: the viewer's start-up stays free of scipy.ndimage

    width = max(2, int(round(np.sqrt(area / np.pi) / 3)))
    near = ndimage.binary_dilation(mask, iterations=2)
    ring = ndimage.binary_dilation(near, iterations=width) & ~near
    if not ring.any():
        return None
    inner, outer = plane[mask], plane[ring]
    obj, middle = float(np.median(inner)), float(np.median(outer))
    brighter = obj >= middle
    level = float(np.percentile(outer, 25 if brighter else 75))
    far = outer[outer <= middle] if brighter else outer[outer >= middle]
    spread = float(1.4826 * np.median(np.abs(far - level)))
    return obj, level, spread


def intensity_agreement(plane: np.ndarray, mask: np.ndarray, levels: Levels | None) -> float | None:
    """Dice of ``mask`` with its part beyond the half-maximum level (CT, HU), or ``None`` without contrast.

    The half-maximum (FWHM) edge is the classical boundary of an object blurred by partial volume:
    half-way between the object's and the surround's intensity. A mask that reaches well past it (a
    faint partial-volume cap outlined at full size, a rim of surround) disagrees with it. ``levels``:
    :func:`object_contrast` of the seed (propagation) or of this mask.
    """
    if levels is None or not mask.any():
        return None
    obj, surround, spread = levels
    if abs(obj - surround) <= 2.0 * spread:
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1 = max(int(rows[0]) - 1, 0), int(rows[-1]) + 2
    x0, x1 = max(int(cols[0]) - 1, 0), int(cols[-1]) + 2
    crop = mask[y0:y1, x0:x1]
    from scipy import ndimage  # on first use (start-up)

    smooth = ndimage.median_filter(np.asarray(plane[y0:y1, x0:x1], dtype=np.float32), size=3)  # noise
    half = (obj + surround) / 2.0
    core = crop & ((smooth > half) if obj > surround else (smooth < half))
    core = fill_holes(largest_component(core)) if core.any() else core
    return dice(crop, core)
