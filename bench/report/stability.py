"""How stable each variant of a sweep is: the first of the GAN/VAE fusion line's open problems.

Per variant, from its sweep slots (``bench.report.sweep.slot_frame``): the share of search
samples that diverged, failed or collapsed; how much the setting matters (median and
interquartile range of the search FIDs); how much the seed matters at the best setting (the
final seeds' standard deviation); and, with ``--eval-every``, how far the final FID ends above
the best FID the trial reached on the way (training that gets worse before the budget ends).

Collapse is read from the metrics, not from losses: a completed trial collapsed when its
coverage (Naeem et al. 2020: the share of real images whose k-NN ball holds a sample) is below
``COLLAPSE_BELOW``, or, without coverage, its recall (Kynkäänniemi et al. 2019) is: the
samples then sit on a few modes of the data however sharp they look.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report.format import fmt_fid

COLLAPSE_BELOW = 0.05
COLLAPSE_RULE = (f"collapsed: a completed sample whose coverage (or, without coverage, recall) is below "
                 f"{COLLAPSE_BELOW}: its samples sit on a few modes of the data")
STABILITY_COLUMNS = ["variant", "samples", "diverged", "failed", "collapsed", "fid_median", "fid_iqr",
                     "seed_std_at_best", "final_minus_best_so_far"]


def is_collapsed(status: str, coverage: float, recall: float) -> bool:
    if status != "completed":
        return False
    measure = coverage if math.isfinite(coverage) else recall
    return math.isfinite(measure) and measure < COLLAPSE_BELOW


def stability_frame(slots: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per variant (``STABILITY_COLUMNS``); shares are fractions of its search samples."""
    records = []
    for model in models:
        mine = slots[slots["model"] == model]
        search = mine[mine["phase"] == "search"]
        final = mine[(mine["phase"] == "final") & ~mine["superseded"].astype(bool)]
        n = len(search)
        statuses = search["status"].tolist()
        fids = search["fid"].to_numpy(float)
        fids = fids[np.isfinite(fids)]
        seeds = final["fid"].to_numpy(float)
        seeds = seeds[np.isfinite(seeds)]
        tracked = mine[(mine["evaluations"] > 1) & np.isfinite(mine["fid"].to_numpy(float))]
        records.append({
            "variant": model, "samples": n,
            "diverged": statuses.count("diverged") / n if n else math.nan,
            "failed": sum(s not in ("completed", "diverged") for s in statuses) / n if n else math.nan,
            "collapsed": float(search["collapsed"].sum()) / n if n else math.nan,
            "fid_median": float(np.median(fids)) if len(fids) else math.nan,
            "fid_iqr": float(np.subtract(*np.percentile(fids, [75, 25]))) if len(fids) >= 2 else math.nan,
            "seed_std_at_best": float(seeds.std(ddof=1)) if len(seeds) >= 2 else math.nan,
            "final_minus_best_so_far": float((tracked["fid"] - tracked["best_fid_so_far"]).mean())
            if len(tracked) else math.nan,
        })
    return pd.DataFrame.from_records(records, columns=STABILITY_COLUMNS)


def _share(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.0f}%"


def stability_rows(table: pd.DataFrame) -> list[list[str]]:
    return [[r.variant, str(r.samples), _share(r.diverged), _share(r.failed), _share(r.collapsed),
             fmt_fid(r.fid_median), fmt_fid(r.fid_iqr), fmt_fid(r.seed_std_at_best),
             fmt_fid(r.final_minus_best_so_far)]
            for r in table.itertuples()]


STABILITY_HEADER = ["variant", "samples", "diverged", "failed", "collapsed", "median FID", "FID IQR",
                    "seed std at best", "final − best so far"]
STABILITY_NOTE = (
    "Shares are of the search samples. " + COLLAPSE_RULE + ". Median FID and its interquartile range "
    "(IQR) over the search samples: how much the setting matters. Seed std at best: standard deviation "
    "of the final seeds' FID at the chosen setting (how much the seed matters). Final − best so far: "
    "mean over the trials evaluated more than once (--eval-every) of the final FID minus the best FID "
    "that trial reached earlier; above 0, training got worse before the budget ended."
)
