"""The CT window the model sees, chosen from what the user boxed (no hidden default).

Why: LiteMedSAM sees 8-bit grey levels, so the CT window decides what the object looks like. One fixed
window fits some objects and ruins others: soft tissue 40/400 halves a lung nodule (everything under
-160 HU, its partial-volume rim included, turns as black as the lung), while a lung window flattens a
liver lesion into its liver.

Rule, the same for every box: among the standard windows the model was used with (soft tissue, lung
lesion, lung), take the one under which the box's centre (the object) and a ring around the box (its
surround) look most different: the largest earth mover's distance between their grey-level
distributions. It needs no encoder call, and the windows stay few, so embeddings are shared between
boxes and with the background precompute. A box without contrast (inside homogeneous tissue) gets the
first candidate, MedSAM's soft-tissue default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.models.preprocess import DEFAULT_CT_WINDOW, LUNG_LESION_WINDOW, LUNG_WINDOW

Box = tuple[float, float, float, float]
Window = tuple[float, float]  # (level, width)
CT_WINDOWS: dict[str, Window] = {
    "soft tissue": DEFAULT_CT_WINDOW,
    "lung lesion": LUNG_LESION_WINDOW,
    "lung": LUNG_WINDOW,
}
RING_FRACTION = 0.3  # ring width around the box, as a fraction of the box size (at least 3 px)
MIN_CONTRAST = 0.02  # grey-level distance (0..1) under which no window shows the object


@dataclass(frozen=True)
class WindowChoice:
    """The chosen window and the displayed contrast of every candidate (for the status line and docs)."""

    name: str
    window: Window
    contrast: dict[str, float]
    shows_object: bool = True  # False: no candidate shows any contrast (the first one was taken)


def to_grey(values: np.ndarray, window: Window) -> np.ndarray:
    """HU → 0..1 grey level under ``window`` (level, width), clipped as the model's input is."""
    level, width = window
    return np.clip((np.asarray(values, dtype=np.float32) - (level - width / 2.0)) / max(width, 1e-3), 0.0, 1.0)


def box_regions(shape: tuple[int, int], box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the box's central half (by side: the object) and a ring around the box."""
    h, w = shape
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    bw, bh = max(x1 - x0 + 1, 2), max(y1 - y0 + 1, 2)
    centre = np.zeros(shape, dtype=bool)
    centre[max(y0 + bh // 4, 0) : max(y1 - bh // 4 + 1, y0 + bh // 4 + 1), max(x0 + bw // 4, 0) : max(x1 - bw // 4 + 1, x0 + bw // 4 + 1)] = True
    gx, gy = max(int(round(bw * RING_FRACTION)), 3), max(int(round(bh * RING_FRACTION)), 3)
    ring = np.zeros(shape, dtype=bool)
    ring[max(y0 - gy, 0) : min(y1 + gy + 1, h), max(x0 - gx, 0) : min(x1 + gx + 1, w)] = True
    ring[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = False
    return centre, ring


def grey_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's (1-D Wasserstein) distance between two samples of grey levels, via 49 quantiles."""
    q = np.linspace(1.0, 99.0, 49)
    return float(np.mean(np.abs(np.percentile(a, q) - np.percentile(b, q))))


def choose_window(
    slice2d: np.ndarray, box: Box, candidates: dict[str, Window] | None = None
) -> WindowChoice:
    """The candidate window showing the most contrast between the box's object and its surround."""
    candidates = candidates or CT_WINDOWS
    image = np.asarray(slice2d, dtype=np.float32)
    centre, ring = box_regions(image.shape, box)
    first = next(iter(candidates))
    if not centre.any() or not ring.any():
        return WindowChoice(first, candidates[first], {}, shows_object=False)
    inner, outer = image[centre], image[ring]
    contrast = {name: grey_distance(to_grey(inner, w), to_grey(outer, w)) for name, w in candidates.items()}
    best = max(contrast, key=lambda n: contrast[n])
    if contrast[best] < MIN_CONTRAST:
        return WindowChoice(first, candidates[first], contrast, shows_object=False)
    return WindowChoice(best, candidates[best], contrast)
