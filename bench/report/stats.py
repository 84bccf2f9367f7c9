"""Summaries across training seeds: t-intervals, and Welch's t-test for the FID ranking.

Seeds are the unit of replication: every interval is across training seeds of one
variant (each seed contributes one value), never across images.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
CI_METHOD = (
    "95% confidence intervals are two-sided Student t-intervals across training seeds: "
    "mean ± t(0.975, n − 1) · s / √n, with s the sample standard deviation (ddof = 1) and n the "
    "number of seeds that have the value. With one seed no interval can be given: it is shown as "
    "unavailable (n/a), not as zero width."
)
TEST_METHOD = (
    "The lead of each variant over the next one by mean FID is tested with Welch's unequal-variance "
    "t-test across seeds (two-sided, significant when p < 0.05); it needs at least 2 seeds of each."
)


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str  # the summary's name for it
    label: str
    columns: tuple[str, ...]  # the first of these present in the rows is used
    better: str | None = None  # "lower" | "higher" | None
    scale: float = 1.0  # shown value = column value * scale


# The summary's metrics, in order. Columns that no run has produced yet show as n/a.
METRICS = [
    Metric("fid", "FID", ("fid",), "lower"),
    Metric("fid_infinity", "FID-infinity", ("fid_infinity",), "lower"),
    Metric("kid", "KID", ("kid_mean",), "lower"),
    Metric("precision", "precision", ("precision",), "higher"),
    Metric("recall", "recall", ("recall",), "higher"),
    Metric("recon_mse", "reconstruction MSE (pixels in [0, 1])", ("recon_mse",), "lower"),
    Metric("recon_psnr", "reconstruction PSNR (dB)", ("recon_psnr",), "higher"),
    Metric("recon_fid", "reconstruction FID", ("recon_fid",), "lower"),
    Metric("train_images_per_s", "training images/s", ("train_images_per_s",), "higher"),
    Metric("sample_images_per_s", "sampling images/s", ("sample_images_per_s",), "higher"),
    Metric("mfu", "MFU (% of the measured matrix-product peak)", ("mfu",), "higher", scale=100.0),
    Metric("params", "parameters (millions)", ("params_total", "params", "num_params"), scale=1e-6),
    Metric("peak_memory", "peak memory (MiB)",
           ("peak_memory_bytes", "peak_memory", "peak_mem_bytes"), "lower", scale=1 / 2**20),
    Metric("budget_used", "budget used (%)", ("budget_used",), scale=100.0),
]


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

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
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test; NaN when it cannot be computed (< 2 seeds, no variance)."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.pvalue)


def metric_column(frame: pd.DataFrame, metric: Metric) -> str | None:
    """The column holding ``metric``, if any row has it."""
    for column in metric.columns:
        if column in frame.columns and len(finite(frame[column])):
            return column
    return None


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows a summary is made of: completed trials at the final evaluation point."""
    if frame.empty:
        return frame
    return frame[(frame["eval_point"] == "final") & (frame["status"] == "completed")]


def variants(frame: pd.DataFrame) -> list[str]:
    """Variant names in the order they first appear."""
    return list(dict.fromkeys(str(v) for v in frame["variant"])) if not frame.empty else []


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per variant x metric: n, mean, 95% CI low/high (NaN where unavailable)."""
    final = final_rows(frame)
    out = []
    for variant in variants(frame):
        rows = final[final["variant"] == variant]
        family = next((str(f) for f in frame.loc[frame["variant"] == variant, "family"]
                       if isinstance(f, str)), "")
        for metric in METRICS:
            column = metric_column(final, metric)
            values = finite(rows[column]) * metric.scale if column else []
            interval = t_interval(values)
            out.append({
                "variant": variant, "family": family, "metric": metric.key, "label": metric.label,
                "column": column, "seeds": len(rows), "n": interval.n, "mean": interval.mean,
                "ci95_low": interval.low, "ci95_high": interval.high,
            })
    return pd.DataFrame(out, columns=["variant", "family", "metric", "label", "column", "seeds", "n",
                                      "mean", "ci95_low", "ci95_high"])


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
    if final.empty:
        return []
    ranks, values = [], {}
    for variant in variants(final):
        rows = final[final["variant"] == variant]
        interval = t_interval(rows["fid"])
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
