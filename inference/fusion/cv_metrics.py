"""Metrics of the nested-CV table from out-of-fold logits: AUROC, Brier, ECE, conformal coverage and singletons.

Calibration and conformal quantities are estimated out-of-fold too: the temperature and the conformal
thresholds applied to a test fold are fitted on the other folds' out-of-fold predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from inference.fusion.candidates import auroc
from inference.fusion.nested_cv import OutcomeRun
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import MondrianConformal, PooledConformal
from inference.uncertainty.metrics import brier_score, expected_calibration_error

ALPHAS = (0.2, 0.1, 0.05)


def calibrated(logits: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Temperature fitted on the other folds, applied to each fold."""
    probs = np.zeros(len(y))
    for k in np.unique(folds):
        test, rest = folds == k, folds != k
        scaler = TemperatureScaler()
        if len(np.unique(y[rest])) == 2:
            scaler.fit(logits[rest], y[rest])
        probs[test] = scaler.transform(logits[test])
    return probs


@dataclass
class SetStats:
    coverage: float
    singletons: float
    coverage_pos: float
    coverage_neg: float


def conformal_oof(probs: np.ndarray, y: np.ndarray, folds: np.ndarray, alpha: float, pooled: bool) -> SetStats:
    """Sets for each fold from a calibrator fitted on the other folds' probabilities."""
    hits, single = np.zeros(len(y), bool), np.zeros(len(y), bool)
    for k in np.unique(folds):
        test, rest = folds == k, folds != k
        cal = (PooledConformal if pooled else MondrianConformal)(alpha).fit(probs[rest], y[rest])
        sets = cal.predict_set(probs[test])
        hits[test] = [int(lab) in s for s, lab in zip(sets, y[test], strict=True)]
        single[test] = [len(s) == 1 for s in sets]
    pos, neg = y == 1, y == 0
    return SetStats(float(hits.mean()), float(single.mean()), float(hits[pos].mean()) if pos.any() else math.nan,
                    float(hits[neg].mean()) if neg.any() else math.nan)


@dataclass
class RowMetrics:
    """One table row: per-outcome AUROC (mean, sd over seeds) and pooled calibration/set metrics."""

    auroc: dict[str, float]
    auroc_sd: dict[str, float]
    brier: float
    ece: float
    coverage: float
    singletons: float

    @property
    def macro(self) -> float:
        return float(np.mean(list(self.auroc.values())))

    @property
    def macro_sd(self) -> float:
        return float(np.mean(list(self.auroc_sd.values())))


def row_metrics(runs: Sequence[OutcomeRun], row: str, outcomes: Sequence[str], alpha: float = 0.1) -> RowMetrics | None:
    per_auc: dict[str, list[float]] = {o: [] for o in outcomes}
    briers, eces, covs, singles = [], [], [], []
    seeds = sorted({r.seed for r in runs})
    for seed in seeds:
        probs_all, y_all = [], []
        for r in runs:
            if r.seed != seed or row not in r.logits:
                continue
            per_auc[r.outcome].append(auroc(r.logits[row], r.y))
            p = calibrated(r.logits[row], r.y, r.folds)
            probs_all.append(p)
            y_all.append(r.y)
            stats = conformal_oof(p, r.y, r.folds, alpha, pooled=False)
            covs.append(stats.coverage)
            singles.append(stats.singletons)
        if probs_all:
            p, y = np.concatenate(probs_all), np.concatenate(y_all)
            briers.append(brier_score(p, y))
            eces.append(expected_calibration_error(p, y, n_bins=10))
    if not any(per_auc.values()):
        return None
    return RowMetrics({o: float(np.mean(v)) for o, v in per_auc.items() if v},
                      {o: float(np.std(v)) for o, v in per_auc.items() if v},
                      float(np.mean(briers)), float(np.mean(eces)), float(np.mean(covs)), float(np.mean(singles)))


def conformal_study(runs: Sequence[OutcomeRun], row: str, outcomes: Sequence[str]) -> dict[tuple[str, str, float], SetStats]:
    """(outcome, 'Mondrian'|'pooled', alpha) → set statistics averaged over seeds."""
    out: dict[tuple[str, str, float], SetStats] = {}
    for outcome in outcomes:
        for kind in ("Mondrian", "pooled"):
            for alpha in ALPHAS:
                stats = []
                for r in runs:
                    if r.outcome == outcome and row in r.logits:
                        p = calibrated(r.logits[row], r.y, r.folds)
                        stats.append(conformal_oof(p, r.y, r.folds, alpha, pooled=kind == "pooled"))
                if stats:
                    out[(outcome, kind, alpha)] = SetStats(*(float(np.nanmean([getattr(s, f) for s in stats]))
                                                             for f in ("coverage", "singletons", "coverage_pos",
                                                                       "coverage_neg")))
    return out


def oof_probabilities(runs: Sequence[OutcomeRun], row: str, outcome: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated OOF probabilities and labels of one seed (for conformal scores and reliability diagrams)."""
    r = next(r for r in runs if r.outcome == outcome and r.seed == seed and row in r.logits)
    return calibrated(r.logits[row], r.y, r.folds), r.y


def pooled_logits(runs: Sequence[OutcomeRun], row: str, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """OOF logits and labels of every seed, concatenated (a temperature fitted on them is more stable)."""
    pairs = [(r.logits[row], r.y) for r in runs if r.outcome == outcome and row in r.logits]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)
