"""Which runs may be compared: the policy that groups run folders into comparisons.

Runs are merged into one comparison only when their evaluation protocol is identical
(``PROTOCOL_FIELDS``); the others are kept apart, with the fields that differ as the reason,
never averaged together. Within a comparison each variant x seed x evaluation point counts
once (``dedup``), and settings that merged runs do not share are named (``differences``).
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from bench.report.best import with_best_columns
from bench.report.format import dig, first, is_nan, seed_text, show
from bench.report.load import RunFolder, column_table, normalize, run_frame
from bench.store.columns import Column

# (column in the frame, what the report calls it). Runs merge only when all of these agree.
PROTOCOL_FIELDS = [
    ("dataset", "dataset"),
    ("dataset_hash", "dataset content hash"),
    ("budget_key", "budget"),
    ("eval_ref", "reference split"),
    ("eval_samples", "N (generated images)"),
    ("ref_samples", "reference images"),
    ("time_device", "device (a wall-clock budget depends on it)"),
]
# Settings that do not block a merge but are named in the report when runs differ in them.
NOTED_CONFIG = ["batch_size", "amp", "compile", "flip", "resolution", "subset"]
NOTED_VERSIONS = ["torch", "torch_fidelity", "bench"]


@dataclasses.dataclass
class Group:
    """Runs with one evaluation protocol: one comparison."""

    number: int
    protocol: dict  # report name -> value, for display
    key: tuple
    runs: list[RunFolder]
    frame: pd.DataFrame  # this group's rows, duplicates removed
    columns: list[Column] = dataclasses.field(default_factory=list)  # the column table of its runs
    reason: str | None = None  # why it is not merged with group 1
    notes: list[str] = dataclasses.field(default_factory=list)


def protocol_of(run: RunFolder, frame: pd.DataFrame) -> dict:
    """The values that decide whether two runs are comparable (frame column -> value)."""
    m = run.manifest
    config = dig(m, "config", default={}) or {}
    final = frame[frame["eval_point"] == "final"] if len(frame) else frame
    evaluated = final[final["eval_samples"].notna()] if len(final) else final

    def pick(column, fallback=None):
        for source in (evaluated, final, frame):
            if len(source) and (value := first(source[column])) is not None:
                return value
        return fallback

    kind, amount = dig(m, "budget", "kind"), dig(m, "budget", "amount")
    if kind is not None and amount is not None:
        budget_key = f"{dig(m, 'budget', 'text')} ({float(amount):g} {kind})"
    else:
        budget_key = str(pick("budget"))
    samples = pick("eval_samples", config.get("eval_samples"))
    samples = None if samples is None else int(samples)
    ref_samples = pick("ref_samples", config.get("ref_samples"))
    ref_samples = None if ref_samples is None else int(ref_samples)
    return {
        "dataset": pick("dataset", dig(m, "dataset", "name")),
        "dataset_hash": dig(m, "dataset", "content_hash"),
        "budget_key": budget_key,
        "eval_ref": pick("eval_ref", config.get("eval_ref")) if samples else None,
        "eval_samples": samples,
        "ref_samples": ref_samples if samples else None,
        "time_device": (dig(m, "device", "name") or pick("device")) if kind == "seconds" else None,
    }


def group_runs(runs: list[RunFolder], columns: list[Column]) -> tuple[list[Group], pd.DataFrame]:
    """Runs grouped by evaluation protocol (the first run given leads group 1), and all rows.

    ``columns`` is the table of all runs: every frame gets all of its columns, as numbers."""
    frames, protocols = [], []
    for order, run in enumerate(runs):
        frame = normalize(run_frame(run, order), columns)
        frames.append(frame)
        protocols.append(protocol_of(run, frame))
    groups: list[Group] = []
    for run, frame, protocol in zip(runs, frames, protocols, strict=True):
        key = tuple(protocol[column] for column, _ in PROTOCOL_FIELDS)
        group = next((g for g in groups if g.key == key), None)
        if group is None:
            display = {name: show(protocol[column]) for column, name in PROTOCOL_FIELDS
                       if not (column == "time_device" and protocol[column] is None)}
            group = Group(len(groups) + 1, display, key, [], pd.DataFrame())
            groups.append(group)
        group.runs.append(run)
        frame = frame.assign(comparison=group.number)
        group.frame = frame if group.frame.empty else pd.concat([group.frame, frame], ignore_index=True)
    first_group = groups[0]
    for group in groups:
        if group is not first_group:
            differing = [
                f"{name}: {show(b)} here, {show(a)} in comparison 1"
                for (column, name), a, b in zip(PROTOCOL_FIELDS, first_group.key, group.key, strict=True)
                if a != b
            ]
            group.reason = "; ".join(differing)
        group.columns = column_table(group.runs)
        group.frame = dedup(group)
        group.frame, group.columns = with_best_columns(group.frame, group.columns, group.notes)
        group.notes.extend(differences(group))
    everything = pd.concat([g.frame for g in groups], ignore_index=True)
    return groups, everything


def dedup(group: Group) -> pd.DataFrame:
    """One row per variant x seed x evaluation point.

    Within a run the last row wins (a trial re-run after a resume); across runs the first
    run given wins, so that a seed trained twice is never counted as two seeds.
    """
    frame = group.frame
    if frame.empty:
        return frame
    # interval evaluations of one trial differ by step; the other points are one per trial
    frame = frame.assign(point_key=[
        p if p == "final" or s is None or is_nan(s) else f"{p}@{int(s)}"
        for p, s in zip(frame["eval_point"], frame["step"], strict=True)
    ])
    keys = ["variant", "seed", "point_key"]
    within = frame.duplicated(["run_order", *keys], keep="last")
    for _, row in frame[within].iterrows():
        group.notes.append(
            f"{row['run_id']}: {row['variant']} seed {seed_text(row['seed'])} ({row['point_key']}) has more "
            "than one row; the last one is used"
        )
    frame = frame[~within]
    across = frame.duplicated(keys, keep="first")
    for _, row in frame[across].iterrows():
        kept = frame[(frame["variant"] == row["variant"]) & (frame["seed"] == row["seed"])
                     & (frame["point_key"] == row["point_key"])].iloc[0]
        group.notes.append(
            f"{row['variant']} seed {seed_text(row['seed'])} ({row['point_key']}) is in runs "
            f"{kept['run_id']} and {row['run_id']}: counted once, from {kept['run_id']} "
            "(the same seed trained twice is not an independent seed)"
        )
    return frame[~across].drop(columns="point_key").reset_index(drop=True)


def differences(group: Group) -> list[str]:
    """Settings that merged runs do not share (they merge, but a reader should know)."""
    if len(group.runs) < 2:
        return []
    notes = []
    for field in NOTED_CONFIG:
        values = {json.dumps(dig(r.manifest, "config", field), default=str) for r in group.runs}
        if len(values) > 1:
            notes.append(f"merged runs differ in {field}: {', '.join(sorted(values))}")
    for name in NOTED_VERSIONS:
        values = {str(dig(r.manifest, "versions", name)) for r in group.runs}
        if len(values) > 1:
            notes.append(f"merged runs differ in {name} version: {', '.join(sorted(values))}")
    devices = {str(dig(r.manifest, "device", "name")) for r in group.runs}
    if len(devices) > 1:
        notes.append(f"merged runs ran on different devices ({', '.join(sorted(devices))}): "
                     "throughput is not comparable across them")
    return notes
