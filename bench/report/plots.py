"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

``metric_panels`` draws every summary column of the column table (a plugin's included); the
others are FID against time (each trial's best FID starred), loss curves, throughput and the
pictures trials save (samples, reconstructions, latent interpolations, data copying).
Every plot labels its axes with units and names the dataset, budget and N in its title.
Each function writes one PNG and returns its path, or returns ``None`` with the reason
added to ``notes`` when there is nothing to draw.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.best import has_progress, trial_bests
from bench.report.stats import bounded_interval, fid_interval, final_rows, finite, variants
from bench.store.columns import Column
from bench.store.files import read_jsonl
from bench.store.layout import LOG_FILE, trial_dir
from bench.store.rows import POINT_ORDER

DPI = 110


def plain(text) -> str:
    """Text shown literally by matplotlib: ``$`` would otherwise start mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def new_figure(width: float, height: float, layout: str | None = "constrained"):
    """A matplotlib Figure on the Agg canvas (matplotlib is imported here: a report that draws no
    chart never loads it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def palette(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def trial_folder(row: pd.Series) -> Path:
    """The folder of the trial a frame row belongs to (its ``trial`` column: ``load.run_frame``
    fills it in for rows written before rows named their trial)."""
    return trial_dir(Path(str(row["run_dir"])), str(row["trial"]))


def _trials(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (finished or still running), seeds in order."""
    rows = frame[frame["seed"].notna()].drop_duplicates(["run_dir", "trial"])
    return rows.sort_values(["variant", "seed"], kind="stable")


def fid_vs_time(frame: pd.DataFrame, context: str, path: Path, notes: list[str]) -> Path | None:
    """Mean FID against mean training wall-clock per evaluation point, t-interval band across seeds;
    a star on each trial's best FID when some trial was evaluated more than once."""
    if "fid" not in frame.columns:
        notes.append("FID versus training time: the runs' metrics include no FID")
        return None
    points = frame[frame["fid"].notna() & ~frame["status"].isin(["failed", "diverged"])]
    if points.empty:
        notes.append("FID versus training time: no row has an FID (run with --eval-samples above 0)")
        return None
    names = variants(points)
    colours = palette(variants(frame))
    figure = new_figure(7.5, 4.6)
    ax = figure.add_subplot()
    for name in names:
        rows = aligned_points(points[points["variant"] == name])
        line = []
        for _, at in rows.groupby("align", sort=False):
            fid = fid_interval(at["fid"])
            line.append((float(np.nanmean(at["train_seconds"].to_numpy(float))), fid))
        ax.scatter(rows["train_seconds"], rows["fid"], s=10, alpha=0.45, color=colours[name])
        line.sort(key=lambda p: (math.isnan(p[0]), p[0]))
        x = np.array([p[0] for p in line])
        ax.plot(x, [p[1].mean for p in line], marker="o", color=colours[name],
                label=f"{plain(name)} (n={max(p[1].n for p in line)} seeds)")
        low = np.array([p[1].low for p in line])
        high = np.array([p[1].high for p in line])
        if np.isfinite(low).any():
            ax.fill_between(x, low, high, color=colours[name], alpha=0.18, linewidth=0)
    bests = trial_bests(frame)
    if has_progress(bests):
        star = {"s": 110, "marker": "*", "linewidths": 0.6, "edgecolors": "black"}
        ax.scatter(bests["best_seconds"], bests["best_fid"], zorder=3,
                   color=[colours[str(v)] for v in bests["variant"]], **star)
        ax.scatter([], [], color="white", label="each trial's best FID", **star)  # the legend's entry
    ax.set_xlabel("training wall-clock time (s)")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(plain(f"FID vs training time: {context}"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


def aligned_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Evaluation points matched across seeds: untrained, k-th interval evaluation, final.

    With ``--eval-every`` in wall-clock units each seed's k-th evaluation lands at a slightly
    different step, so points are matched by their order within the trial, not by step.
    """
    rows = rows.assign(order=rows["eval_point"].map(POINT_ORDER).fillna(1))
    rows = rows.sort_values(["run_order", "seed", "order", "train_seconds", "step"], kind="stable")
    k = rows.groupby(["run_order", "seed", "eval_point"], sort=False).cumcount()
    return rows.assign(align=[f"{p}#{i}" for p, i in zip(rows["eval_point"], k, strict=True)])


def loss_curves(frame: pd.DataFrame, context: str, path: Path, notes: list[str]) -> Path | None:
    """Each variant's logged training losses against training wall-clock, one line per seed."""
    logs: dict[str, list[tuple[int, list[dict]]]] = {}
    for _, row in _trials(frame).iterrows():
        rows = read_jsonl(trial_folder(row) / LOG_FILE, notes)
        if rows:
            logs.setdefault(str(row["variant"]), []).append((int(row["seed"]), rows))
    if not logs:
        notes.append(f"training loss curves: no trial has a {LOG_FILE} with rows")
        return None
    columns = min(2, len(logs))
    lines = math.ceil(len(logs) / columns)
    figure = new_figure(5.2 * columns, 3.4 * lines)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, (name, trials) in zip(axes, logs.items(), strict=False):
        keys = sorted({k for _, rows in trials for r in rows for k in r if str(k).startswith("loss")})
        colours = palette(keys)
        for i, (_, rows) in enumerate(trials):
            x = finite_or_nan([r.get("seconds") for r in rows])
            for key in keys:
                ax.plot(x, finite_or_nan([r.get(key) for r in rows]), color=colours[key], linewidth=1,
                        alpha=0.9 if i == 0 else 0.5, label=plain(key) if i == 0 else None)
        seeds = ", ".join(str(s) for s, _ in trials)
        ax.set_title(plain(f"{name} (seeds {seeds})"), fontsize=9)
        ax.set_xlabel("training wall-clock time (s)")
        ax.set_ylabel("loss (the variant's own objective)")
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=7)
    for ax in axes[len(logs):]:
        ax.set_visible(False)
    figure.suptitle(plain(f"Training losses: {context}"), fontsize=10)
    return save_figure(figure, path)


def finite_or_nan(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


def throughput(frame: pd.DataFrame, context: str, path: Path, notes: list[str]) -> Path | None:
    """Training and sampling images/s per variant: mean bar, 95% interval error bar (2+ seeds)."""
    final = final_rows(frame)
    specs = [("train_images_per_s", "training"), ("sample_images_per_s", "sampling")]
    specs = [(c, label) for c, label in specs if c in final.columns and len(finite(final[c]))]
    if not specs:
        notes.append("throughput: no completed trial has an images/s value")
        return None
    names = variants(final)
    colours = palette(variants(frame))
    sideways = len(names) > MAX_UPRIGHT_BARS
    figure = new_figure((6.2 if sideways else 4.2) * len(specs), 0.19 * len(names) + 1.8 if sideways else 3.8)
    axes = figure.subplots(1, len(specs), squeeze=False).ravel()
    for ax, (column, label) in zip(axes, specs, strict=True):
        intervals = [bounded_interval(final.loc[final["variant"] == n, column], minimum=0.0) for n in names]
        means = [i.mean if i.n else 0.0 for i in intervals]
        errors = np.array([[max(i.mean - i.low, 0.0), max(i.high - i.mean, 0.0)] if i.available
                           else [0.0, 0.0]
                           for i in intervals]).T
        bars(ax, [plain(textwrap.shorten(n, 48)) for n in names], means, errors, [colours[n] for n in names],
             f"{label} throughput (images/s)", [x for x, i in enumerate(intervals) if i.n == 0])
        ax.set_title(f"{label} (higher is better)", fontsize=9)
    devices = ", ".join(sorted({str(d) for d in final["device"].dropna()})) or "unknown device"
    figure.suptitle(plain(f"Throughput on {devices}: {context}"), fontsize=10)
    return save_figure(figure, path)


MAX_UPRIGHT_BARS = 8  # more bars per panel: horizontal bars, each label on its own line


def bars(ax, labels: list[str], values, errors, colours: list, value_label: str, missing=()) -> None:
    """One bar per label with its error bar; horizontal (first label on top) past
    ``MAX_UPRIGHT_BARS`` so that every label stays readable. ``missing``: indices shown as n/a."""
    sideways = len(labels) > MAX_UPRIGHT_BARS
    place = range(len(labels))
    if sideways:
        ax.barh(place, values, xerr=errors, capsize=2, color=colours, alpha=0.85)
        ax.set_yticks(place, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(value_label, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.bar(place, values, yerr=errors, capsize=3, color=colours, alpha=0.85)
        ax.set_xticks(place, labels, rotation=25, ha="right", fontsize=7)
        ax.set_ylabel(value_label, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    for i in missing:
        ax.text(*((0, i) if sideways else (i, 0)), "n/a", ha="left" if sideways else "center",
                va="center" if sideways else "bottom", fontsize=7)


def metric_panels(summary: pd.DataFrame, columns: list[Column], context: str, path: Path,
                  notes: list[str]) -> Path | None:
    """One panel per summary column of the table that a completed trial has a value of: the mean
    per variant as a bar, its 95% interval as an error bar (2+ seeds); horizontal bars when there
    are more than ``MAX_UPRIGHT_BARS`` variants. The numbers are those
    of the summary table (``stats.summarize``), so a newly declared column shows up here too."""
    shown = [c for c in columns if c.summary and (summary.loc[summary["column"] == c.key, "n"] > 0).any()]
    if not shown:
        notes.append("metrics: no completed trial has a value in any summary column")
        return None
    names = list(dict.fromkeys(str(v) for v in summary["variant"]))
    colours = palette(names)
    sideways = len(names) > MAX_UPRIGHT_BARS  # one label per line, never printed over each other
    per_line = min(2 if sideways else 4, len(shown))
    lines = math.ceil(len(shown) / per_line)
    labels = [plain(textwrap.shorten(v, 48)) for v in names]
    panel = 0.19 * len(names) + 1.3 if sideways else 2.9
    # A fixed grid: the constrained-layout solver takes seconds over a score of panels.
    height = panel * lines + 0.8
    width = 6.2 * per_line if sideways else 3.4 * per_line
    figure = new_figure(width, height, layout=None)
    label_room = min(0.4, 0.075 * max(len(t) for t in labels) / width) if sideways else 0.0
    figure.subplots_adjust(left=0.07 + label_room, right=0.98, top=1 - 0.85 / height, bottom=0.75 / height,
                           wspace=0.45 + (2.2 * label_room if sideways else 0.0),
                           hspace=1.3 / panel if sideways else 0.75)  # about an inch between lines
    axes = figure.subplots(lines, per_line, squeeze=False).ravel()
    for ax, column in zip(axes, shown, strict=False):
        cells = summary[summary["column"] == column.key].drop_duplicates("variant").set_index("variant")
        cells = cells.reindex(names)
        n = cells["n"].fillna(0).astype(int).to_numpy()
        mean = cells["mean"].to_numpy(float)
        low, high = cells["ci95_low"].to_numpy(float), cells["ci95_high"].to_numpy(float)
        has_interval = (n >= 2) & np.isfinite(low) & np.isfinite(high)
        # clipped: a log-normal interval may (rarely) not contain the sample mean it is drawn around
        errors = np.where(has_interval, np.maximum([mean - low, high - mean], 0.0), 0.0)
        bars(ax, labels, np.where(n > 0, mean, 0.0), errors, [colours[v] for v in names],
             plain(textwrap.fill(column.title, 50 if sideways else 38)), np.flatnonzero(n == 0))
        direction = f" ({column.better} is better)" if column.better else ""
        ax.set_title(plain(textwrap.fill(column.label + direction, 40)), fontsize=9)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    figure.suptitle(plain(f"Metrics per variant (mean across seeds, 95% interval with 2+ seeds): "
                          f"{context}"), fontsize=10)
    return save_figure(figure, path)


def image_grids(frame: pd.DataFrame, filename: str, title: str, context: str, path: Path,
                notes: list[str], quiet: bool = False) -> Path | None:
    """One picture per variant (``filename`` in its first seed's trial folder) side by side."""
    from PIL import Image, UnidentifiedImageError

    pictures = []
    for name in variants(frame):
        for _, row in _trials(frame[frame["variant"] == name]).iterrows():
            file = trial_folder(row) / filename
            if not file.is_file():
                continue
            try:
                with Image.open(file) as image:
                    pictures.append((name, int(row["seed"]), np.asarray(image.convert("RGB"))))
                break
            except (OSError, UnidentifiedImageError) as exc:
                notes.append(f"{file}: unreadable ({exc})")
    if not pictures:
        if not quiet:
            notes.append(f"{title}: no trial has a {filename}")
        return None
    if len(pictures) == 1:  # the trial's own picture as it is (its caption says whose): no matplotlib
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pictures[0][2]).save(path, format="PNG")
        return path
    columns = min(4, len(pictures))
    lines = math.ceil(len(pictures) / columns)
    figure = new_figure(3.0 * columns, 3.2 * lines + 0.4)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, (name, seed, pixels) in zip(axes, pictures, strict=False):
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(plain(f"{name} (seed {seed})"), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(pictures):]:
        ax.set_visible(False)
    figure.suptitle(plain(f"{title}: {context}"), fontsize=10)
    return save_figure(figure, path)
