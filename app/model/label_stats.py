"""Voxel counts per label value without whole-map temporaries.

``np.bincount`` converts its input to 64-bit integers first, so counting a 512×512×300 uint8 label map
allocated 600 MB (8× the map) on every label-panel refresh; ``np.unique`` sorts a full copy. Label maps are
mostly empty: only slices that hold a label are counted, one at a time.
"""

from __future__ import annotations

import numpy as np


def label_counts(label_map: np.ndarray) -> np.ndarray:
    """``int64[256]``: voxels per label value (index 0 = background) of a ``uint8[z, y, x]`` map."""
    if label_map.dtype != np.uint8 or label_map.ndim < 2:
        return np.bincount(np.asarray(label_map, dtype=np.int64).ravel(), minlength=256)
    counts = np.zeros(256, dtype=np.int64)
    slices = label_map.reshape(label_map.shape[0], -1)
    for z in np.flatnonzero(slices.any(axis=1)):
        counts += np.bincount(slices[z], minlength=256)
    counts[0] = label_map.size - int(counts[1:].sum())
    return counts


def present_values(label_map: np.ndarray) -> set[int]:
    """Label values (≠ 0) that occur in the map."""
    return {int(v) for v in np.flatnonzero(label_counts(label_map))} - {0}
