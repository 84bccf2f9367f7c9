"""``metrics.jsonl``: one row per trial x evaluation point.

Every row starts with the columns that say where it comes from (``IDENTITY``); evaluation
rows add the evaluation's own columns and each metric's declared columns; final rows add the
trial's cost (``columns.TRIAL_COLUMNS``) and final losses. Rows of bench 0.1.0 have no
``trial`` column: their trial is ``trial_name(model, seed)``.
"""

from __future__ import annotations

from pathlib import Path

from bench.store.files import append_jsonl, read_jsonl
from bench.store.layout import METRICS_FILE, trial_name

# Where a row comes from. ``eval_point``: untrained | interval (--eval-every) | final | external;
# ``backbone``: what the variant built on (None: a variant with networks of its own).
IDENTITY = ("run_id", "trial", "model", "backbone", "options", "family", "seed", "eval_point", "dataset",
            "dataset_source", "budget", "device", "batch_size", "ema")
# What the evaluation (not a metric) adds to its rows.
EVALUATION = ("eval_samples", "eval_ref", "ref_samples", "small_n", "recon_samples", "eval_seconds")
# What a final row says about the trial's course.
PROGRESS = ("status", "message", "step", "images_seen", "train_seconds", "train_flops",
            "flops_per_image", "train_flops_per_s")
POINT_ORDER = {"untrained": 0, "interval": 1, "final": 2}


def row_trial(row: dict) -> str:
    """The trial a row belongs to (rows of bench 0.1.0 name only model and seed)."""
    return row.get("trial") or trial_name(row.get("model"), row.get("seed"))


def append_row(run_dir: Path, row: dict) -> None:
    append_jsonl(Path(run_dir) / METRICS_FILE, row)


def read_rows(run_dir: Path, notes: list[str] | None = None) -> list[dict]:
    return read_jsonl(Path(run_dir) / METRICS_FILE, notes)


def trial_rows(rows: list[dict], trial: str) -> list[dict]:
    return [r for r in rows if row_trial(r) == trial]


def has_row(rows: list[dict], trial: str, point: str, step: int | None = None) -> bool:
    """Whether ``rows`` hold ``trial``'s row at ``point`` (and ``step``, for interval rows)."""
    return any(row_trial(r) == trial and r.get("eval_point") == point
               and (step is None or r.get("step") == step) for r in rows)
