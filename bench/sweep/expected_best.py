"""Expected best score after k random hyperparameter settings (Dodge et al. 2019, "Show Your
Work: Improved Reporting of Experimental Results", arXiv:1909.03004, section 3).

A sweep observes N scores v_(1) <= ... <= v_(N), one per random setting. Drawing k settings
i.i.d. (with replacement) from that empirical distribution, the best of them has

    E[max of k] = sum_i v_(i) * ((i/N)^k - ((i-1)/N)^k)

(P(max <= v_(i)) = (i/N)^k). As a curve over k = 1..K it shows what each budget of random
search buys: k = 1 is the mean score, large k approaches the best observed. For scores where
lower is better (FID) the expected *minimum* is the same formula on the negated scores.

Failed runs (diverged, NaN) are a real outcome of a setting, not missing data: dropping them
would credit a fragile model with its lucky settings only. They enter as the worst score,
+inf when lower is better (-inf when higher is). Then E[best of k] is infinite iff all k
draws can be failures, i.e. iff P(all k fail) = (F/N)^k > 0 -- and that holds for every k as
soon as one of the N runs failed (F >= 1). So with ``failed="worst"`` (the honest default) a
single failure makes the whole curve infinite; ``failed=<number>`` substitutes a finite
penalty (e.g. the FID of noise images) for each failure so that a plot shows finite numbers,
at the price of depending on that choice. Every non-finite value counts as a failure.
"""

from __future__ import annotations

import math

import numpy as np


def _prepared(values, lower_is_better: bool, failed) -> tuple[np.ndarray, int]:
    """The scores as a "higher is better" array sorted ascending, failures (non-finite values)
    replaced by the penalty when one is given, and the number of failures left as -inf."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("expected best: no scores")
    bad = ~np.isfinite(v)
    if isinstance(failed, str):
        if failed != "worst":
            raise ValueError(f"failed must be 'worst' or a finite number, got {failed!r}")
        v = v.copy()
        v[bad] = np.inf if lower_is_better else -np.inf
        n_failed = int(bad.sum())
    else:
        if isinstance(failed, bool) or not isinstance(failed, (int, float)) or not math.isfinite(failed):
            raise ValueError(f"failed must be 'worst' or a finite number, got {failed!r}")
        v = np.where(bad, float(failed), v)
        n_failed = 0
    x = -v if lower_is_better else v
    return np.sort(x), n_failed


def _ks(k_max: int) -> np.ndarray:
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k_max!r}")
    return np.arange(1, int(k_max) + 1)


def _tail_weights(n: int, k_max: int) -> np.ndarray:
    """``W[k-1, i-1] = (i/N)^k`` for i = 1..N-1: P(the best of k draws is at most x_(i))."""
    i = np.arange(1, n) / n
    return i[None, :] ** _ks(k_max)[:, None]


def _curves(x_sorted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """E[max of k] for ascending rows ``x_sorted`` [..., N], in the summed-by-parts form
    x_(N) - sum_{i<N} (x_(i+1) - x_(i)) (i/N)^k: every term is >= 0, nothing cancels, and
    equal scores give exactly that score."""
    gaps = np.diff(x_sorted, axis=-1)  # [..., N-1]
    return x_sorted[..., -1:] - gaps @ weights.T  # [..., K]


def expected_best_curve(values, k_max: int, lower_is_better: bool = True,
                        failed: str | float = "worst") -> np.ndarray:
    """E[best score among k random settings] for k = 1..k_max, as an array of k_max floats
    (index k-1). ``values``: one score per setting, failures as inf or NaN. ``failed``:
    ``"worst"`` (failures are the worst possible score, so the curve is inf -- or -inf when
    higher is better -- at every k once any run failed, since then all k draws fail with
    probability > 0) or a finite score substituted for each failure."""
    x, n_failed = _prepared(values, lower_is_better, failed)
    sign = -1.0 if lower_is_better else 1.0
    if n_failed:
        # (F/N)^k > 0 for every k: an infinite expectation. Decided here, not by the formula,
        # where (F/N)^k underflows to 0 for large k and 0 * inf would give NaN.
        return np.full(len(_ks(k_max)), sign * -np.inf)
    return sign * _curves(x, _tail_weights(len(x), k_max))


def expected_best(values, k: int, lower_is_better: bool = True, failed: str | float = "worst") -> float:
    """E[best score among ``k`` random settings]; see ``expected_best_curve``."""
    return float(expected_best_curve(values, k, lower_is_better, failed)[-1])


def bootstrap_band(values, k_max: int, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                   lower_is_better: bool = True, failed: str | float = "worst"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A ``level`` band around ``expected_best_curve``: the N scores resampled with replacement
    ``n_boot`` times, the curve of each resample, and per k the (1-level)/2 and (1+level)/2
    percentiles -> (low, high), arrays of k_max floats. The percentiles are order statistics
    (the lower one rounded down, the upper one up), never interpolations: a slightly wide
    band, and one that stays defined when failures make some resampled curves infinite.
    Deterministic for a ``seed``."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number >= 1, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    x, _ = _prepared(values, lower_is_better, failed)
    n, ks = len(x), _ks(k_max)
    rng = np.random.default_rng(seed)
    samples = np.sort(x[rng.integers(0, n, size=(int(n_boot), n))], axis=1)
    failing = np.isneginf(samples).any(axis=1)  # resamples holding a failure: -inf curves
    curves = np.full((int(n_boot), len(ks)), -np.inf)
    ok = ~failing
    if ok.any():
        curves[ok] = _curves(samples[ok], _tail_weights(n, k_max))
    alpha = (1 - level) / 2
    low = np.quantile(curves, alpha, axis=0, method="lower")
    high = np.quantile(curves, 1 - alpha, axis=0, method="higher")
    if lower_is_better:
        low, high = -high, -low
    return low, high
