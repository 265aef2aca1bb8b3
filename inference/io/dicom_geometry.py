"""Slice ordering and volume geometry from DICOM plane attributes.

Slices are sorted by the projection of ImagePositionPatient onto the slice normal (the cross
product of the ImageOrientationPatient cosines); the z spacing comes from those positions, never
from SliceThickness (which describes the slab, not the distance between slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from inference.errors import ImageReadError

_ORIENTATION_TOL = 1e-3  # cosine difference that counts as a different orientation
_DUPLICATE_TOL = 1e-3  # mm
_ORTHOGONAL_TOL = 1e-3  # |row . column| above this is a broken IOP, not rounding


@dataclass
class PlaneInfo:
    """Plane attributes of one slice (a file or a frame)."""

    name: str
    position: np.ndarray | None  # IPP, LPS mm
    orientation: np.ndarray | None  # 6 cosines (row direction, column direction)
    pixel_spacing: tuple[float, float] | None  # (x = column spacing, y = row spacing)
    rows: int
    cols: int


@dataclass
class StackGeometry:
    """Sorted order plus the Volume geometry of a stack of slices."""

    order: list[int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    warnings: list[str] = field(default_factory=list)
    spacing_known: bool = True


def floats(value: object, n: int) -> np.ndarray | None:
    """``n`` floats from a multi-valued DICOM attribute, or ``None`` when absent/malformed."""
    if value is None:
        return None
    try:
        vals = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not np.all(np.isfinite(vals)):
        return None
    return np.asarray(vals, dtype=float)


def pixel_spacing_of(ds: Dataset) -> tuple[tuple[float, float] | None, str]:
    """``((x, y) spacing, tag used)`` from PixelSpacing, else ImagerPixelSpacing."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        ps = floats(ds.get(tag), 2)
        if ps is not None and ps[0] > 0 and ps[1] > 0:
            return (float(ps[1]), float(ps[0])), tag  # DICOM order is (row spacing, column spacing)
    return None, ""


def plane_info(ds: Dataset, name: str) -> PlaneInfo:
    """Plane attributes of a single-frame dataset."""
    spacing, _ = pixel_spacing_of(ds)
    return PlaneInfo(
        name=name,
        position=floats(ds.get("ImagePositionPatient"), 3),
        orientation=floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=spacing,
        rows=int(ds.get("Rows", 0) or 0),
        cols=int(ds.get("Columns", 0) or 0),
    )


class DegenerateOrientationError(ImageReadError):
    """ImageOrientationPatient does not describe two perpendicular directions."""


def direction_from_orientation(iop: np.ndarray) -> np.ndarray:
    """3x3 orthonormal matrix with columns (row cosine, column cosine, slice normal).

    Unnormalised cosines are normalised and a rounding-level tilt between them is removed
    (Gram-Schmidt); zero, parallel or clearly non-perpendicular cosines raise
    :class:`DegenerateOrientationError`, because any direction built from them would be invented.
    """
    row_n, col_n = float(np.linalg.norm(iop[:3])), float(np.linalg.norm(iop[3:]))
    if row_n < 1e-6 or col_n < 1e-6:
        raise DegenerateOrientationError("ImageOrientationPatient has a zero direction cosine.")
    row, col = iop[:3] / row_n, iop[3:] / col_n
    if abs(float(row @ col)) > _ORTHOGONAL_TOL:
        raise DegenerateOrientationError("ImageOrientationPatient row and column directions are not perpendicular.")
    col = col - (row @ col) * row
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    return np.column_stack([row, col, normal])


def single_slice_geometry(plane: PlaneInfo, slice_spacing: float | None) -> StackGeometry:
    """Geometry of one slice; missing attributes fall back to identity / 1 mm with warnings."""
    warnings: list[str] = []
    spacing_known = True
    if plane.pixel_spacing is None:
        sx = sy = 1.0
        spacing_known = False
        warnings.append("no PixelSpacing/ImagerPixelSpacing: pixel spacing assumed 1 mm")
    else:
        sx, sy = plane.pixel_spacing
    direction = np.eye(3)
    origin = np.zeros(3)
    if plane.orientation is not None:
        try:
            direction = direction_from_orientation(plane.orientation)
        except DegenerateOrientationError:
            warnings.append("ImageOrientationPatient is degenerate: axial orientation assumed")
    if plane.position is not None:
        origin = plane.position
    sz = slice_spacing if slice_spacing and slice_spacing > 0 else 1.0
    return StackGeometry([0], (sx, sy, float(sz)), tuple(float(v) for v in origin), direction,  # type: ignore[arg-type]
                         warnings, spacing_known)


def stack_geometry(planes: list[PlaneInfo], what: str) -> StackGeometry:
    """Sort slices along their normal and check the stack forms a regular grid.

    Raises :class:`ImageReadError` for missing plane tags, mixed orientations or sizes,
    duplicate positions and uneven spacing (usually missing slices).
    """
    if len(planes) == 1:
        return single_slice_geometry(planes[0], None)
    for tag, attr in (("ImagePositionPatient", "position"), ("ImageOrientationPatient", "orientation"),
                      ("PixelSpacing", "pixel_spacing")):
        missing = [p.name for p in planes if getattr(p, attr) is None]
        if missing:
            raise ImageReadError(
                f"The {what} cannot be stacked into a 3-D volume because {len(missing)} slice(s) lack "
                f"the {tag} tag (e.g. '{missing[0]}')."
            )
    sizes = {(p.rows, p.cols) for p in planes}
    if len(sizes) > 1:
        raise ImageReadError(f"The {what} mixes slices of different sizes {sorted(sizes)}; it is not one volume.")
    ref = planes[0].orientation
    assert ref is not None
    for p in planes:
        assert p.orientation is not None
        if np.max(np.abs(p.orientation - ref)) > _ORIENTATION_TOL:
            raise ImageReadError(
                f"The {what} mixes slice orientations (ImageOrientationPatient differs, e.g. '{p.name}'); "
                "it is not one volume."
            )
    spacings = np.array([p.pixel_spacing for p in planes], dtype=float)
    if np.max(np.abs(spacings - spacings[0])) > 1e-4:
        raise ImageReadError(f"The {what} mixes slices with different PixelSpacing values.")
    try:
        direction = direction_from_orientation(ref)
    except DegenerateOrientationError:
        raise ImageReadError(
            f"The {what} cannot be stacked into a 3-D volume because its ImageOrientationPatient is degenerate "
            "(zero, parallel or not perpendicular direction cosines)."
        ) from None
    positions = np.array([p.position for p in planes], dtype=float)
    proj = positions @ direction[:, 2]
    order = [int(i) for i in np.argsort(proj, kind="stable")]
    sorted_proj = proj[order]
    gaps = np.diff(sorted_proj)
    if np.any(gaps < _DUPLICATE_TOL):
        k = int(np.argmax(gaps < _DUPLICATE_TOL))
        raise ImageReadError(
            f"The {what} has duplicate slice positions ('{planes[order[k]].name}' and "
            f"'{planes[order[k + 1]].name}' are at the same place)."
        )
    step = float((sorted_proj[-1] - sorted_proj[0]) / (len(planes) - 1))
    median = float(np.median(gaps))
    if np.max(np.abs(gaps - median)) > max(0.01 * median, 5e-3):
        raise ImageReadError(
            f"The {what}'s slice positions are not evenly spaced (gaps from {gaps.min():.3g} to "
            f"{gaps.max():.3g} mm): missing slices?"
        )
    warnings: list[str] = []
    offset = positions[order[-1]] - positions[order[0]]
    offset /= np.linalg.norm(offset)
    if np.linalg.norm(np.cross(offset, direction[:, 2])) > 1e-3:
        warnings.append("slices are sheared (gantry tilt): geometry is approximate")
    sx, sy = planes[0].pixel_spacing  # type: ignore[misc]
    origin = positions[order[0]]
    return StackGeometry(order, (float(sx), float(sy), step), tuple(float(v) for v in origin),  # type: ignore[arg-type]
                         direction, warnings)
