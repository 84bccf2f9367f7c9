"""Summaries across training seeds: t-intervals of every summary column of the column table,
and Welch's t-test for the FID ranking.

Seeds are the unit of replication: every interval is across training seeds of one
variant (each seed contributes one value), never across images.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd

from bench.store.columns import Column

CONFIDENCE = 0.95
CI_METHOD = (
    "95% confidence intervals are across training seeds (n: the seeds that have the value; one seed "
    "gives no interval, shown as n/a, not as zero width). A quantity that cannot be negative (FID, "
    "KID, MSE, images/s) gets the modified Cox interval for the mean of a log-normal quantity "
    "(Olsson 2005): exp(ȳ + s²/2 ± t(0.975, n − 1) · √(s²/n + s⁴/(2(n − 1)))), ȳ and s the mean and "
    "standard deviation of the logs, so it never extends below zero; where a value is 0 or below "
    "(KID's unbiased estimate can be) and for the other columns: the Student t-interval "
    "mean ± t(0.975, n − 1) · s / √n, cut at the quantity's range (0 to 1 for precision, recall, "
    "coverage) where it would leave it."
)
TEST_METHOD = (
    "The lead of each variant over the next one by mean FID is tested with Welch's unequal-variance "
    "t-test across seeds (two-sided, significant when p < 0.05); it needs at least 2 seeds of each."
)
SUMMARY_COLUMNS = ["variant", "family", "metric", "label", "column", "seeds", "n", "mean", "ci95_low",
                   "ci95_high"]


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int
    method: str = "t"  # "t", "t, cut at the range" or "log-normal" (see CI_METHOD)

    @property
    def available(self) -> bool:
        """Whether there is an interval at all (it needs two seeds)."""
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def finite(values) -> np.ndarray:
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


def t_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student t confidence interval of the finite values (NaN/None are left out)."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    from scipy import stats  # 1.2 s to import: only where there are two seeds to compare

    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def bounded_interval(values, minimum: float | None = None, maximum: float | None = None,
                     confidence: float = CONFIDENCE) -> Interval:
    """Mean and confidence interval of a quantity that lies in [minimum, maximum]: the log-normal
    interval when the quantity is non-negative and every value is positive, else the t-interval
    cut at the range (the point estimate is the sample mean either way)."""
    x = finite(values)
    plain = t_interval(x, confidence)
    if not plain.available:
        return plain
    if minimum == 0 and maximum is None and (x > 0).all():
        return _lognormal_mean_interval(x, plain.mean, confidence)
    low = plain.low if minimum is None else max(plain.low, minimum)
    high = plain.high if maximum is None else min(plain.high, maximum)
    cut = (low, high) != (plain.low, plain.high)
    return Interval(plain.mean, low, high, plain.n, "t, cut at the range" if cut else "t")


def _lognormal_mean_interval(x: np.ndarray, mean: float, confidence: float) -> Interval:
    """The modified Cox interval (Olsson 2005, J. Stat. Educ. 13(1)) for E[X], X log-normal."""
    from scipy import stats

    y = np.log(x)
    n, s2 = len(y), float(y.var(ddof=1))
    if s2 == 0:  # every seed the same value: the interval is that value (exp(log x) may be 1 ulp off)
        return Interval(mean, mean, mean, n, "log-normal")
    centre = float(y.mean()) + s2 / 2
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * math.sqrt(s2 / n + s2**2 / (2 * (n - 1)))
    return Interval(mean, math.exp(centre - half), math.exp(centre + half), n, "log-normal")


def column_interval(values, column: Column) -> Interval:
    """The interval of a column's shown values (stored value x ``scale``), inside its range."""
    return bounded_interval(values, *column.shown_range)


def fid_interval(values) -> Interval:
    return bounded_interval(values, minimum=0.0)


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test; NaN when it cannot be computed (< 2 seeds, no variance)."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.pvalue)


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows a summary is made of: completed trials at the final evaluation point."""
    if frame.empty:
        return frame
    return frame[(frame["eval_point"] == "final") & (frame["status"] == "completed")]


def variants(frame: pd.DataFrame) -> list[str]:
    """Variant names in the order they first appear."""
    return list(dict.fromkeys(str(v) for v in frame["variant"])) if not frame.empty else []


def summarize(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """One row per variant x summary column of the table: n, mean, 95% CI low/high (NaN where
    unavailable), in the column's shown unit (stored value x ``scale``)."""
    final = final_rows(frame)
    out = []
    for variant in variants(frame):
        rows = final[final["variant"] == variant]
        family = next((str(f) for f in frame.loc[frame["variant"] == variant, "family"]
                       if isinstance(f, str)), "")
        for column in columns:
            if not column.summary:
                continue
            values = finite(rows[column.key]) * column.scale if column.key in rows.columns else []
            interval = column_interval(values, column)
            out.append({
                "variant": variant, "family": family, "metric": column.short, "label": column.title,
                "column": column.key, "seeds": len(rows), "n": interval.n, "mean": interval.mean,
                "ci95_low": interval.low, "ci95_high": interval.high,
            })
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


@dataclasses.dataclass
class Rank:
    variant: str
    family: str
    fid: Interval
    next_variant: str | None = None
    lead: float = math.nan  # next variant's mean FID minus this one's
    p_value: float = math.nan  # Welch's t-test against the next variant

    @property
    def significant(self) -> bool | None:
        """Whether the lead over the next variant is significant at 95%; None: cannot tell."""
        if self.next_variant is None or not math.isfinite(self.p_value):
            return None
        return self.p_value < 1 - CONFIDENCE


def rank_by_fid(frame: pd.DataFrame) -> list[Rank]:
    """Variants with an FID, best (lowest mean) first, each tested against the next."""
    final = final_rows(frame)
    if final.empty or "fid" not in final.columns:  # a run whose metrics include no FID
        return []
    ranks, values = [], {}
    for variant in variants(final):
        rows = final[final["variant"] == variant]
        interval = fid_interval(rows["fid"])
        if interval.n == 0:
            continue
        values[variant] = finite(rows["fid"])
        family = next((str(f) for f in rows["family"] if isinstance(f, str)), "")
        ranks.append(Rank(variant, family, interval))
    ranks.sort(key=lambda r: r.fid.mean)
    for rank, following in zip(ranks, ranks[1:], strict=False):
        rank.next_variant = following.variant
        rank.lead = following.fid.mean - rank.fid.mean
        rank.p_value = welch_p(values[rank.variant], values[following.variant])
    return ranks


@dataclasses.dataclass
class Agreement:
    """How another column's ranking of the variants compares with FID's (``rank_agreement``)."""

    column: Column
    means: dict[str, float]  # variant -> mean of the column over its final rows
    order: list[str]  # best first, by the column's own direction
    fid_order: list[str]  # the same variants, best FID first
    tau: float  # Kendall's tau-b of the two rankings (1: the same order, -1: reversed)
    p: float  # its two-sided p-value

    @property
    def same_order(self) -> bool:
        return self.order == self.fid_order


def rank_agreement(frame: pd.DataFrame, column: Column) -> Agreement | None:
    """``column``'s ranking of the variants (mean over final rows, its better direction) against
    FID's, over the variants with both; None with fewer than two such variants."""
    final = final_rows(frame)
    if final.empty or "fid" not in final.columns or column.key not in final.columns or not column.better:
        return None
    fid, other = {}, {}
    for variant in variants(final):
        rows = final[final["variant"] == variant]
        a, b = finite(rows["fid"]), finite(rows[column.key])
        if len(a) and len(b):
            fid[variant], other[variant] = float(a.mean()), float(b.mean())
    if len(fid) < 2:
        return None
    sign = 1.0 if column.better == "lower" else -1.0
    names = list(fid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: tau is NaN, said as such
        from scipy import stats

        tau, p = stats.kendalltau([fid[v] for v in names], [sign * other[v] for v in names])
    return Agreement(column, other, sorted(names, key=lambda v: sign * other[v]), sorted(names, key=fid.get),
                     float(tau), float(p))
