"""Run folders in, one long-form DataFrame out, and the table of columns the runs declare.

Every ``metrics.jsonl`` row becomes one DataFrame row (variant x seed x evaluation point),
with the run's budget, dataset, device and versions from ``manifest.json`` as columns. Files
are read with ``bench.store``'s readers; a damaged manifest costs only the run's settings
(they are then taken from the rows), never the report.

The column table says what each metric column is (label, unit, better direction, scale): it
is the union of the runs' manifest ``columns`` (bench 0.1.0's manifests have none: they get
the built-in metrics' columns), plus the report's own ``budget_used``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd

from bench.metrics.builtin import BUILTIN_METRICS
from bench.report.format import dig, is_nan
from bench.report.settings import setting_ids
from bench.space import parse_distribution
from bench.store.columns import TRIAL_COLUMNS, Column
from bench.store.files import StoreError, read_jsonl
from bench.store.layout import MANIFEST_FILE, METRICS_FILE
from bench.store.manifest import read_manifest
from bench.store.rows import EVALUATION, IDENTITY, PROGRESS, row_trial
from bench.store.sweep import is_sweep, read_sweep

# Derived by the report from each row's budget and what the trial used.
BUDGET_USED = Column("budget_used", "budget used", None, "%", scale=100.0, minimum=0.0)
# Columns every frame has whatever the rows hold, so later code never meets a missing one.
BASE_COLUMNS = list(dict.fromkeys(IDENTITY + EVALUATION + PROGRESS))
# The non-metric numeric columns (metric columns are numeric by declaration).
NUMERIC_COLUMNS = ["seed", "batch_size", "step", "images_seen", "train_seconds", "train_flops",
                   "flops_per_image", "train_flops_per_s", "eval_samples", "ref_samples", "eval_seconds"]
# Which usage column each budget kind is measured in.
_BUDGET_USAGE = {"seconds": "train_seconds", "steps": "step", "images": "images_seen", "flops": "train_flops"}


class ReportError(Exception):
    """A report cannot be built; the message says what to give instead."""


@dataclasses.dataclass
class RunFolder:
    path: Path
    manifest: dict  # {} when there is no readable manifest
    rows: list[dict]
    columns: list[Column]  # what the run declares its metric columns to be

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)


# The metric columns bench 0.1.0 wrote, whose manifests declare none (format 1).
FORMAT_1_METRIC_COLUMNS = ("fid", "fid_infinity", "kid_mean", "kid_std", "precision", "recall",
                           "recon_mse", "recon_psnr", "recon_fid")


def builtin_columns() -> list[Column]:
    """The column table of a run that declares none (bench 0.1.0): the built-in metric columns
    that version wrote, as the built-ins declare them today, then the trial's."""
    columns = {c.key: c for metric in BUILTIN_METRICS.values() for c in metric.columns}
    return [columns[key] for key in FORMAT_1_METRIC_COLUMNS] + list(TRIAL_COLUMNS)


def _column(entry) -> Column:
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    column = Column.from_dict(entry)
    float(column.scale)  # a scale that is not a number would break every table later
    return column


def declared_columns(manifest: dict, where: Path, notes: list[str]) -> list[Column]:
    """The manifest's ``columns``; unusable entries are left out with a note."""
    declared = manifest.get("columns")
    if not isinstance(declared, list):
        return builtin_columns()
    columns = []
    for entry in declared:
        try:
            columns.append(_column(entry))
        except (TypeError, ValueError) as exc:
            notes.append(f"{where}: the column declaration {entry!r} is unusable ({exc}); left out")
    return columns


def column_table(runs: list[RunFolder], notes: list[str] | None = None) -> list[Column]:
    """Every column the runs declare, each once in order of first appearance, then ``budget_used``.

    Where two runs declare one column differently the first run given wins (noted)."""
    table: dict[str, tuple[Column, str]] = {}
    for run in runs:
        for column in run.columns:
            if column.key not in table:
                table[column.key] = (column, run.run_id)
            elif notes is not None and table[column.key][0] != column:
                notes.append(f"the column {column.key} is declared differently by {table[column.key][1]} "
                             f"and {run.run_id}; the report uses {table[column.key][1]}'s declaration")
    columns = [c for c, _ in table.values()]
    return columns if BUDGET_USED.key in table else [*columns, BUDGET_USED]


def _manifest(path: Path, notes: list[str]) -> dict:
    if not (path / MANIFEST_FILE).is_file():
        notes.append(f"{path}: no {MANIFEST_FILE}; run settings taken from the rows")
        return {}
    try:
        return read_manifest(path)  # upgraded to today's format
    except (StoreError, OSError) as exc:
        notes.append(f"{exc}; run settings taken from the rows")
        return {}


def load_run(path: Path, notes: list[str]) -> RunFolder:
    path = Path(path)
    if not (path / METRICS_FILE).is_file():
        raise ReportError(f"{path} is not a run folder (no {METRICS_FILE}); give a folder under results/")
    manifest = _manifest(path, notes)
    columns = declared_columns(manifest, path / MANIFEST_FILE, notes)
    return RunFolder(path, manifest, read_jsonl(path / METRICS_FILE, notes), columns)


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


def _cell(value):
    """A value pandas and parquet can hold in a plain column."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return value


def variant_label(model, options: dict | None) -> str:
    """The model name, plus the options it ran with: differently configured variants never merge."""
    if not options:
        return str(model)
    return f"{model} ({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})"


def _budget_used(row: pd.Series) -> float:
    column = _BUDGET_USAGE.get(row.get("budget_kind"))
    try:
        used = float(row.get(column)) if column else math.nan
        return used / float(row.get("budget_amount"))
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _setting_ids(run: RunFolder) -> dict[str, str]:
    """A sweep's trials by their short setting ids (``gan#3``), so that settings read as names."""
    if not is_sweep(run.path):
        return {}
    try:
        return setting_ids(read_sweep(run.path, parse_distribution))
    except StoreError:  # a damaged sweep.json: its rows are still reported, by their options
        return {}


def run_frame(run: RunFolder, order: int) -> pd.DataFrame:
    """One run's rows with the run's settings from its manifest as columns."""
    m = run.manifest
    ids = _setting_ids(run)
    config = _as_dict(dig(m, "config"))
    run_options = _as_dict(config.get("options"))
    extra = {
        "run_dir": str(run.path),
        "run_order": order,
        "budget_text": dig(m, "budget", "text"),
        "budget_kind": dig(m, "budget", "kind"),
        "budget_amount": dig(m, "budget", "amount"),
        "dataset_hash": dig(m, "dataset", "content_hash"),
        "dataset_num_images": dig(m, "dataset", "num_images"),
        "image_shape": "x".join(str(s) for s in dig(m, "dataset", "image_shape", default=[]) or []) or None,
        "device_type": dig(m, "device", "type"),
        "git_commit": m.get("git_commit"),
        "command_line": m.get("command_line"),
    }
    for name, version in _as_dict(dig(m, "versions")).items():
        extra[f"version_{name}"] = version
    records = []
    for row in run.rows:
        record = {k: _cell(v) for k, v in row.items()}
        record["trial"] = row_trial(row)  # rows of bench 0.1.0 have no trial column
        record.setdefault("run_id", run.run_id)
        record.setdefault("dataset", dig(m, "dataset", "name"))
        record.setdefault("dataset_source", dig(m, "dataset", "source"))
        record.setdefault("budget", dig(m, "budget", "text"))
        record.setdefault("device", dig(m, "device", "name"))
        record.setdefault("eval_point", "final")
        for key, value in extra.items():
            record.setdefault(key, value)
        if record.get("budget_text") is None:
            record["budget_text"] = record.get("budget")
        model = row.get("model")
        # the run's --set options for the model, then the trial's own on top (as the trial ran)
        options = {**_as_dict(run_options.get(model)), **_as_dict(row.get("options"))}
        ema = row.get("ema", config.get("ema"))
        if ema:  # averaged image networks evaluated: a variant of its own beside the plain one
            options["ema"] = ema
        setting = ids.get(record["trial"])
        record["variant"] = (variant_label(setting, {"ema": ema} if ema else None) if setting
                             else variant_label(model, options))
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


def normalize(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Numeric columns (the table's included, added where missing) as floats, None as NaN;
    mixed-type columns as text; ``budget_used`` derived."""
    frame = frame.copy()
    for key in NUMERIC_COLUMNS + [c.key for c in columns if c.key != BUDGET_USED.key]:
        frame[key] = pd.to_numeric(frame[key], errors="coerce") if key in frame.columns else math.nan
    frame["budget_amount"] = pd.to_numeric(frame["budget_amount"], errors="coerce")
    frame[BUDGET_USED.key] = frame.apply(_budget_used, axis=1) if len(frame) else pd.Series(dtype=float)
    # the wall-clock time of an evaluation point: the untrained point is at 0 s
    untrained = frame["eval_point"] == "untrained"
    frame.loc[untrained & frame["train_seconds"].isna(), "train_seconds"] = 0.0
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and not is_nan(v)}
            if len(kinds) > 1 and not kinds <= {int, float, bool}:
                frame[column] = [None if v is None or is_nan(v) else str(v) for v in frame[column]]
    return frame
