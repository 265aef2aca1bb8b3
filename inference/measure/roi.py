"""Region-of-interest statistics on one slice: the elliptical ROI of the viewer's ellipse tool.

A voxel belongs to the ellipse when its *centre* lies inside it (the rule a label image drawn from the
same shape follows, so SimpleITK's ``LabelStatisticsImageFilter`` on that mask gives the same numbers).
SD is the sample standard deviation (n − 1), as ITK reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.measure.geometry import in_plane_axes


@dataclass(frozen=True)
class RoiStatistics:
    """Pixel values inside a ROI (in the image's units: HU, SUV, intensity)."""

    count: int
    mean: float
    sd: float
    minimum: float
    maximum: float


def roi_statistics(values: np.ndarray) -> RoiStatistics | None:
    """Statistics of the given pixel values (None when there are none)."""
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    sd = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return RoiStatistics(int(data.size), float(data.mean()), sd, float(data.min()), float(data.max()))


def ellipse_mask(centre: tuple[float, float], radii: tuple[float, float], limits: tuple[int, int]
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """Pixels whose centres lie in the axis-aligned ellipse, clipped to ``[0, limits)`` on each axis.

    Returns ``(mask[i, j], (i0, j0))``: the mask over the ellipse's bounding box, whose first pixel is at
    index ``(i0, j0)`` (axis order as ``centre``/``radii``). Empty when a radius is 0 or it lies outside.
    """
    (ci, cj), (ri, rj) = centre, (abs(radii[0]), abs(radii[1]))
    if ri <= 0 or rj <= 0:
        return np.zeros((0, 0), bool), (0, 0)
    i0, i1 = max(int(np.ceil(ci - ri)), 0), min(int(np.floor(ci + ri)), limits[0] - 1)
    j0, j1 = max(int(np.ceil(cj - rj)), 0), min(int(np.floor(cj + rj)), limits[1] - 1)
    if i1 < i0 or j1 < j0:
        return np.zeros((0, 0), bool), (0, 0)
    ii = np.arange(i0, i1 + 1, dtype=float)[:, None]
    jj = np.arange(j0, j1 + 1, dtype=float)[None, :]
    return ((ii - ci) / ri) ** 2 + ((jj - cj) / rj) ** 2 <= 1.0, (i0, j0)


def ellipse_statistics(array_zyx: np.ndarray, normal_axis: int, slice_index: int,
                       corner_a: tuple[float, float, float], corner_b: tuple[float, float, float]
                       ) -> RoiStatistics | None:
    """Statistics inside the ellipse inscribed in the box ``corner_a``–``corner_b`` on one slice.

    The box's edges run along the two in-plane index axes (the views draw along them). ``array_zyx`` is
    ``Volume.array``; corners are voxel indices ``(x, y, z)``.
    """
    h, v = in_plane_axes(normal_axis)
    dims_xyz = array_zyx.shape[::-1]
    if not 0 <= slice_index < dims_xyz[normal_axis]:
        return None
    a, b = np.asarray(corner_a, float), np.asarray(corner_b, float)
    centre = ((a[h] + b[h]) / 2.0, (a[v] + b[v]) / 2.0)
    radii = (abs(b[h] - a[h]) / 2.0, abs(b[v] - a[v]) / 2.0)
    mask, (i0, j0) = ellipse_mask(centre, radii, (dims_xyz[h], dims_xyz[v]))
    if not mask.any():
        return None
    block = [slice(None)] * 3  # over (x, y, z)
    block[normal_axis] = slice(slice_index, slice_index + 1)
    block[h] = slice(i0, i0 + mask.shape[0])
    block[v] = slice(j0, j0 + mask.shape[1])
    sub = array_zyx[block[2], block[1], block[0]].transpose(2, 1, 0)  # → (x, y, z) order
    plane = np.take(sub, 0, axis=normal_axis)  # remaining axes (h, v) in increasing order
    return roi_statistics(plane[mask])
