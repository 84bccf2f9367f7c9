"""The first screen of a sweep's report: which variant is best, at equal search budget and at
equal compute, and whether its lead is significant.

One row per variant, best first by the final phase's mean FID (its best setting over S fresh
seeds): FID with its interval, the expected best FID after all K search samples (Dodge et al.
2019), the expected best at the largest search compute every variant reached (a wgan-gp step
costs several times a gan step: Lucic et al. 2018 compare at equal cost too), the reconstruction
MSE of the encoder variants and the training compute each variant received.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from bench.report.format import fmt, fmt_fid, fmt_p
from bench.report.stats import bounded_interval, fid_interval, welch_p
from bench.sweep.expected_best import bootstrap_band, expected_best_curve

SIGNIFICANT_BELOW = 0.05


@dataclasses.dataclass
class Curve:
    """A variant's expected best FID after k = 1..K search samples, with its bootstrap band, and
    what one search sample cost on average (training seconds, FLOPs)."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seconds_per_sample: float
    flops_per_sample: float

    def at_compute(self, seconds: float) -> tuple[int, float]:
        """(k, expected best) for the most samples that fit in ``seconds``; (0, nan) if none does."""
        if not (math.isfinite(seconds) and self.seconds_per_sample > 0):
            return 0, math.nan
        k = min(int(seconds / self.seconds_per_sample + 1e-9), len(self.mean))
        return k, float(self.mean[k - 1]) if k >= 1 else math.nan


def _mean_cost(values) -> float:
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def expected_best_curves(search: pd.DataFrame, models: list[str], penalty: float) -> dict[str, Curve]:
    """Each variant's curve; failed and diverged samples count as ``penalty`` (the worst FID)."""
    curves = {}
    for model in models:
        mine = search[search["model"] == model].sort_values("index")
        values = mine["fid"].to_numpy(float)
        if not len(values) or not math.isfinite(penalty):
            continue
        low, high = bootstrap_band(values, len(values), failed=penalty, n_boot=500)
        curves[model] = Curve(expected_best_curve(values, len(values), failed=penalty), low, high,
                              _mean_cost(mine["train_seconds"]), _mean_cost(mine["train_flops"]))
    return curves


def equal_compute(curves: dict[str, Curve]) -> float:
    """The largest search compute (training seconds) every variant reached: the least total."""
    totals = [c.seconds_per_sample * len(c.mean) for c in curves.values()]
    totals = [t for t in totals if math.isfinite(t) and t > 0]
    return min(totals) if totals else math.nan


def answer_table(final: pd.DataFrame, frame: pd.DataFrame, curves: dict[str, Curve], models: list[str],
                 families: dict[str, str]) -> tuple[list[str], list[list], list[str]]:
    """(header, rows, variants best first) of the answer table."""
    budget = equal_compute(curves)
    fids = {m: fid_interval(final[final["model"] == m]["fid"]) for m in models}
    order = sorted(models, key=lambda m: (fids[m].n == 0, fids[m].mean if fids[m].n else 0.0))
    encoders = [m for m in models
                if np.isfinite(final[final["model"] == m]["recon_mse"].to_numpy(float)).any()]
    header = ["variant", "family", "final FID mean [95% CI] (n seeds)", "E[best FID] after K",
              f"E[best FID] at equal compute ({fmt(budget)} s of search)"]
    header += ["recon MSE mean [95% CI]"] * bool(encoders)
    header += ["training seconds", "training FLOPs"]
    rows = []
    for model in order:
        interval, curve = fids[model], curves.get(model)
        k, at_budget = curve.at_compute(budget) if curve else (0, math.nan)
        row = [model, families.get(model, ""), interval_text(interval),
               fmt_fid(curve.mean[-1]) if curve else "-",
               f"{fmt_fid(at_budget)} (k={k})" if k else "- (one sample costs more)"]
        if encoders:
            mse = bounded_interval(final[final["model"] == model]["recon_mse"], minimum=0.0)
            row.append(interval_text(mse, digits=".4f") if model in encoders else "-")
        mine = frame[frame["model"] == model]
        row += [fmt(np.nansum(mine["train_seconds"].to_numpy(float))),
                f"{np.nansum(mine['train_flops'].to_numpy(float)):.3g}"]
        rows.append(row)
    return header, rows, order


def interval_text(interval, digits: str = ".1f") -> str:
    if interval.n == 0:
        return "-"
    if not interval.available:
        return f"{interval.mean:{digits}} (n={interval.n})"
    return f"{interval.mean:{digits}} [{interval.low:{digits}}, {interval.high:{digits}}] (n={interval.n})"


def lead_sentence(final: pd.DataFrame, order: list[str]) -> str:
    """Whether the best variant's lead over the runner-up is significant (Welch, final seeds)."""
    ranked = [m for m in order if np.isfinite(final[final["model"] == m]["fid"].to_numpy(float)).any()]
    if len(ranked) < 2:
        return "Fewer than two variants have a final FID: there is no ranking to test."
    best, runner = ranked[:2]
    a, b = (final[final["model"] == m]["fid"].to_numpy(float) for m in (best, runner))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    lead = f"{best} has the lowest mean final FID ({a.mean():.1f}), {b.mean() - a.mean():.1f} below {runner}"
    p = welch_p(a, b)
    if not math.isfinite(p):
        return (f"{lead}; whether the lead is real cannot be tested (Welch's t-test needs 2+ final seeds of "
                f"each; these have {len(a)} and {len(b)}: run the sweep with --final-seeds 3 or more).")
    if p < SIGNIFICANT_BELOW:
        return (f"{lead}; the lead is significant (Welch's t-test, {fmt_p(p, 'p')}, {len(a)} and {len(b)} "
                "seeds).")
    return (f"{lead}; the lead is not significant (Welch's t-test, {fmt_p(p, 'p')}, {len(a)} and {len(b)} "
            f"seeds): this sweep does not separate {best} from {runner}.")


def compute_sentence(curves: dict[str, Curve]) -> str:
    """The ranking at the largest search compute every variant reached."""
    budget = equal_compute(curves)
    if not math.isfinite(budget) or len(curves) < 2:
        return ""
    at = {m: c.at_compute(budget) for m, c in curves.items()}
    reached = sorted((m for m in at if at[m][0] >= 1), key=lambda m: at[m][1])
    left = [m for m in at if at[m][0] < 1]
    text = (f"At equal search compute ({fmt(budget)} training seconds per variant, the most every variant "
            f"reached) the expected best FID ranks: "
            + ", ".join(f"{m} {fmt_fid(at[m][1])} (k={at[m][0]})" for m in reached) + ".")
    if left:
        text += f" {', '.join(left)}: one search sample costs more than that."
    return text + " Expected values over the samples drawn, without a test of significance."
