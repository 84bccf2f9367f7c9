"""Best-so-far: each trial's lowest FID over its evaluations during (``--eval-every``) and at the
end of training, and how much of its budget it had used there.

GAN FIDs often reach a minimum and then get worse with more training; the final FID alone
hides that. ``trial_bests`` gives one line per trial (variant x seed); ``with_best_columns``
puts the best FID and its budget fraction onto each trial's final row as two report-derived
columns (``BEST_FID``, ``BEST_FID_AT``), so that the summary, ``summary.csv``, ``results.csv``
and the metrics plot carry them like any declared column. Both are only added when some
trial has more than one evaluated point: with the final evaluation alone, best is final.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.store.columns import Column

# Derived by the report from a trial's interval and final rows; set on the trial's final row.
BEST_FID = Column("best_fid", "best FID so far (interval and final evaluations)", "lower",
                  minimum=0.0)
BEST_FID_AT = Column("best_fid_at", "budget used at the best FID", None, "%", scale=100.0)
EVALUATED_POINTS = ("interval", "final")  # the untrained point is never a trial's best
BEST_COLUMNS = ["variant", "family", "seed", "run_id", "status", "points", "final_fid", "best_fid",
                "best_at", "best_point", "best_step", "best_seconds"]


def _float(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _budget_fraction(row: pd.Series, final: pd.Series | None) -> float:
    """The row's ``budget_used``; where the row does not say (a FLOP budget's interval rows
    carry no FLOP count) the final row's, scaled by the ratio of their steps (FLOPs per step
    are constant within a trial)."""
    used = _float(row.get("budget_used"))
    if math.isfinite(used) or final is None:
        return used
    final_step = _float(final.get("step"))
    if not final_step > 0:
        return math.nan
    return _float(row.get("step")) / final_step * _float(final.get("budget_used"))


def trial_bests(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per trial with an FID at an interval or final point: its best (lowest) FID,
    where it occurred (budget fraction, point, step, training seconds) and its final FID (NaN
    when the trial did not complete or has no final row yet)."""
    if frame.empty or "fid" not in frame.columns:
        return pd.DataFrame(columns=BEST_COLUMNS)
    points = frame[frame["eval_point"].isin(EVALUATED_POINTS)]
    points = points[pd.to_numeric(points["fid"], errors="coerce").notna()]
    out = []
    for (variant, seed), rows in points.groupby(["variant", "seed"], sort=False):
        trial = frame[(frame["variant"] == variant) & (frame["seed"] == seed)
                      & (frame["eval_point"] == "final")]
        final = trial.iloc[-1] if len(trial) else None
        best = rows.iloc[int(np.argmin(pd.to_numeric(rows["fid"]).to_numpy(float)))]
        completed = final is not None and final.get("status") == "completed"
        out.append({
            "variant": variant, "family": best.get("family"), "seed": seed, "run_id": best.get("run_id"),
            "status": final.get("status") if final is not None else "running",
            "points": len(rows),
            "final_fid": _float(final.get("fid")) if completed else math.nan,
            "best_fid": float(best["fid"]), "best_at": _budget_fraction(best, final),
            "best_point": best["eval_point"], "best_step": _float(best.get("step")),
            "best_seconds": _float(best.get("train_seconds")),
        })
    return pd.DataFrame(out, columns=BEST_COLUMNS)


def has_progress(bests: pd.DataFrame) -> bool:
    """Whether some trial was evaluated more than once (else there is no best-so-far to tell)."""
    return bool(len(bests)) and int(bests["points"].max()) > 1


def with_best_columns(frame: pd.DataFrame, columns: list[Column],
                      notes: list[str] | None = None) -> tuple[pd.DataFrame, list[Column]]:
    """``frame`` with ``best_fid`` / ``best_fid_at`` on each trial's final row and ``columns``
    with both declared right after ``fid``; both unchanged when no trial has more than one
    evaluated point, or when the runs declare a column of either name themselves (noted)."""
    keys = [c.key for c in columns]
    if "fid" not in keys:
        return frame, columns
    bests = trial_bests(frame)
    if not has_progress(bests):
        return frame, columns
    taken = [c.key for c in (BEST_FID, BEST_FID_AT) if c.key in keys]
    if taken:
        if notes is not None:
            notes.append(f"the runs declare a column {', '.join(taken)} of their own: the report's best-FID "
                         "columns are left out (the best-so-far table is still given)")
        return frame, columns
    frame = frame.assign(**{BEST_FID.key: np.nan, BEST_FID_AT.key: np.nan})
    for _, best in bests.iterrows():
        final = ((frame["variant"] == best["variant"]) & (frame["seed"] == best["seed"])
                 & (frame["eval_point"] == "final"))
        frame.loc[final, BEST_FID.key] = best["best_fid"]
        frame.loc[final, BEST_FID_AT.key] = best["best_at"]
    at = keys.index("fid") + 1
    return frame, [*columns[:at], BEST_FID, BEST_FID_AT, *columns[at:]]
