"""Run folders -> one long-form DataFrame, and the rules for which runs may be compared.

Every ``metrics.jsonl`` row becomes one DataFrame row (variant x seed x evaluation
point), with the run's budget, dataset, device and versions from ``manifest.json``
as columns. Runs are merged into one comparison only when their evaluation
protocol is identical (``PROTOCOL_FIELDS``); the others are kept apart with the
fields that differ as the reason, never averaged together.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import pandas as pd

METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "manifest.json"

# Columns every frame has, so that later code never meets a missing one (missing = NaN / None).
BASE_COLUMNS = [
    "run_id", "model", "family", "seed", "eval_point", "dataset", "dataset_source", "budget",
    "device", "batch_size", "status", "message", "step", "images_seen", "train_seconds",
    "train_flops", "flops_per_image", "train_images_per_s", "eval_samples", "eval_ref",
    "ref_samples", "small_n", "fid", "fid_infinity", "kid_mean", "kid_std", "precision", "recall",
    "sample_images_per_s", "recon_mse", "recon_psnr", "eval_seconds",
]
NUMERIC_COLUMNS = [
    "seed", "batch_size", "step", "images_seen", "train_seconds", "train_flops", "flops_per_image",
    "train_images_per_s", "eval_samples", "ref_samples", "fid", "fid_infinity", "kid_mean", "kid_std",
    "precision", "recall", "sample_images_per_s", "recon_mse", "recon_psnr", "eval_seconds",
]
# Evaluation points: before training, during it (``--eval-every``: one per interval), at the end.
POINT_ORDER = {"untrained": 0, "interval": 1, "final": 2}

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


class ReportError(Exception):
    """A report cannot be built; the message says what to give instead."""


@dataclasses.dataclass
class RunFolder:
    path: Path
    manifest: dict
    rows: list[dict]

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)


@dataclasses.dataclass
class Group:
    """Runs with one evaluation protocol: one comparison."""

    number: int
    protocol: dict  # report name -> value, for display
    key: tuple
    runs: list[RunFolder]
    frame: pd.DataFrame  # this group's rows, duplicates removed
    reason: str | None = None  # why it is not merged with group 1
    notes: list[str] = dataclasses.field(default_factory=list)


def read_rows(path: Path, notes: list[str] | None = None) -> list[dict]:
    """All complete JSON-object rows of a JSON-lines file.

    A half-written line (a run killed mid-append) is skipped with a warning naming the
    file and line, and the same text is added to ``notes``.
    """
    path = Path(path)
    rows = []
    if not path.exists():
        return rows
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                message = f"{path}:{number}: skipping a half-written row"
                warnings.warn(message, stacklevel=2)
                if notes is not None:
                    notes.append(message)
                continue
            rows.append(row)
    return rows


def load_run(path: Path, notes: list[str]) -> RunFolder:
    path = Path(path)
    if not (path / METRICS_FILE).is_file():
        raise ReportError(f"{path} is not a run folder (no {METRICS_FILE}); give a folder under results/")
    manifest: dict = {}
    if (path / MANIFEST_FILE).is_file():
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            notes.append(f"{path / MANIFEST_FILE}: unreadable ({exc}); run settings taken from the rows")
        if not isinstance(manifest, dict):
            manifest = {}
    else:
        notes.append(f"{path}: no {MANIFEST_FILE}; run settings taken from the rows")
    return RunFolder(path, manifest, read_rows(path / METRICS_FILE, notes))


def load_runs(run_dirs) -> tuple[list[RunFolder], list[str]]:
    """Every run folder given (each once), and notes about what was skipped."""
    if not run_dirs:
        raise ReportError("give at least one run folder (a folder under results/)")
    notes: list[str] = []
    runs, seen = [], set()
    for directory in run_dirs:
        resolved = Path(directory).resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        runs.append(load_run(Path(directory), notes))
    return runs, notes


def _get(d, *keys, default=None):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _cell(value):
    """A value pandas and parquet can hold in a plain column."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return value


def variant_label(model: str, options: dict | None) -> str:
    """The model name, plus its ``--set`` overrides: differently configured variants never merge."""
    if not options:
        return str(model)
    return f"{model} ({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})"


def _budget_used(row: pd.Series) -> float:
    kind, amount = row.get("budget_kind"), row.get("budget_amount")
    column = {"seconds": "train_seconds", "steps": "step", "images": "images_seen",
              "flops": "train_flops"}.get(kind)
    try:
        used = float(row.get(column)) if column else math.nan
        return used / float(amount)
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan


def run_frame(run: RunFolder, order: int) -> pd.DataFrame:
    """One run's rows with the run's settings from its manifest as columns."""
    m = run.manifest
    config = _get(m, "config", default={}) or {}
    options = config.get("options") or {}
    extra = {
        "run_dir": str(run.path),
        "run_order": order,
        "budget_text": _get(m, "budget", "text"),
        "budget_kind": _get(m, "budget", "kind"),
        "budget_amount": _get(m, "budget", "amount"),
        "dataset_hash": _get(m, "dataset", "content_hash"),
        "dataset_num_images": _get(m, "dataset", "num_images"),
        "image_shape": "x".join(str(s) for s in _get(m, "dataset", "image_shape", default=[]) or []) or None,
        "device_type": _get(m, "device", "type"),
        "git_commit": m.get("git_commit"),
        "command_line": m.get("command_line"),
    }
    for name, version in (_get(m, "versions", default={}) or {}).items():
        extra[f"version_{name}"] = version
    records = []
    for row in run.rows:
        record = {k: _cell(v) for k, v in row.items()}
        record.setdefault("run_id", run.run_id)
        record.setdefault("dataset", _get(m, "dataset", "name"))
        record.setdefault("dataset_source", _get(m, "dataset", "source"))
        record.setdefault("budget", _get(m, "budget", "text"))
        record.setdefault("device", _get(m, "device", "name"))
        record.setdefault("eval_point", "final")
        for key, value in extra.items():
            record.setdefault(key, value)
        if record.get("budget_text") is None:
            record["budget_text"] = record.get("budget")
        record["variant"] = variant_label(record.get("model"), options.get(record.get("model")))
        # rows written before the evaluation existed fall back on the manifest's settings
        for key in ("eval_samples", "eval_ref"):
            if record.get(key) is None and key in config:
                record[key] = config[key]
        records.append(record)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=BASE_COLUMNS)
    for column in BASE_COLUMNS + list(extra) + ["variant"]:
        if column not in frame.columns:
            frame[column] = None
    return frame


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as floats (None -> NaN), mixed-type columns as text, derived columns added."""
    frame = frame.copy()
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["budget_amount"] = pd.to_numeric(frame["budget_amount"], errors="coerce")
    frame["budget_used"] = frame.apply(_budget_used, axis=1) if len(frame) else pd.Series(dtype=float)
    # the wall-clock time of an evaluation point: the untrained point is at 0 s
    untrained = frame["eval_point"] == "untrained"
    frame.loc[untrained & frame["train_seconds"].isna(), "train_seconds"] = 0.0
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and not _isnan(v)}
            if len(kinds) > 1 and not kinds <= {int, float, bool}:
                frame[column] = [None if v is None or _isnan(v) else str(v) for v in frame[column]]
    return frame


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _first(series: pd.Series):
    values = [v for v in series if v is not None and not _isnan(v)]
    return values[0] if values else None


def protocol_of(run: RunFolder, frame: pd.DataFrame) -> dict:
    """The values that decide whether two runs are comparable (frame column -> value)."""
    m = run.manifest
    config = _get(m, "config", default={}) or {}
    final = frame[frame["eval_point"] == "final"] if len(frame) else frame
    evaluated = final[final["eval_samples"].notna()] if len(final) else final

    def pick(column, fallback=None):
        for source in (evaluated, final, frame):
            if len(source) and (value := _first(source[column])) is not None:
                return value
        return fallback

    kind, amount = _get(m, "budget", "kind"), _get(m, "budget", "amount")
    if kind is not None and amount is not None:
        budget_key = f"{_get(m, 'budget', 'text')} ({float(amount):g} {kind})"
    else:
        budget_key = str(pick("budget"))
    samples = pick("eval_samples", config.get("eval_samples"))
    samples = None if samples is None else int(samples)
    ref_samples = pick("ref_samples", config.get("ref_samples"))
    ref_samples = None if ref_samples is None else int(ref_samples)
    return {
        "dataset": pick("dataset", _get(m, "dataset", "name")),
        "dataset_hash": _get(m, "dataset", "content_hash"),
        "budget_key": budget_key,
        "eval_ref": pick("eval_ref", config.get("eval_ref")) if samples else None,
        "eval_samples": samples,
        "ref_samples": ref_samples if samples else None,
        "time_device": (_get(m, "device", "name") or pick("device")) if kind == "seconds" else None,
    }


def _show(value) -> str:
    return "n/a" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def group_runs(runs: list[RunFolder]) -> tuple[list[Group], pd.DataFrame]:
    """Runs grouped by evaluation protocol (the first run given leads group 1), and all rows."""
    frames, protocols = [], []
    for order, run in enumerate(runs):
        frame = normalize(run_frame(run, order))
        frames.append(frame)
        protocols.append(protocol_of(run, frame))
    groups: list[Group] = []
    for run, frame, protocol in zip(runs, frames, protocols, strict=True):
        key = tuple(protocol[column] for column, _ in PROTOCOL_FIELDS)
        group = next((g for g in groups if g.key == key), None)
        if group is None:
            display = {name: _show(protocol[column]) for column, name in PROTOCOL_FIELDS
                       if not (column == "time_device" and protocol[column] is None)}
            group = Group(len(groups) + 1, display, key, [], pd.DataFrame())
            groups.append(group)
        group.runs.append(run)
        frame = frame.assign(comparison=group.number)
        group.frame = frame if group.frame.empty else pd.concat([group.frame, frame], ignore_index=True)
    first = groups[0]
    for group in groups:
        if group is not first:
            differing = [
                f"{name}: {_show(b)} here, {_show(a)} in comparison 1"
                for (column, name), a, b in zip(PROTOCOL_FIELDS, first.key, group.key, strict=True)
                if a != b
            ]
            group.reason = "; ".join(differing)
        group.frame = _deduplicate(group)
        group.notes.extend(_differences(group))
    everything = pd.concat([g.frame for g in groups], ignore_index=True)
    return groups, everything


def _deduplicate(group: Group) -> pd.DataFrame:
    """One row per variant x seed x evaluation point.

    Within a run the last row wins (a trial re-run after a resume); across runs the first
    run given wins, so that a seed trained twice is never counted as two seeds.
    """
    frame = group.frame
    if frame.empty:
        return frame
    # interval evaluations of one trial differ by step; the other points are one per trial
    frame = frame.assign(point_key=[
        p if p == "final" or s is None or _isnan(s) else f"{p}@{int(s)}"
        for p, s in zip(frame["eval_point"], frame["step"], strict=True)
    ])
    keys = ["variant", "seed", "point_key"]
    within = frame.duplicated(["run_order", *keys], keep="last")
    for _, row in frame[within].iterrows():
        group.notes.append(
            f"{row['run_id']}: {row['variant']} seed {_seed(row['seed'])} ({row['point_key']}) has more "
            "than one row; the last one is used"
        )
    frame = frame[~within]
    across = frame.duplicated(keys, keep="first")
    for _, row in frame[across].iterrows():
        kept = frame[(frame["variant"] == row["variant"]) & (frame["seed"] == row["seed"])
                     & (frame["point_key"] == row["point_key"])].iloc[0]
        group.notes.append(
            f"{row['variant']} seed {_seed(row['seed'])} ({row['point_key']}) is in runs "
            f"{kept['run_id']} and {row['run_id']}: counted once, from {kept['run_id']} "
            "(the same seed trained twice is not an independent seed)"
        )
    return frame[~across].drop(columns="point_key").reset_index(drop=True)


def _seed(value) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def _differences(group: Group) -> list[str]:
    """Settings that merged runs do not share (they merge, but a reader should know)."""
    if len(group.runs) < 2:
        return []
    notes = []
    for field in NOTED_CONFIG:
        values = {json.dumps(_get(r.manifest, "config", field), default=str) for r in group.runs}
        if len(values) > 1:
            notes.append(f"merged runs differ in {field}: {', '.join(sorted(values))}")
    for name in NOTED_VERSIONS:
        values = {str(_get(r.manifest, "versions", name)) for r in group.runs}
        if len(values) > 1:
            notes.append(f"merged runs differ in {name} version: {', '.join(sorted(values))}")
    devices = {str(_get(r.manifest, "device", "name")) for r in group.runs}
    if len(devices) > 1:
        notes.append(f"merged runs ran on different devices ({', '.join(sorted(devices))}): "
                     "throughput is not comparable across them")
    return notes
