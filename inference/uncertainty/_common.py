"""Shared input checks for the uncertainty modules (NaN-label handling, errors)."""

from __future__ import annotations

import numpy as np

from inference.errors import MedFusionError


class CalibrationDataError(MedFusionError):
    """Calibration/conformal fitting got too little usable (non-missing) data."""


def as_1d(x: object, name: str) -> np.ndarray:
    """Return ``x`` as a 1-D float64 array (scalars become length 1)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def paired_known(values: object, labels: object, vname: str = "probs") -> tuple[np.ndarray, np.ndarray]:
    """Drop pairs whose label is NaN (missing) so every metric can ignore missing outcomes."""
    v = as_1d(values, vname)
    y = as_1d(labels, "labels")
    if v.shape != y.shape:
        raise ValueError(f"{vname} and labels differ in length: {v.shape[0]} vs {y.shape[0]}")
    keep = ~np.isnan(y)
    v, y = v[keep], y[keep]
    if np.isnan(v).any():
        raise ValueError(f"{vname} contain NaN where the label is known")
    return v, y


def check_binary(y: np.ndarray) -> None:
    """Labels of binary outcomes must be 0/1 once missing values are removed."""
    if y.size and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("binary labels must be 0, 1 or NaN (missing)")
