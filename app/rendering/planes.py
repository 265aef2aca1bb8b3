"""How each 2-D view maps voxel indices to screen axes (radiological convention).

The document keeps everything in the volume's own index space ``(x, y, z)``; views only need to
know which index axis is normal to their plane and which index axes run to the screen's right and
up, possibly reversed. We derive that from the volume's direction matrix (nearest patient axis), so
a volume stored feet-first or with flipped rows is still shown with:

- axial: patient's right on screen left, anterior up (viewed from the feet);
- coronal: patient's right on screen left, superior up;
- sagittal: anterior on screen left, superior up;
- image (projection X-ray): stored rows/columns as is, first row at the top.

Oblique acquisitions are shown along the nearest patient axes (no reslicing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Patient axes in LPS: 0 = towards patient Left, 1 = Posterior, 2 = Superior.
# view name -> (normal patient axis, (screen-right patient axis, sign), (screen-up patient axis, sign))
_VIEW_AXES: dict[str, tuple[int, tuple[int, int], tuple[int, int]]] = {
    "axial": (2, (0, +1), (1, -1)),
    "coronal": (1, (0, +1), (2, +1)),
    "sagittal": (0, (1, +1), (2, +1)),
}
ORIENTATIONS = ("axial", "coronal", "sagittal")
# Letters for the screen edges: patient axis, sign -> letter.
_LETTERS = {(0, +1): "L", (0, -1): "R", (1, +1): "P", (1, -1): "A", (2, +1): "S", (2, -1): "I"}


@dataclass(frozen=True)
class PlaneMapping:
    """Index axes (0=x, 1=y, 2=z) behind one view and whether each runs against the screen."""

    name: str
    normal_axis: int
    h_axis: int
    h_flip: bool
    v_axis: int
    v_flip: bool
    # Orientation letters on the left, right, bottom and top screen edges ("" for X-ray images).
    edge_letters: tuple[str, str, str, str] = ("", "", "", "")

    def slice_2d(self, array_zyx: np.ndarray, index: int) -> np.ndarray:
        """The 2-D slice as ``[row, col]`` with row 0 at the screen *bottom* (VTK image order)."""
        xyz = array_zyx.transpose(2, 1, 0)
        picker: list[int | slice] = [slice(None)] * 3
        picker[self.normal_axis] = int(index)
        # basic indexing gives a view; np.take would first copy the whole (transposed) volume per call
        plane = xyz[tuple(picker)]
        remaining = [a for a in range(3) if a != self.normal_axis]
        if remaining == [self.h_axis, self.v_axis]:
            plane = plane.T
        if self.h_flip:
            plane = plane[:, ::-1]
        if self.v_flip:
            plane = plane[::-1, :]
        return np.ascontiguousarray(plane)

    def display_to_index(
        self, col: float, row: float, slice_index: int, shape_xyz: tuple[int, int, int]
    ) -> np.ndarray:
        """Continuous display pixel ``(col, row)`` on slice ``slice_index`` → index ``(x, y, z)``."""
        idx = np.zeros(3)
        n_h, n_v = shape_xyz[self.h_axis], shape_xyz[self.v_axis]
        idx[self.h_axis] = (n_h - 1 - col) if self.h_flip else col
        idx[self.v_axis] = (n_v - 1 - row) if self.v_flip else row
        idx[self.normal_axis] = slice_index
        return idx

    def index_to_display(self, index_xyz: np.ndarray, shape_xyz: tuple[int, int, int]) -> tuple[float, float]:
        """Index ``(x, y, z)`` → display pixel ``(col, row)`` (the inverse of :meth:`display_to_index`)."""
        n_h, n_v = shape_xyz[self.h_axis], shape_xyz[self.v_axis]
        h, v = float(index_xyz[self.h_axis]), float(index_xyz[self.v_axis])
        return ((n_h - 1 - h) if self.h_flip else h, (n_v - 1 - v) if self.v_flip else v)


def _patient_axes(direction: np.ndarray) -> tuple[list[int], list[int]]:
    """For each index axis: nearest patient axis and the sign along it (identity if degenerate)."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    axes = [int(np.argmax(np.abs(d[:, j]))) for j in range(3)]
    if sorted(axes) != [0, 1, 2]:
        return [0, 1, 2], [1, 1, 1]
    signs = [1 if d[axes[j], j] >= 0 else -1 for j in range(3)]
    return axes, signs


def plane_mapping(name: str, direction: np.ndarray) -> PlaneMapping:
    """Mapping for ``name`` in ``ORIENTATIONS`` or ``"image"`` (2-D projection images)."""
    if name == "image":
        return PlaneMapping("image", 2, 0, False, 1, True)
    normal_p, (right_p, right_sign), (up_p, up_sign) = _VIEW_AXES[name]
    axes, signs = _patient_axes(direction)
    index_of = {p: j for j, p in enumerate(axes)}
    h, v = index_of[right_p], index_of[up_p]
    letters = (
        _LETTERS[(right_p, -right_sign)],
        _LETTERS[(right_p, right_sign)],
        _LETTERS[(up_p, -up_sign)],
        _LETTERS[(up_p, up_sign)],
    )
    return PlaneMapping(
        name=name,
        normal_axis=index_of[normal_p],
        h_axis=h,
        h_flip=signs[h] != right_sign,
        v_axis=v,
        v_flip=signs[v] != up_sign,
        edge_letters=letters,
    )


def plane_normal_to(axis: int, direction: np.ndarray) -> str:
    """The view whose plane is normal to index ``axis`` (a crosshair line drawn along the other axis is
    that view's plane and takes its colour)."""
    return next((o for o in ORIENTATIONS if plane_mapping(o, direction).normal_axis == axis), "axial")
