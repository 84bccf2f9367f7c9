"""``build_report``: run folders in; report.md, report.html, results.csv/.parquet, summary.csv
and plots out. This module only orchestrates: ``load`` reads the folders, ``comparable`` groups
them, ``sections`` writes each comparison, ``render`` renders, ``bench.store`` writes the files.

Everything comes from the rows and files already in the run folders: no model, no GPU and
no Inception weights are needed.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import warnings
from pathlib import Path

import pandas as pd

from bench.report.across import across_blocks, cross_frame
from bench.report.comparable import group_runs
from bench.report.load import column_table, load_runs
from bench.report.render import Bold, Bullets, Details, Heading, Para, to_html, to_markdown
from bench.report.sections import group_blocks
from bench.report.sweep import slot_frame, sweep_blocks
from bench.store.files import StoreError, atomic_write
from bench.store.sweep import is_sweep

# results.csv starts with what says where a row comes from
FIRST_COLUMNS = ["comparison", "run_id", "variant", "trial", "model", "family", "seed", "eval_point",
                 "status"]


def _as_text(value):
    return value if value is None or isinstance(value, float) and math.isnan(value) else str(value)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception:  # a column with values of several types: store it as text
        buffer = io.BytesIO()
        text = {c: frame[c].map(_as_text) for c in frame.columns if frame[c].dtype == object}
        frame.assign(**text).to_parquet(buffer, index=False)
    return buffer.getvalue()


def build_report(run_dirs, out_dir=None, plots: bool = True) -> dict[str, Path]:
    """Build the report of one or more run folders; returns the paths written.

    Outputs go to ``out_dir`` (default: the first run folder): ``report.md``, ``report.html``,
    ``results.csv``, ``results.parquet`` (the long-form rows of every run given),
    ``summary.csv`` (mean and 95% CI per comparison x variant x metric) and ``plots/*.png``.
    """
    runs, notes = load_runs([Path(d) for d in run_dirs])
    groups, rows = group_runs(runs, column_table(runs, notes))
    out = Path(out_dir) if out_dir is not None else runs[0].path
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"

    several = len(groups) > 1
    title = "bench report: " + ", ".join(r.run_id for r in runs)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list = [Heading(1, title),
                    Para(f"Generated {now} from {len(runs)} run folder{'s' * (len(runs) > 1)} "
                         f"({sum(len(r.rows) for r in runs)} metrics rows), from the rows alone.")]
    if several:
        blocks.append(Para([Bold(f"{len(groups)} separate comparisons. "),
                            "Runs whose dataset, budget, evaluation protocol or N differ are never averaged "
                            "together; each group below is its own comparison, with the reason it is "
                            "separate."]))
        blocks.append(Bullets([[f"Comparison {g.number}: {', '.join(r.run_id for r in g.runs)}"
                                + (f" (separate: {g.reason})" if g.reason else "")] for g in groups]))
    sweeps, sweep_tables, sweep_parts = [], [], []
    for run in (r for r in runs if is_sweep(r.path)):  # plain runs given alongside are the defaults
        try:
            part = sweep_blocks(run, plots_dir if plots else None, [r for r in runs if not is_sweep(r.path)])
            sweep_tables.append(slot_frame(run).assign(run_id=run.run_id))
        except StoreError as exc:  # a damaged sweep.json: its rows are still reported below
            notes.append(f"{exc} (the sweep's rows are reported as a plain run's)")
            warnings.warn(notes[-1], stacklevel=2)  # the command line prints it as one line
            continue
        sweeps.append(run)
        sweep_parts += part
    if notes:
        blocks += [Heading(2, "Warnings"), Bullets([[n] for n in notes])]
    blocks += sweep_parts  # the sweep's answer first
    if len(sweeps) >= 2:
        blocks += across_blocks(sweeps)
    detail, summaries = [], []
    for group in groups:
        group_part, summary = group_blocks(group, plots_dir if plots else None, several)
        detail += group_part
        summaries.append(summary)
    if sweeps:  # every setting as a run report shows it: below the answer, opened on demand
        blocks += [Heading(2, "Per-setting detail"),
                   Para(["Every setting of the sweep as the report of a plain run shows it: setup, ranking, "
                         "summary across seeds, plots and samples per setting id."]),
                   Details(f"Open the per-setting report ({sum(len(g.frame) for g in groups)} rows)", detail)]
    else:
        blocks += detail

    ordered = [c for c in FIRST_COLUMNS if c in rows.columns]
    rows = rows[ordered + [c for c in rows.columns if c not in ordered]]
    paths = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "csv": out / "results.csv",
        "parquet": out / "results.parquet",
        "summary": out / "summary.csv",
    }
    if len(sweeps) >= 2:  # variants x sweeps: final FID, interval and rank per sweep
        paths["across_csv"] = out / "across.csv"
        atomic_write(paths["across_csv"], cross_frame(sweeps).to_csv(index=False).encode())
    if sweep_tables:  # one row per sweep slot: phase, setting, status, FID, compute
        table = pd.concat(sweep_tables, ignore_index=True)
        table["options"] = table["options"].map(lambda o: json.dumps(o, sort_keys=True))
        paths["sweep_csv"], paths["sweep_parquet"] = out / "sweep.csv", out / "sweep.parquet"
        atomic_write(paths["sweep_csv"], table.to_csv(index=False).encode())
        atomic_write(paths["sweep_parquet"], _parquet_bytes(table))
    atomic_write(paths["csv"], rows.to_csv(index=False).encode())
    atomic_write(paths["parquet"], _parquet_bytes(rows))
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["comparison"] + [c for c in summary.columns if c != "comparison"]]
    atomic_write(paths["summary"], summary.to_csv(index=False).encode())
    atomic_write(paths["markdown"], to_markdown(blocks, out).encode())
    atomic_write(paths["html"], to_html(blocks, title).encode())
    if plots and plots_dir.is_dir():
        paths["plots"] = plots_dir
    return paths
