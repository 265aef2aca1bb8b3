"""Agreement measures recorded in the audit log (AI mask vs the clinician's final mask)."""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary masks (non-zero = foreground); both empty counts as 1.0."""
    x = np.asarray(a) != 0
    y = np.asarray(b) != 0
    if x.shape != y.shape:
        raise ValueError(f"mask shapes differ: {x.shape} vs {y.shape}")
    total = int(x.sum()) + int(y.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(x, y).sum()) / total
