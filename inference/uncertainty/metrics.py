"""Evaluation metrics for binary outcome probabilities, all aware of missing (NaN) labels.

Metrics that are undefined on the available labels (e.g. AUROC with one class present, anything
with no labelled rows) return NaN instead of raising, so per-fold reports never crash on a rare
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.uncertainty._common import check_binary, paired_known


def _known(probs: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    p, y = paired_known(probs, labels)
    check_binary(y)
    if p.size and ((p < 0).any() or (p > 1).any()):
        raise ValueError("probabilities must lie in [0, 1]")
    return p, y


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics behind ECE and the reliability diagram (empty bins have NaN means)."""

    edges: np.ndarray
    mean_confidence: np.ndarray
    observed_rate: np.ndarray
    counts: np.ndarray


def reliability_bins(probs: object, labels: object, n_bins: int = 15) -> ReliabilityBins:
    """Equal-width bins of ``p(y=1)``; the last bin includes 1.0."""
    p, y = _known(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=p, minlength=n_bins) / counts
        rate = np.bincount(idx, weights=y, minlength=n_bins) / counts
    return ReliabilityBins(edges, conf, rate, counts)


def expected_calibration_error(probs: object, labels: object, n_bins: int = 15) -> float:
    """Binary ECE: count-weighted mean |observed rate - mean p| over equal-width bins of p(y=1)."""
    b = reliability_bins(probs, labels, n_bins)
    n = b.counts.sum()
    if n == 0:
        return float("nan")
    used = b.counts > 0
    return float(np.sum(b.counts[used] * np.abs(b.observed_rate[used] - b.mean_confidence[used])) / n)


ece = expected_calibration_error


def brier_score(probs: object, labels: object) -> float:
    """Mean squared error between ``p(y=1)`` and the 0/1 outcome."""
    p, y = _known(probs, labels)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def auroc(probs: object, labels: object) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    p, y = _known(probs, labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def auprc(probs: object, labels: object) -> float:
    """Average precision (area under the precision-recall curve); NaN when one class only."""
    from sklearn.metrics import average_precision_score

    p, y = _known(probs, labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(average_precision_score(y, p))


def f1_at(probs: object, labels: object, threshold: float = 0.5) -> float:
    """F1 of the positive class at ``p >= threshold``; NaN when only one class is present."""
    p, y = _known(probs, labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return 2 * tp / (2 * tp + fp + fn)


def reliability_diagram(
    probs: object, labels: object, path: str | Path, title: str = "", n_bins: int = 15
) -> Path:
    """Write a reliability diagram (top) with a count histogram (bottom) as a PNG; returns the path."""
    # Figure without pyplot: renders with Agg, never touches the global backend the app may use
    # (Qt), and is safe to call from a worker thread.
    from matplotlib.figure import Figure

    b = reliability_bins(probs, labels, n_bins)
    err = expected_calibration_error(probs, labels, n_bins)
    centers = (b.edges[:-1] + b.edges[1:]) / 2
    width = 1.0 / n_bins
    fig = Figure(figsize=(4.5, 5.0), dpi=100)
    ax, axh = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    used = b.counts > 0
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.bar(centers[used], b.observed_rate[used], width=width * 0.9, color="tab:blue",
           edgecolor="black", alpha=0.8, label="observed rate")
    ax.plot(b.mean_confidence[used], b.observed_rate[used], "o", color="tab:red", ms=3,
            label="mean predicted")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Observed frequency")
    # two lines: a long outcome name on one line with the numbers was cut off at 4.5 in
    ax.set_title(f"{title}\nECE = {err:.3f}, n = {int(b.counts.sum())}".strip(), fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    axh.bar(centers, b.counts, width=width * 0.9, color="grey", edgecolor="black")
    axh.set_xlim(0, 1)
    axh.set_xlabel("Predicted probability")
    axh.set_ylabel("Count")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
