"""Conformal sets/intervals: coverage on exchangeable synthetic data, set-size monotonicity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inference.uncertainty.conformal import (
    ConformalRegressor,
    MondrianConformal,
    conformal_quantile,
    coverage,
    fit_mondrian_per_head,
    interval_coverage,
    mean_interval_width,
    mean_set_size,
)


def _binary_population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # Imbalanced classes with a mediocre classifier: the case where marginal-only conformal
    # under-covers the minority class and Mondrian must not.
    y = (rng.random(n) < 0.25).astype(float)
    z = rng.normal(0, 1, n) + 1.2 * y - 0.8
    return 1 / (1 + np.exp(-z)), y


@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_marginal_and_class_conditional_coverage(alpha: float) -> None:
    rng = np.random.default_rng(0)
    p_all, y_all = _binary_population(rng, 2000)
    marg, cls0, cls1 = [], [], []
    for _ in range(200):
        perm = rng.permutation(len(y_all))
        cal, test = perm[:1000], perm[1000:]
        cp = MondrianConformal(alpha).fit(p_all[cal], y_all[cal])
        sets = cp.predict_set(p_all[test])
        yt = y_all[test]
        marg.append(coverage(sets, yt))
        cls0.append(coverage([s for s, v in zip(sets, yt, strict=True) if v == 0], yt[yt == 0]))
        cls1.append(coverage([s for s, v in zip(sets, yt, strict=True) if v == 1], yt[yt == 1]))
    assert abs(np.mean(marg) - (1 - alpha)) <= 0.02
    for c in (cls0, cls1):
        assert np.mean(c) >= 1 - alpha - 0.01
        assert np.mean(c) <= 1 - alpha + 0.03


def test_alpha_changes_after_fit_and_sets_shrink() -> None:
    rng = np.random.default_rng(1)
    p, y = _binary_population(rng, 800)
    cp = MondrianConformal(0.1).fit(p[:400], y[:400])
    sizes = [mean_set_size(cp.predict_set(p[400:], alpha=a)) for a in (0.05, 0.1, 0.2, 0.4)]
    assert all(a >= b for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[0] > sizes[-1]
    assert cp.predict_set(p[400:]) == cp.predict_set(p[400:], alpha=0.1)
    # Large alpha can give empty sets; tiny alpha gives {0,1} everywhere.
    assert frozenset() in cp.predict_set(p[400:], alpha=0.6)
    assert set(cp.predict_set(p[400:], alpha=0.001)) == {frozenset({0, 1})}


def test_set_contents_by_hand() -> None:
    # Class-1 scores (1-p) 0.1..0.4, class-0 scores (p) 0.1..0.4; n=4 per class.
    cp = MondrianConformal(0.2).fit([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1, 0, 0, 0, 0])
    # rank ceil(5 * 0.8) = 4 -> threshold 0.4 for both classes.
    assert cp.thresholds() == {0: pytest.approx(0.4), 1: pytest.approx(0.4)}
    sets = cp.predict_set([0.95, 0.05, 0.5, 0.6])
    # 0.5 conforms to neither class (both scores 0.5 > 0.4): the empty set.
    assert sets == [frozenset({1}), frozenset({0}), frozenset(), frozenset({1})]
    # Wider calibration scores (thresholds 0.7) make ambiguous probabilities give {0, 1}.
    wide = MondrianConformal(0.2).fit([0.9, 0.7, 0.5, 0.3, 0.1, 0.3, 0.5, 0.7], [1, 1, 1, 1, 0, 0, 0, 0])
    sets = wide.predict_set([0.95, 0.05, 0.5, 0.25])
    assert sets == [frozenset({1}), frozenset({0}), frozenset({0, 1}), frozenset({0})]
    assert [MondrianConformal.format_set(s) for s in sets] == ["1", "0", "0|1", "0"]
    assert MondrianConformal.format_set(frozenset()) == ""
    assert MondrianConformal.parse_set("0|1") == frozenset({0, 1})
    assert MondrianConformal.parse_set("") == frozenset()
    # alpha below 1/(n+1): the quantile is infinite, every class enters.
    assert cp.predict_set([0.99], alpha=0.1) == [frozenset({0, 1})]


def test_round_trip_and_nan_labels() -> None:
    rng = np.random.default_rng(2)
    p, y = _binary_population(rng, 300)
    y_nan = y.copy()
    y_nan[::4] = np.nan
    cp = MondrianConformal(0.1).fit(p, y_nan)
    assert sum(len(s) for s in cp.scores.values()) == int((~np.isnan(y_nan)).sum())
    back = MondrianConformal.from_dict(json.loads(json.dumps(cp.to_dict())))
    assert back.predict_set(p, alpha=0.15) == cp.predict_set(p, alpha=0.15)
    assert np.isnan(coverage([frozenset({1})], [np.nan]))
    with pytest.raises(ValueError):
        cp.predict_set([1.2])
    with pytest.raises(ValueError):
        cp.predict_set([0.5], alpha=1.5)


def test_quantile_finite_sample_rank() -> None:
    s = np.arange(1.0, 10.0)  # n = 9
    assert conformal_quantile(s, 0.1) == 9.0  # ceil(10 * 0.9) = 9
    assert conformal_quantile(s, 0.2) == 8.0
    assert conformal_quantile(s, 0.05) == np.inf


def test_regressor_coverage_and_clipping() -> None:
    rng = np.random.default_rng(3)
    covs, widths = [], []
    for _ in range(200):
        x = rng.uniform(0, 8, 600)
        t = x + rng.normal(0, 1, 600)
        reg = ConformalRegressor(0.1).fit(x[:300], t[:300])
        lo, hi = reg.interval(x[300:])
        covs.append(interval_coverage(lo, hi, t[300:]))
        widths.append(mean_interval_width(lo, hi))
    assert abs(np.mean(covs) - 0.9) <= 0.02
    assert np.mean(widths) == pytest.approx(2 * 1.645, rel=0.1)
    clipped = ConformalRegressor(0.1, clip=(0.0, 8.0)).fit(x[:300], t[:300])
    lo, hi = clipped.interval(np.array([0.2, 7.9]))
    assert lo[0] == 0.0 and hi[1] == 8.0
    lo80, hi80 = clipped.interval(np.array([4.0]), alpha=0.2)
    lo95, hi95 = clipped.interval(np.array([4.0]), alpha=0.05)
    assert hi95[0] - lo95[0] > hi80[0] - lo80[0]
    back = ConformalRegressor.from_dict(json.loads(json.dumps(clipped.to_dict())))
    np.testing.assert_array_equal(back.interval(x)[0], clipped.interval(x)[0])


def test_normalized_regressor_adapts_width() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 4000)
    sd = 0.1 + x  # heteroscedastic noise with known spread
    t = x + rng.normal(0, 1, 4000) * sd
    reg = ConformalRegressor(0.1, normalized=True).fit(x[:2000], t[:2000], scale=sd[:2000])
    lo, hi = reg.interval(x[2000:], scale=sd[2000:])
    assert abs(interval_coverage(lo, hi, t[2000:]) - 0.9) < 0.03
    w = hi - lo
    assert w[x[2000:] > 0.8].mean() > 3 * w[x[2000:] < 0.2].mean()
    with pytest.raises(ValueError):
        reg.interval(x[:3])
    t_nan = t.copy()
    t_nan[:10] = np.nan
    assert ConformalRegressor(0.1).fit(x, t_nan).residuals.size == 3990


def test_per_head_fitting_with_missing_heads() -> None:
    rng = np.random.default_rng(5)
    p, y = _binary_population(rng, 400)
    probs = np.stack([p, p, p], axis=1)
    labels = np.stack([y, np.where(y == 1, np.nan, 0.0), np.full(400, np.nan)], axis=1)
    heads = fit_mondrian_per_head(probs, labels, alpha=0.1)
    assert heads[2] is None
    assert heads[0] is not None and heads[1] is not None
    assert heads[0].predict_set(p) == MondrianConformal(0.1).fit(p, y).predict_set(p)
    # Head 1 never saw a positive: class 1 is always in its sets.
    assert heads[1].thresholds()[1] == np.inf
    assert all(1 in s for s in heads[1].predict_set(p))
