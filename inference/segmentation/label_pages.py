"""Whole-label-map operations that touch only the slices holding labels (issue 17, peak memory).

A label map is allocated zeroed (``np.zeros``: for a large map the kernel hands out pages that read as 0
and take no memory until written) and mostly stays empty: a 512×512×300 CT's map is 75 MiB of which a
segmentation typically writes a few dozen slices. Writing zeros over it (a reset), copying it whole (every
autosave snapshot) or comparing it whole (``map == value``) makes all 75 MiB resident, or allocates that
much again. These helpers look for the slices in use first (a read, which commits nothing) and then work on
those slices only, so memory follows what was drawn, not the size of the image. Values are unchanged: the
other slices are zero before and after.
"""

from __future__ import annotations

import numpy as np

__all__ = ["clear_label_map", "slices_in_use", "sparse_copy"]


def _per_slice(label_map: np.ndarray) -> np.ndarray:
    """``label_map`` as ``[z, pixels]`` (a view for the C-contiguous maps the session makes)."""
    return label_map.reshape(label_map.shape[0], -1)


def slices_in_use(label_map: np.ndarray) -> np.ndarray:
    """Indices (axis 0) of the slices holding any non-zero value, ascending."""
    if label_map.ndim < 2 or label_map.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    if not label_map.flags.c_contiguous:  # reshaping would copy the whole map: ask each slice instead
        return np.flatnonzero([bool(plane.any()) for plane in label_map])
    return np.flatnonzero(_per_slice(label_map).any(axis=1))


def clear_label_map(label_map: np.ndarray) -> None:
    """Set every value of ``label_map`` to 0 in place, writing only the slices that hold labels."""
    if label_map.ndim < 2 or not label_map.flags.c_contiguous:
        label_map[...] = 0
        return
    flat = _per_slice(label_map)
    for z in slices_in_use(label_map):
        flat[z] = 0


def sparse_copy(label_map: np.ndarray) -> np.ndarray:
    """A copy of ``label_map`` (same dtype, shape and values) that makes resident only the slices in use."""
    if label_map.ndim < 2:
        return label_map.copy()
    out = np.zeros(label_map.shape, dtype=label_map.dtype)
    for z in slices_in_use(label_map):
        out[z] = label_map[z]
    return out
