"""Temperature scaling: a one-parameter post-hoc calibration that keeps the ranking (AUROC) intact.

Why temperature scaling: the cohort is small, so richer calibrators (isotonic, Platt with bias)
overfit; one scalar per head fitted on out-of-fold logits is the robust choice.
Binary heads use ``sigmoid(z / T)``; 2-D logits ``[N, C]`` with integer labels use ``softmax(z / T)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax

from inference.uncertainty._common import CalibrationDataError

_LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))


def _binary_nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    s = z / temperature
    # log(1 + exp(-s)) for y=1 and log(1 + exp(s)) for y=0, computed stably.
    return float(np.mean(np.logaddexp(0.0, -s) * y + np.logaddexp(0.0, s) * (1.0 - y)))


def _multiclass_nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    lp = log_softmax(z / temperature, axis=1)
    return float(-np.mean(lp[np.arange(len(y)), y.astype(int)]))


class TemperatureScaler:
    """Fit ``T`` by minimising the NLL over ``log T`` (bounded to T in [0.05, 20])."""

    def __init__(self, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise ValueError("temperature must be positive")
        self.temperature = float(temperature)
        self.n_fit = 0
        self.nll_before = float("nan")
        self.nll_after = float("nan")

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> TemperatureScaler:
        """Fit on logits ``[N]`` (binary) or ``[N, C]``; rows with a NaN label are ignored."""
        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if z.ndim not in (1, 2) or z.shape[0] != y.shape[0]:
            raise ValueError(f"logits {z.shape} and labels {y.shape} do not match")
        keep = ~np.isnan(y)
        z, y = z[keep], y[keep]
        if np.isnan(z).any():
            raise ValueError("logits contain NaN where the label is known")
        if len(np.unique(y)) < 2:
            raise CalibrationDataError(
                "Temperature scaling needs labelled examples of at least two classes."
            )
        nll = _binary_nll if z.ndim == 1 else _multiclass_nll
        res = minimize_scalar(
            lambda lt: nll(z, y, math.exp(lt)), bounds=_LOG_T_BOUNDS, method="bounded",
            options={"xatol": 1e-6},
        )
        self.temperature = float(math.exp(res.x))
        self.n_fit = int(len(y))
        self.nll_before = nll(z, y, 1.0)
        self.nll_after = nll(z, y, self.temperature)
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: ``p(y=1)`` for 1-D logits, class probabilities for 2-D."""
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim == 2:
            return softmax(z / self.temperature, axis=1)
        return expit(z / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "temperature", "temperature": self.temperature, "n_fit": self.n_fit,
            "nll_before": self.nll_before, "nll_after": self.nll_after,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemperatureScaler:
        obj = cls(float(data["temperature"]))
        obj.n_fit = int(data.get("n_fit", 0))
        obj.nll_before = float(data.get("nll_before", float("nan")))
        obj.nll_after = float(data.get("nll_after", float("nan")))
        return obj

    def __repr__(self) -> str:
        return f"TemperatureScaler(temperature={self.temperature:.4g}, n_fit={self.n_fit})"


def fit_per_head(logits: np.ndarray, labels: np.ndarray) -> list[TemperatureScaler]:
    """One scaler per binary head of ``logits[N, K]``; missing labels (NaN) are skipped per head.

    A head with fewer than two observed classes keeps ``T = 1`` (identity) and ``n_fit = 0``
    instead of failing, so one rare outcome does not block calibrating the others.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if z.ndim != 2 or z.shape != y.shape:
        raise ValueError(f"logits {z.shape} and labels {y.shape} must both be [N, K]")
    scalers = []
    for k in range(z.shape[1]):
        try:
            scalers.append(TemperatureScaler().fit(z[:, k], y[:, k]))
        except CalibrationDataError:
            scalers.append(TemperatureScaler())
    return scalers


def transform_per_head(scalers: list[TemperatureScaler], logits: np.ndarray) -> np.ndarray:
    """Apply ``fit_per_head`` scalers column-wise to ``logits[N, K]``."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(scalers):
        raise ValueError(f"expected logits [N, {len(scalers)}], got {z.shape}")
    return np.stack([s.transform(z[:, k]) for k, s in enumerate(scalers)], axis=1)
