"""Brush strokes on any plane: the coronal or sagittal view edits the label map as one undoable gesture.

Why: a stroke drawn on the coronal or sagittal view touches one row of many axial slices; applying it
as one gesture (one :class:`SliceDiff` per touched axial slice) keeps undo/redo and the label origins
exactly as for axial strokes.
"""

from __future__ import annotations

import numpy as np

from inference.errors import InvalidPromptError
from inference.segmentation.history import Gesture, SliceDiff
from inference.segmentation.session import LabelKey, SegmentationSession


def plane_of(label_map: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2-D plane of a ``[z, y, x]`` map normal to index axis ``axis`` (0 = x, 1 = y, 2 = z), rows and
    columns in array order: axial ``[y, x]``, coronal ``[z, x]``, sagittal ``[z, y]`` (a view, no copy)."""
    if axis not in (0, 1, 2):
        raise InvalidPromptError(f"Unknown plane axis {axis}.")
    return np.take(label_map, int(index), axis=2 - axis) if axis != 2 else label_map[int(index)]


def plane_axes(axis: int) -> tuple[int, int]:
    """Index axes (0 = x, 1 = y, 2 = z) of the rows and columns of :func:`plane_of`'s plane."""
    rows, cols = sorted((a for a in (0, 1, 2) if a != axis), reverse=True)
    return rows, cols


def brush_plane(
    session: SegmentationSession, axis: int, index: int, stroke: np.ndarray, label: LabelKey,
    erase: bool = False, overwrite: bool = False,
) -> tuple[int, int] | None:
    """Paint (or erase) ``stroke`` — a bool plane as :func:`plane_of` returns it — into ``label`` on the
    plane normal to ``axis`` at ``index``, as one undoable gesture. Other labels' pixels are never taken
    unless ``overwrite``. Returns the range of axial slices changed, or ``None`` when nothing changed."""
    label_map = session.label_map
    if session.volume is None:
        raise InvalidPromptError("No image is loaded in the segmentation session.")
    n = label_map.shape[2 - axis] if axis in (0, 1, 2) else 0
    if not 0 <= int(index) < n:
        raise InvalidPromptError(f"Slice {index} is outside the image (0..{n - 1}).")
    if axis == 2:
        before = label_map[int(index)].copy()
        session.apply_brush(int(index), stroke, label, erase=erase, overwrite=overwrite)
        return (int(index), int(index)) if not np.array_equal(before, label_map[int(index)]) else None
    lab = session.label(label)
    stroke = np.asarray(stroke, dtype=bool)
    plane = plane_of(label_map, axis, index)
    if stroke.shape != plane.shape:
        raise InvalidPromptError(f"Brush mask shape {stroke.shape} does not match the plane {plane.shape}.")
    gesture = Gesture("erase" if erase else "brush")
    for z in np.flatnonzero(stroke.any(axis=1)):  # plane rows are axial slices
        before = label_map[z]
        after = before.copy()
        line = after[:, int(index)] if axis == 0 else after[int(index), :]  # a view into ``after``
        row = stroke[z]
        if erase:
            line[row & (line == lab.value)] = 0
        else:
            line[row & ((line == 0) | overwrite)] = lab.value
        diff = SliceDiff.between(int(z), before, after)
        if diff is not None:
            gesture.diffs.append(diff)
            label_map[z] = after
    session.history.push(gesture)
    zs = [d.z for d in gesture.diffs]
    return (min(zs), max(zs)) if zs else None
