"""Temperature scaling and metrics on synthetic data with known calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.uncertainty import metrics as M
from inference.uncertainty._common import CalibrationDataError
from inference.uncertainty.calibration import TemperatureScaler, fit_per_head, transform_per_head


def _calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return z, y


def test_temperature_recovers_overconfidence_and_lowers_ece() -> None:
    rng = np.random.default_rng(0)
    z, y = _calibrated(rng, 4000)
    logits = 3.0 * z  # overconfident by a factor 3
    ts = TemperatureScaler().fit(logits, y)
    assert ts.temperature == pytest.approx(3.0, rel=0.15)
    raw = 1 / (1 + np.exp(-logits))
    cal = ts.transform(logits)
    assert M.expected_calibration_error(cal, y) < 0.5 * M.expected_calibration_error(raw, y)
    assert M.brier_score(cal, y) < M.brier_score(raw, y)
    assert ts.nll_after < ts.nll_before
    # Monotone transform: ranking and AUROC are unchanged.
    assert M.auroc(cal, y) == pytest.approx(M.auroc(raw, y))


def test_ignores_nan_labels_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    z, y = _calibrated(rng, 600)
    y_missing = y.copy()
    y_missing[::3] = np.nan
    z_bad = 2.0 * z
    z_bad[::3] = 1e6  # rows with missing labels must not influence the fit
    a = TemperatureScaler().fit(z_bad, y_missing)
    keep = ~np.isnan(y_missing)
    b = TemperatureScaler().fit(z_bad[keep], y[keep])
    assert a.temperature == pytest.approx(b.temperature)
    assert a.n_fit == keep.sum()
    c = TemperatureScaler.from_dict(a.to_dict())
    np.testing.assert_array_equal(c.transform(z), a.transform(z))


def test_multiclass_logits() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1.5, (3000, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p]).astype(float)
    ts = TemperatureScaler().fit(z * 2.5, y)
    assert ts.temperature == pytest.approx(2.5, rel=0.15)
    assert ts.transform(z).sum(1) == pytest.approx(np.ones(3000))


def test_single_class_raises_user_error() -> None:
    with pytest.raises(CalibrationDataError):
        TemperatureScaler().fit(np.array([0.1, 2.0, np.nan]), np.array([1.0, 1.0, np.nan]))


def test_fit_per_head_handles_missing_and_degenerate_heads() -> None:
    rng = np.random.default_rng(3)
    z0, y0 = _calibrated(rng, 2000)
    z1, y1 = _calibrated(rng, 2000)
    logits = np.stack([z0 * 3, z1 * 0.5, z1], axis=1)
    labels = np.stack([y0, y1, np.full(2000, np.nan)], axis=1)
    labels[rng.random(2000) < 0.3, 0] = np.nan
    scalers = fit_per_head(logits, labels)
    assert scalers[0].temperature == pytest.approx(3.0, rel=0.2)
    assert scalers[1].temperature == pytest.approx(0.5, rel=0.2)
    assert scalers[2].temperature == 1.0 and scalers[2].n_fit == 0
    probs = transform_per_head(scalers, logits)
    assert probs.shape == (2000, 3)


def test_metrics_values_and_nan_behaviour(tmp_path) -> None:
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.5])
    y = np.array([1, 1, 0, 0, 0, np.nan])
    assert M.auroc(p, y) == pytest.approx(1.0)
    assert M.auprc(p, y) == pytest.approx(1.0)
    assert M.brier_score(p, y) == pytest.approx(np.mean([0.01, 0.04, 0.09, 0.04, 0.36]))
    # threshold 0.5: TP=2, FP=1 (0.6), FN=0 -> F1 = 4/5
    assert M.f1_at(p, y) == pytest.approx(0.8)
    assert M.f1_at(p, y, threshold=0.7) == pytest.approx(1.0)
    one_class = np.array([1.0, 1.0, np.nan])
    for fn in (M.auroc, M.auprc, M.f1_at):
        assert math.isnan(fn(np.array([0.2, 0.7, 0.5]), one_class))
    assert math.isnan(M.expected_calibration_error([0.5], [np.nan]))
    assert math.isnan(M.brier_score([0.5], [np.nan]))
    with pytest.raises(ValueError):
        M.auroc([0.2, 0.3], [0, 2])


def test_ece_hand_computed() -> None:
    # Two bins of 2 examples (n_bins=2): bin [0,0.5] mean p 0.2, rate 0.5; bin (0.5,1] mean p 0.9, rate 1.
    p = np.array([0.1, 0.3, 0.8, 1.0])
    y = np.array([0, 1, 1, 1])
    assert M.expected_calibration_error(p, y, n_bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    b = M.reliability_bins(p, y, n_bins=2)
    np.testing.assert_array_equal(b.counts, [2, 2])


def test_reliability_diagram_writes_png(tmp_path) -> None:
    rng = np.random.default_rng(4)
    z, y = _calibrated(rng, 300)
    y[:10] = np.nan
    out = M.reliability_diagram(1 / (1 + np.exp(-z)), y, tmp_path / "sub" / "rel.png", title="ICU")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 200 and len(np.unique(np.asarray(im.convert("L")))) > 10
