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

What it does not see: a mask that is wrong the same way under every perturbation (e.g. only the solid
core of a part-solid nodule) keeps a high agreement. docs/segmentation.md reports how it tracks the
real Dice on synthetic lesions and ``ct/lung1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.segmentation.backend import Box, Point
from inference.segmentation.postprocess import dice

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
