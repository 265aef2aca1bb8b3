"""Lengths, angles and the perpendicular short axis of a bidimensional (RECIST-style) measurement.

Points are continuous voxel indices ``(x, y, z)``. Physical quantities use the volume's spacing *and*
direction (``Volume.index_to_physical``), never the index distance, so a ruler across a 0.57 × 0.57 × 5 mm
grid or an oblique acquisition reads what SimpleITK's ``TransformContinuousIndexToPhysicalPoint`` gives.

The short-axis helpers work in *plane coordinates*: the two in-plane index axes scaled by their spacing
(mm for an orthonormal direction, where a rotation keeps in-plane lengths and right angles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from inference.io.volume import Volume

Point = Sequence[float] | np.ndarray


def distance_mm(volume: Volume, a: Point, b: Point) -> float:
    """Physical distance between two voxel indices (mm; pixels when the spacing is unknown, i.e. 1)."""
    pa, pb = volume.index_to_physical(np.asarray([a, b], dtype=float))
    return float(np.linalg.norm(pb - pa))


def angle_deg(volume: Volume, a: Point, vertex: Point, b: Point) -> float:
    """The angle at ``vertex`` between the arms to ``a`` and ``b``, in degrees (0–180), in patient space."""
    pa, pv, pb = volume.index_to_physical(np.asarray([a, vertex, b], dtype=float))
    u, w = pa - pv, pb - pv
    nu, nw = float(np.linalg.norm(u)), float(np.linalg.norm(w))
    if nu == 0.0 or nw == 0.0:
        return 0.0
    cosine = float(np.clip(np.dot(u, w) / (nu * nw), -1.0, 1.0))
    return math.degrees(math.acos(cosine))


def in_plane_axes(normal_axis: int) -> tuple[int, int]:
    """The two index axes spanning a slice normal to ``normal_axis`` (increasing order)."""
    if normal_axis not in (0, 1, 2):
        raise ValueError(f"normal axis must be 0, 1 or 2, got {normal_axis}")
    first, second = (a for a in range(3) if a != normal_axis)
    return first, second


def pixel_area_mm2(volume: Volume, normal_axis: int) -> float:
    """Physical area of one pixel of a slice normal to ``normal_axis`` (handles sheared directions too)."""
    h, v = in_plane_axes(normal_axis)
    columns = np.asarray(volume.direction, float) * np.asarray(volume.spacing, float)  # column j = axis j step
    return float(np.linalg.norm(np.cross(columns[:, h], columns[:, v])))


def plane_coords(volume: Volume, normal_axis: int, points: Sequence[Point]) -> np.ndarray:
    """Voxel indices → ``N×2`` in-plane coordinates (index × spacing of the two in-plane axes)."""
    h, v = in_plane_axes(normal_axis)
    idx = np.asarray(points, dtype=float).reshape(-1, 3)
    return np.stack([idx[:, h] * float(volume.spacing[h]), idx[:, v] * float(volume.spacing[v])], axis=1)


def from_plane_coords(volume: Volume, normal_axis: int, slice_index: float, coords: np.ndarray) -> np.ndarray:
    """Inverse of :func:`plane_coords` on slice ``slice_index`` → ``N×3`` voxel indices."""
    h, v = in_plane_axes(normal_axis)
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    out = np.zeros((coords.shape[0], 3))
    out[:, h] = coords[:, 0] / float(volume.spacing[h])
    out[:, v] = coords[:, 1] / float(volume.spacing[v])
    out[:, normal_axis] = slice_index
    return out


def _frame(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit vector along a→b, its left normal, and the length (a degenerate axis points along +x)."""
    d = np.asarray(b, float) - np.asarray(a, float)
    length = float(np.hypot(d[0], d[1]))
    u = d / length if length > 0 else np.array([1.0, 0.0])
    return u, np.array([-u[1], u[0]]), length


def short_axis_from_params(a: np.ndarray, b: np.ndarray, t: float, d0: float, d1: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Short-axis ends perpendicular to the long axis ``a``→``b`` (plane coordinates).

    ``t`` in [0, 1] is where it crosses the long axis, ``d0``/``d1`` ≥ 0 the lengths on either side.
    """
    u, n, length = _frame(a, b)
    centre = np.asarray(a, float) + t * length * u
    return centre + d0 * n, centre - d1 * n


def short_axis_params(a: np.ndarray, b: np.ndarray, s0: np.ndarray, s1: np.ndarray
                      ) -> tuple[float, float, float]:
    """``(t, d0, d1)`` of a short axis ``s0``–``s1`` relative to the long axis ``a``→``b``.

    ``t`` is taken at ``s0``'s foot on the long axis and clamped to the axis; distances on the wrong side
    are clamped to 0, so the result always describes a perpendicular that crosses the long axis.
    """
    u, n, length = _frame(a, b)
    rel0 = np.asarray(s0, float) - np.asarray(a, float)
    rel1 = np.asarray(s1, float) - np.asarray(a, float)
    t = float(np.dot(rel0, u)) / length if length > 0 else 0.0
    return (min(max(t, 0.0), 1.0), max(float(np.dot(rel0, n)), 0.0), max(-float(np.dot(rel1, n)), 0.0))


def initial_short_axis(a: np.ndarray, b: np.ndarray, fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A first short axis for a new long axis: through its middle, ``fraction`` of its length."""
    length = float(np.hypot(*(np.asarray(b, float) - np.asarray(a, float))))
    return short_axis_from_params(a, b, 0.5, length * fraction / 2, length * fraction / 2)


def move_long_end(a: np.ndarray, b: np.ndarray, s0: np.ndarray, s1: np.ndarray, end: int, new: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drag long-axis end ``end`` (0 = a, 1 = b) to ``new``: the short axis keeps its place and lengths."""
    t, d0, d1 = short_axis_params(a, b, s0, s1)
    a, b = (np.asarray(new, float), np.asarray(b, float)) if end == 0 else (np.asarray(a, float), np.asarray(new, float))
    s0, s1 = short_axis_from_params(a, b, t, d0, d1)
    return a, b, s0, s1


def move_short_end(a: np.ndarray, b: np.ndarray, s0: np.ndarray, s1: np.ndarray, end: int, new: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Drag short-axis end ``end`` (0 or 1) to ``new``: it stays perpendicular; the crossing point follows
    the mouse along the long axis and the other end keeps its distance."""
    t, d0, d1 = short_axis_params(a, b, s0, s1)
    u, n, length = _frame(a, b)
    rel = np.asarray(new, float) - np.asarray(a, float)
    t = min(max(float(np.dot(rel, u)) / length, 0.0), 1.0) if length > 0 else 0.0
    if end == 0:
        d0 = max(float(np.dot(rel, n)), 0.0)
    else:
        d1 = max(-float(np.dot(rel, n)), 0.0)
    return short_axis_from_params(a, b, t, d0, d1)
