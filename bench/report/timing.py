"""A run's wall time as its manifest records it: the estimate ``bench run`` made before training
(``plan.estimated_seconds``), when the run started, when its last trial ended (``finished``)
and when it was resumed (``resumed``), told in one sentence for the report's setup section.

Manifests older than these keys give no sentence; a run without ``finished`` (still running,
or stopped before its last trial ended) is said to be so.
"""

from __future__ import annotations

import datetime
import math

from bench.report.format import dig


def parse_time(value) -> datetime.datetime | None:
    """An ISO 8601 time (``2026-11-25T19:40:00Z``) as an aware UTC datetime; None if unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # written by bench in UTC; a naive time is taken as UTC
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def show_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def _estimate(manifest: dict) -> float | None:
    """The estimated seconds; None when there is no plan, NaN when the plan could not tell."""
    plan = manifest.get("plan")
    if not isinstance(plan, dict):
        return None
    try:
        seconds = float(dig(plan, "estimated_seconds"))
    except (TypeError, ValueError):
        return math.nan
    return seconds if math.isfinite(seconds) and seconds > 0 else math.nan


def timing_text(manifest: dict) -> str | None:
    """``Estimated before the run: 12.0 min; took 14.3 min (2026-11-25 19:40 UTC to 19:54 UTC):
    1.19x the estimate.``, or what of it the manifest allows; None for a manifest that records
    neither an estimate nor a start (runs written before bench recorded them)."""
    estimate = _estimate(manifest)
    started, finished = parse_time(manifest.get("started")), parse_time(manifest.get("finished"))
    resumed_at = manifest.get("resumed")
    resumed = [t for t in map(parse_time, resumed_at) if t] if isinstance(resumed_at, list) else []
    if estimate is None and started is None:
        return None
    if estimate is None:
        parts = ["No estimate was recorded before the run"]
    elif math.isnan(estimate):
        parts = ["Estimated before the run: unknown (the plan could not tell)"]
    else:
        parts = [f"Estimated before the run: {minutes(estimate)}"]
    if started is None:
        return "; ".join(parts + ["the manifest records no start time."])
    if resumed and finished is not None and finished < max(resumed):
        finished = None  # the end of an earlier part: the resumed part has not finished
    if finished is None:
        since = f"resumed {show_time(max(resumed))}" if resumed else f"started {show_time(started)}"
        parts.append(f"{since} and not finished (still running, or stopped before its last trial "
                     "ended): no total time to compare")
        return "; ".join(parts) + "."
    took = (finished - started).total_seconds()
    if took < 0:
        return "; ".join(parts + [f"started {show_time(started)}, finished {show_time(finished)}: the "
                                  "finish is before the start, so the time taken is unknown."])
    same_day = finished.date() == started.date()
    end = finished.strftime("%H:%M UTC") if same_day else show_time(finished)
    parts.append(f"took {minutes(took)} ({show_time(started)} to {end})")
    text = "; ".join(parts)
    if estimate is not None and not math.isnan(estimate):
        text += f": {took / estimate:.2f}x the estimate"
    text += "."
    if resumed:
        text += (f" The run was resumed {len(resumed)} time{'s' * (len(resumed) > 1)}: the time taken "
                 "includes any pause before a resume.")
    return text
