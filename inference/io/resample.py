"""Resample one volume onto another's grid in physical (LPS) space, e.g. PET onto CT for fusion.

Both volumes must share a frame of reference (true for PET/CT from one scanner); no
registration is done here. Voxels outside the moving image get its minimum value.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from inference.errors import ImageReadError
from inference.io.sitk_io import volume_to_sitk
from inference.io.volume import Volume

_INTERPOLATORS = {0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear, 3: sitk.sitkBSpline}


def _overlaps(moving: Volume, reference: Volume) -> bool:
    """Whether the reference grid's bounding box touches the moving grid (in moving index space)."""
    nz, ny, nx = reference.shape
    corners = np.array([[x, y, z] for x in (-0.5, nx - 0.5) for y in (-0.5, ny - 0.5) for z in (-0.5, nz - 0.5)])
    idx = moving.physical_to_index(reference.index_to_physical(corners))
    upper = np.array(moving.shape[::-1], dtype=float) - 0.5
    return bool(np.all(idx.max(axis=0) >= -0.5) and np.all(idx.min(axis=0) <= upper))


def resample_to_reference(moving: Volume, reference: Volume, order: int = 1) -> Volume:
    """``moving`` sampled on ``reference``'s grid (order 0 nearest, 1 linear, 3 B-spline)."""
    if order not in _INTERPOLATORS:
        raise ValueError(f"order must be 0, 1 or 3, got {order}")
    if not _overlaps(moving, reference):
        raise ImageReadError("The two images do not overlap in patient space, so one cannot be shown on the other's grid.")
    moving_img = volume_to_sitk(moving, moving.array.astype(np.float32, copy=False))
    reference_img = volume_to_sitk(reference, np.zeros(reference.shape, dtype=np.uint8))
    fill = float(moving.array.min()) if moving.array.size else 0.0
    out = sitk.Resample(moving_img, reference_img, sitk.Transform(), _INTERPOLATORS[order], fill, sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(out).astype(np.float32, copy=False)
    warnings = list(moving.meta.get("warnings", []))
    mine, theirs = moving.info.frame_of_reference_uid, reference.info.frame_of_reference_uid
    if mine and theirs and mine != theirs:
        warnings.append("resampled across different frames of reference: alignment is not guaranteed")
    meta = dict(moving.meta)
    meta["warnings"] = warnings
    meta["resampled_from"] = {"shape": moving.shape, "spacing": moving.spacing, "origin": moving.origin}
    return Volume(
        array=np.ascontiguousarray(array), spacing=reference.spacing, origin=reference.origin,
        direction=reference.direction.copy(), modality=moving.modality, units=moving.units, info=moving.info,
        source=moving.source, source_files=[], meta=meta,
    )
