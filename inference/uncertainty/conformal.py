"""Split conformal prediction: class-conditional sets for binary outcomes, intervals for scores.

Why store calibration scores instead of one threshold: the UI lets the user pick the coverage
(80/90/95 %) after the model ships, so the quantile must be recomputable for any alpha.
Guarantee (exchangeability): per class c, P(c in set | y = c) >= 1 - alpha (Mondrian).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from inference.uncertainty._common import CalibrationDataError, as_1d, check_binary, paired_known


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(alpha)


def conformal_quantile(sorted_scores: np.ndarray, alpha: float) -> float:
    """The ceil((n+1)(1-alpha))-th smallest score; +inf when that rank exceeds n (too few points)."""
    n = len(sorted_scores)
    rank = math.ceil((n + 1) * (1.0 - alpha) - 1e-12)
    if rank > n or n == 0:
        return math.inf
    return float(sorted_scores[rank - 1])


def _positive_probs(probs: object) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1]
    p = as_1d(arr, "probs")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1] (no NaN)")
    return p


class MondrianConformal:
    """Class-conditional split conformal sets for a binary outcome; score = 1 - p(true class)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = _check_alpha(alpha)
        self.scores: dict[int, np.ndarray] = {0: np.empty(0), 1: np.empty(0)}

    @property
    def is_fitted(self) -> bool:
        return any(len(s) for s in self.scores.values())

    def fit(self, probs: object, labels: object) -> MondrianConformal:
        """Store per-class nonconformity scores; ``probs`` are p(y=1) ``[N]`` (or ``[N, 2]``)."""
        p = _positive_probs(probs)
        p, y = paired_known(p, labels)
        check_binary(y)
        if p.size == 0:
            raise CalibrationDataError("Conformal calibration needs at least one labelled example.")
        self.scores = {
            1: np.sort(1.0 - p[y == 1]),
            0: np.sort(p[y == 0]),  # 1 - p(y=0) = p
        }
        return self

    def thresholds(self, alpha: float | None = None) -> dict[int, float]:
        """Per-class score quantile: class c enters the set when 1 - p(c) <= threshold[c]."""
        a = self.alpha if alpha is None else _check_alpha(alpha)
        return {c: conformal_quantile(s, a) for c, s in self.scores.items()}

    def predict_set(self, probs: object, alpha: float | None = None) -> list[frozenset[int]]:
        """Prediction set per example at ``alpha`` (default: the one given at construction)."""
        if not self.is_fitted:
            raise RuntimeError("MondrianConformal.predict_set called before fit")
        p = _positive_probs(probs)
        q = self.thresholds(alpha)
        in1 = (1.0 - p) <= q[1]
        in0 = p <= q[0]
        return [
            frozenset(c for c, inside in ((0, a0), (1, a1)) if inside)
            for a0, a1 in zip(in0.tolist(), in1.tolist(), strict=True)
        ]

    @staticmethod
    def format_set(s: Iterable[int]) -> str:
        """'0', '1', '0|1' or '' (empty set) — the CSV/UI representation."""
        return "|".join(str(c) for c in sorted(s))

    @staticmethod
    def parse_set(text: str) -> frozenset[int]:
        """Inverse of :meth:`format_set`."""
        return frozenset(int(t) for t in text.split("|") if t.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "mondrian_binary", "alpha": self.alpha,
            "scores": {str(c): s.tolist() for c, s in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MondrianConformal:
        obj = cls(float(data["alpha"]))
        obj.scores = {int(c): np.sort(np.asarray(v, dtype=np.float64)) for c, v in data["scores"].items()}
        return obj


class PooledConformal(MondrianConformal):
    """Marginal (pooled) split conformal sets, score = 1 - p(true class), one threshold for both classes.

    Why next to Mondrian: pooling the two classes' scores gives smaller sets (more singletons) at the
    same marginal coverage, at the price of no per-class guarantee — a rare class can be under-covered.
    """

    def thresholds(self, alpha: float | None = None) -> dict[int, float]:
        a = self.alpha if alpha is None else _check_alpha(alpha)
        q = conformal_quantile(np.sort(np.concatenate([self.scores[0], self.scores[1]])), a)
        return {0: q, 1: q}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "type": "pooled_binary"}


def conformal_from_dict(data: dict[str, Any]) -> MondrianConformal:
    """Mondrian or pooled, by the stored ``type``."""
    return PooledConformal.from_dict(data) if data.get("type") == "pooled_binary" else MondrianConformal.from_dict(data)


def fit_mondrian_per_head(
    probs: object, labels: object, alpha: float = 0.1
) -> list[MondrianConformal | None]:
    """One :class:`MondrianConformal` per column of ``probs[N, K]``; None for a head without labels.

    A class never observed in a head's labels gets an infinite threshold (always in the set),
    which is the honest answer when there is no calibration evidence for it.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if p.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"probs {p.shape} and labels {y.shape} must both be [N, K]")
    out: list[MondrianConformal | None] = []
    for k in range(p.shape[1]):
        known = ~np.isnan(y[:, k])
        out.append(MondrianConformal(alpha).fit(p[known, k], y[known, k]) if known.any() else None)
    return out


class ConformalRegressor:
    """Split conformal intervals ``pred ± q`` from absolute residuals.

    With ``normalized=True`` the residual is divided by a per-example ``scale`` (e.g. a predicted
    spread), giving adaptive widths ``pred ± q * scale``. ``clip=(lo, hi)`` bounds the interval to
    the score's valid range (e.g. 0-8 for geographic extent).
    """

    def __init__(
        self, alpha: float = 0.1, *, normalized: bool = False, clip: tuple[float, float] | None = None
    ) -> None:
        self.alpha = _check_alpha(alpha)
        self.normalized = normalized
        self.clip = clip
        self.residuals = np.empty(0)

    def _scale(self, scale: object, n: int) -> np.ndarray:
        if not self.normalized:
            return np.ones(n)
        if scale is None:
            raise ValueError("normalized ConformalRegressor needs a scale per example")
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))
        if (s <= 0).any() or np.isnan(s).any():
            raise ValueError("scale must be positive")
        return s

    def fit(self, pred: object, target: object, scale: object = None) -> ConformalRegressor:
        """Store sorted (normalised) absolute residuals; rows with NaN target are ignored."""
        p0 = as_1d(pred, "pred")
        s0 = self._scale(scale, len(p0))
        t0 = as_1d(target, "target")
        keep = ~np.isnan(t0)
        p, t = paired_known(p0, t0, "pred")
        if p.size == 0:
            raise CalibrationDataError("Conformal calibration needs at least one scored example.")
        self.residuals = np.sort(np.abs(t - p) / s0[keep])
        return self

    def quantile(self, alpha: float | None = None) -> float:
        a = self.alpha if alpha is None else _check_alpha(alpha)
        return conformal_quantile(self.residuals, a)

    def interval(
        self, pred: object, alpha: float | None = None, scale: object = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds per prediction (clipped to ``clip`` when set)."""
        if self.residuals.size == 0:
            raise RuntimeError("ConformalRegressor.interval called before fit")
        p = as_1d(pred, "pred")
        half = self.quantile(alpha) * self._scale(scale, len(p))
        lo, hi = p - half, p + half
        if self.clip is not None:
            lo, hi = np.clip(lo, *self.clip), np.clip(hi, *self.clip)
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "split_regression", "alpha": self.alpha, "normalized": self.normalized,
            "clip": list(self.clip) if self.clip is not None else None,
            "residuals": self.residuals.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConformalRegressor:
        clip = data.get("clip")
        obj = cls(float(data["alpha"]), normalized=bool(data.get("normalized", False)),
                  clip=(float(clip[0]), float(clip[1])) if clip is not None else None)
        obj.residuals = np.sort(np.asarray(data["residuals"], dtype=np.float64))
        return obj


def coverage(sets: Sequence[frozenset[int]], labels: object) -> float:
    """Fraction of labelled examples whose label lies in its set (NaN labels ignored)."""
    y = as_1d(labels, "labels")
    if len(sets) != len(y):
        raise ValueError("sets and labels differ in length")
    hits = [int(lab) in s for s, lab in zip(sets, y.tolist(), strict=True) if not math.isnan(lab)]
    return float(np.mean(hits)) if hits else float("nan")


def mean_set_size(sets: Sequence[frozenset[int]]) -> float:
    return float(np.mean([len(s) for s in sets])) if len(sets) else float("nan")


def interval_coverage(lo: object, hi: object, target: object) -> float:
    """Fraction of scored examples with lo <= target <= hi (NaN targets ignored)."""
    lo_a, hi_a, t = as_1d(lo, "lo"), as_1d(hi, "hi"), as_1d(target, "target")
    keep = ~np.isnan(t)
    if not keep.any():
        return float("nan")
    return float(np.mean((lo_a[keep] <= t[keep]) & (t[keep] <= hi_a[keep])))


def mean_interval_width(lo: object, hi: object) -> float:
    return float(np.mean(as_1d(hi, "hi") - as_1d(lo, "lo")))
