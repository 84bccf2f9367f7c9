"""Expected best score after k random settings (Dodge et al. 2019, arXiv:1909.03004) and its
bootstrap band: hand-computed cases, a Monte-Carlo check, failures, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.sweep.expected_best import bootstrap_band, expected_best, expected_best_curve


def direct(values, k, lower_is_better):
    """The paper's formula as written: sum_i v_(i) ((i/N)^k - ((i-1)/N)^k) for the maximum."""
    x = np.sort(-np.asarray(values, float) if lower_is_better else np.asarray(values, float))
    n = len(x)
    i = np.arange(1, n + 1)
    best = float(np.sum(x * ((i / n) ** k - ((i - 1) / n) ** k)))
    return -best if lower_is_better else best


def test_hand_computed():
    values = [3.0, 1.0, 2.0]  # any order
    # k = 1: the mean
    assert expected_best(values, 1, lower_is_better=False) == pytest.approx(2.0)
    assert expected_best(values, 1, lower_is_better=True) == pytest.approx(2.0)
    # k = 2, max: P(max = 1) = 1/9, P(max = 2) = 4/9 - 1/9, P(max = 3) = 1 - 4/9
    assert expected_best(values, 2, lower_is_better=False) == pytest.approx((1 * 1 + 2 * 3 + 3 * 5) / 9)
    # k = 2, min: P(min = 3) = 1/9, P(min = 2) = 3/9, P(min = 1) = 5/9
    assert expected_best(values, 2, lower_is_better=True) == pytest.approx((3 * 1 + 2 * 3 + 1 * 5) / 9)
    # k = 3, min: P(min = 1) = 1 - (2/3)^3 = 19/27, P(min = 2) = (2/3)^3 - (1/3)^3 = 7/27, P(min = 3) = 1/27
    assert expected_best(values, 3) == pytest.approx((1 * 19 + 2 * 7 + 3 * 1) / 27)
    curve = expected_best_curve(values, 3, lower_is_better=True)
    assert curve.shape == (3,) and curve.dtype == float
    assert curve == pytest.approx([2.0, 14 / 9, 36 / 27])


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_matches_the_formula_as_written(lower_is_better):
    values = np.random.default_rng(0).lognormal(3, 0.7, size=23)
    curve = expected_best_curve(values, 40, lower_is_better=lower_is_better)
    for k in (1, 2, 5, 17, 40):
        assert curve[k - 1] == pytest.approx(direct(values, k, lower_is_better), rel=1e-12)


@pytest.mark.parametrize("k", [2, 5])
def test_agrees_with_monte_carlo(k):
    values = np.array([41.0, 17.5, 88.0, 23.0, 17.5, 60.0, 30.0])  # 7 scores, one tie
    rng = np.random.default_rng(12345)
    draws = values[rng.integers(0, len(values), size=(200_000, k))]
    for lower_is_better, best in ((True, draws.min(axis=1)), (False, draws.max(axis=1))):
        se = best.std(ddof=1) / math.sqrt(len(best))
        assert abs(expected_best(values, k, lower_is_better) - best.mean()) < 3 * se


def test_equal_values():
    curve = expected_best_curve([7.25] * 9, 50)
    assert np.all(curve == 7.25)  # exactly: the summed-by-parts form has nothing to cancel
    assert expected_best([7.25], 3, lower_is_better=False) == 7.25


def test_monotone_in_k_from_the_mean_to_the_best():
    values = np.random.default_rng(1).normal(50, 10, size=30)
    low = expected_best_curve(values, 500, lower_is_better=True)
    high = expected_best_curve(values, 500, lower_is_better=False)
    assert np.all(np.diff(low) <= 1e-12) and np.all(np.diff(high) >= -1e-12)
    assert low[0] == pytest.approx(values.mean()) == high[0]
    assert low[-1] == pytest.approx(values.min(), abs=1e-6)
    assert high[-1] == pytest.approx(values.max(), abs=1e-6)
    assert np.all(low >= values.min() - 1e-9) and np.all(high <= values.max() + 1e-9)


def test_failures_make_the_honest_curve_infinite():
    values = [20.0, 30.0, math.inf, 25.0]
    curve = expected_best_curve(values, 2000)
    # P(all k draws fail) = (1/4)^k > 0 for every k: infinite, never NaN (0 * inf), even where
    # (1/4)^k underflows to 0
    assert np.all(curve == math.inf)
    assert expected_best(values, 1) == math.inf
    assert np.all(expected_best_curve([20.0, math.nan], 5) == math.inf)  # NaN is a failure too
    assert np.all(expected_best_curve([math.inf, math.inf], 5) == math.inf)
    # higher is better: a failure is -inf
    assert np.all(expected_best_curve([0.5, math.nan, 0.7], 5, lower_is_better=False) == -math.inf)
    # no failure: finite at every k
    assert np.all(np.isfinite(expected_best_curve([20.0, 30.0, 25.0], 2000)))


def test_a_penalty_gives_finite_numbers():
    values = [20.0, 30.0, math.inf, 25.0, math.nan]
    curve = expected_best_curve(values, 3000, failed=400.0)
    assert np.all(np.isfinite(curve))
    # the same as scoring each failure 400
    assert curve == pytest.approx(expected_best_curve([20.0, 30.0, 400.0, 25.0, 400.0], 3000))
    assert curve[0] == pytest.approx((20 + 30 + 400 + 25 + 400) / 5)
    assert curve[-1] == pytest.approx(20.0)
    assert expected_best(values, 2, failed=0) == pytest.approx(direct([20, 30, 0, 25, 0], 2, True))
    assert np.all(expected_best_curve([0.5, math.nan], 3, lower_is_better=False, failed=0.0) >= 0.0)


@pytest.mark.parametrize("call, needle", [
    (lambda: expected_best_curve([], 3), "no scores"),
    (lambda: expected_best_curve([1.0], 0), "k must be"),
    (lambda: expected_best_curve([1.0], 2.5), "k must be"),
    (lambda: expected_best([1.0], True), "k must be"),
    (lambda: expected_best_curve([1.0], 3, failed="drop"), "failed must be"),
    (lambda: expected_best_curve([1.0], 3, failed=math.inf), "failed must be"),
    (lambda: bootstrap_band([1.0], 3, n_boot=0), "n_boot"),
    (lambda: bootstrap_band([1.0], 3, level=1.0), "level"),
])
def test_bad_arguments(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_bootstrap_band_is_deterministic():
    values = np.random.default_rng(2).lognormal(3, 0.5, size=25)
    a = bootstrap_band(values, 30, n_boot=300, seed=7)
    b = bootstrap_band(values, 30, n_boot=300, seed=7)
    c = bootstrap_band(values, 30, n_boot=300, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == a[1].shape == (30,)


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_bootstrap_band_contains_the_curve(lower_is_better):
    values = np.random.default_rng(3).lognormal(3, 0.5, size=40)
    curve = expected_best_curve(values, 40, lower_is_better=lower_is_better)
    low, high = bootstrap_band(values, 40, lower_is_better=lower_is_better)
    assert np.all(low <= curve) and np.all(curve <= high)
    assert np.all(low < high)


def test_bootstrap_band_narrows_with_more_data():
    rng = np.random.default_rng(4)
    widths = []
    for n in (15, 60, 240):
        low, high = bootstrap_band(rng.lognormal(3, 0.5, size=n), 10, n_boot=500)
        widths.append(float(np.mean(high - low)))
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2


def test_bootstrap_band_with_a_failure():
    values = [20.0, 25.0, 30.0, 22.0, 27.0, math.inf, 24.0, 26.0, 21.0, 23.0]
    low, high = bootstrap_band(values, 5, n_boot=400)
    # about 65% of the resamples hold the failure: their curves are infinite, so the band's
    # upper (worse) edge is too; the lower edge comes from failure-free resamples
    assert np.all(high == math.inf) and np.all(np.isfinite(low))
    low, high = bootstrap_band(values, 5, n_boot=400, failed=100.0)
    curve = expected_best_curve(values, 5, failed=100.0)
    assert np.all(np.isfinite(high)) and np.all(low <= curve) and np.all(curve <= high)
