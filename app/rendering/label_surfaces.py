"""Surfaces of segmentation labels for the 3-D view: discrete flying edges on each label, smoothed.

Runs on a worker thread (no renderer is touched here): each label is cut to its bounding box (plus one
empty voxel so the surface closes), meshed with ``vtkDiscreteFlyingEdges3D`` in voxel units, smoothed
with a windowed-sinc filter (removes the voxel staircase without shrinking the object), then moved into
patient coordinates (origin + direction · spacing · index), the frame the 3-D view's volume rendering uses.
Large labels are meshed on an in-plane subsampled grid (at most :data:`MAX_INPLANE` voxels a side), as the
volume rendering is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkWindowedSincPolyDataFilter
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

from inference.progress import CancelToken

MAX_INPLANE = 256  # voxels per in-plane side of the meshed grid (larger labels are subsampled)
SMOOTH_ITERATIONS = 20
SMOOTH_PASS_BAND = 0.05


def _bounds(mask_slices: np.ndarray, label_map: np.ndarray, value: int) -> tuple[slice, slice, slice] | None:
    """Bounding box of ``value`` over the slices in ``mask_slices`` (array order z, y, x)."""
    zs = [int(z) for z in mask_slices if (label_map[z] == value).any()]
    if not zs:
        return None
    z0, z1 = min(zs), max(zs)
    block = label_map[z0 : z1 + 1] == value
    ys = np.flatnonzero(block.any(axis=(0, 2)))
    xs = np.flatnonzero(block.any(axis=(0, 1)))
    return slice(z0, z1 + 1), slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1)


def label_surface(
    label_map: np.ndarray, value: int, spacing: tuple[float, float, float], origin: Iterable[float],
    direction: np.ndarray, slices_in_use: np.ndarray | None = None,
) -> vtkPolyData | None:
    """The smoothed surface of label ``value`` of a ``uint8[z, y, x]`` map in patient mm, or ``None`` when
    the label has no voxels."""
    in_use = slices_in_use if slices_in_use is not None else np.flatnonzero(
        label_map.reshape(label_map.shape[0], -1).any(axis=1))
    box = _bounds(in_use, label_map, value)
    if box is None:
        return None
    bz, by, bx = box
    stride = max(1, math.ceil(max(by.stop - by.start, bx.stop - bx.start) / MAX_INPLANE))
    crop = (label_map[bz, by, bx] == value)[:, ::stride, ::stride]
    padded = np.pad(crop.astype(np.uint8), 1)
    nz, ny, nx = padded.shape
    image = vtkImageData()
    image.SetDimensions(nx, ny, nz)
    image.GetPointData().SetScalars(numpy_to_vtk(padded.ravel(), deep=True))
    mesher = vtkDiscreteFlyingEdges3D()
    mesher.SetInputData(image)
    mesher.SetValue(0, 1)
    mesher.ComputeNormalsOff()
    mesher.ComputeGradientsOff()
    mesher.ComputeScalarsOff()
    smoother = vtkWindowedSincPolyDataFilter()
    smoother.SetInputConnection(mesher.GetOutputPort())
    smoother.SetNumberOfIterations(SMOOTH_ITERATIONS)
    smoother.SetPassBand(SMOOTH_PASS_BAND)
    smoother.BoundarySmoothingOff()
    smoother.FeatureEdgeSmoothingOff()
    smoother.NonManifoldSmoothingOn()
    smoother.NormalizeCoordinatesOn()
    smoother.Update()
    surface = vtkPolyData()
    surface.DeepCopy(smoother.GetOutput())
    points = surface.GetPoints()
    if points is None or surface.GetNumberOfPolys() == 0:
        return None
    # voxel units of the padded crop → volume index (x, y, z) → patient mm
    idx = vtk_to_numpy(points.GetData()).astype(np.float64)
    idx = (idx - 1.0) * np.array([stride, stride, 1.0]) + np.array([bx.start, by.start, bz.start], float)
    world = np.asarray(list(origin), float) + (idx * np.asarray(spacing, float)) @ np.asarray(direction, float).T
    points.SetData(numpy_to_vtk(np.ascontiguousarray(world), deep=True))
    normals = vtkPolyDataNormals()
    normals.SetInputData(surface)
    normals.SplittingOff()
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOn()  # the surfaces are closed (the crop is padded), so outward is defined
    normals.Update()
    out = vtkPolyData()
    out.DeepCopy(normals.GetOutput())
    return out


def label_surfaces(
    label_map: np.ndarray, values: Iterable[int], spacing: tuple[float, float, float], origin: Iterable[float],
    direction: np.ndarray, cancel: CancelToken | None = None,
) -> dict[int, vtkPolyData | None]:
    """:func:`label_surface` for each value (``None`` for labels without voxels)."""
    origin = tuple(origin)
    in_use = np.flatnonzero(label_map.reshape(label_map.shape[0], -1).any(axis=1))
    out: dict[int, vtkPolyData | None] = {}
    for value in values:
        if cancel is not None:
            cancel.raise_if_cancelled()
        out[int(value)] = label_surface(label_map, int(value), spacing, origin, direction, in_use)
    return out
