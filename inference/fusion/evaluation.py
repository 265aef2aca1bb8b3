"""Metrics for the ablation ladder from out-of-fold predictions: discrimination, calibration, conformal.

Calibration and conformal quantities are themselves estimated out-of-fold (fit on the other folds' OOF
predictions, scored on the held-out fold), so the reported ECE and coverage are honest.
"""

from __future__ import annotations

import math

import numpy as np

from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal, coverage, mean_set_size
from inference.uncertainty.metrics import auprc, auroc, brier_score, expected_calibration_error, f1_at


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def calibrated_oof(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per head, temperature fitted on the other folds, applied to each fold."""
    probs = np.full_like(logits, np.nan)
    for k in np.unique(folds):
        test, rest = folds == k, folds != k
        for h in range(logits.shape[1]):
            known = ~np.isnan(labels[rest, h])
            scaler = TemperatureScaler()
            if len(np.unique(labels[rest, h][known])) == 2:
                scaler.fit(logits[rest, h], labels[rest, h])
            probs[test, h] = scaler.transform(logits[test, h])
    return probs


def head_metrics(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray, alpha: float) -> dict[str, list[float]]:
    probs = calibrated_oof(logits, labels, folds)
    raw = 1.0 / (1.0 + np.exp(-logits))
    out: dict[str, list[float]] = {k: [] for k in ("auroc", "auprc", "f1", "ece_raw", "ece", "brier", "coverage", "set_size")}
    for h in range(logits.shape[1]):
        y, p = labels[:, h], probs[:, h]
        out["auroc"].append(auroc(p, y))
        out["auprc"].append(auprc(p, y))
        prevalence = np.nanmean(y)
        out["f1"].append(f1_at(p, y, threshold=float(prevalence)) if not math.isnan(prevalence) else math.nan)
        out["ece_raw"].append(expected_calibration_error(raw[:, h], y))
        out["ece"].append(expected_calibration_error(p, y))
        out["brier"].append(brier_score(p, y))
        covs, sizes = [], []
        for k in np.unique(folds):
            test, rest = (folds == k) & ~np.isnan(y), (folds != k) & ~np.isnan(y)
            if test.sum() == 0 or len(np.unique(y[rest])) < 2:
                continue
            conformal = MondrianConformal(alpha).fit(p[rest], y[rest])
            sets = conformal.predict_set(p[test])
            covs.append(coverage(sets, y[test]))
            sizes.append(mean_set_size(sets))
        out["coverage"].append(_nanmean(covs))
        out["set_size"].append(_nanmean(sizes))
    return out


def summary(metrics: dict[str, list[float]]) -> dict[str, float]:
    return {k: _nanmean(v) for k, v in metrics.items()}


def severity_interval_metrics(pred: np.ndarray, target: np.ndarray, folds: np.ndarray, alpha: float,
                              scale: tuple[float, float] = (8.0, 6.0)) -> dict[str, float]:
    """Per-image severity (0–1 scale) → MAE, conformal interval coverage and width on the original scale."""
    out: dict[str, float] = {}
    for j, (name, top) in enumerate(zip(("geographic_extent", "opacity"), scale, strict=True)):
        p, t = pred[..., j] * top, target[..., j] * top
        known = ~np.isnan(t) & ~np.isnan(p)
        out[f"{name}_mae"] = float(np.abs(p[known] - t[known]).mean()) if known.any() else math.nan
        covs, widths = [], []
        for k in np.unique(folds):
            test = known & (folds[:, None] == k)
            rest = known & (folds[:, None] != k)
            if test.sum() == 0 or rest.sum() < 5:
                continue
            reg = ConformalRegressor(alpha, clip=(0.0, top)).fit(p[rest], t[rest])
            lo, hi = reg.interval(p[test])
            covs.append(float(np.mean((t[test] >= lo) & (t[test] <= hi))))
            widths.append(float(np.mean(hi - lo)))
        out[f"{name}_coverage"] = _nanmean(covs)
        out[f"{name}_width"] = _nanmean(widths)
    return out
