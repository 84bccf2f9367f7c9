"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Every plot labels its axes with units and names the dataset, budget and N in its title.
Each function writes one PNG and returns its path, or returns ``None`` with the reason
added to ``notes`` when there is nothing to draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report.load import POINT_ORDER, read_rows
from bench.report.stats import final_rows, finite, t_interval, variants

DPI = 110


def plain(text) -> str:
    """Text shown literally by matplotlib: ``$`` would otherwise start mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _colours(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def trial_dir(row: pd.Series) -> Path:
    return Path(str(row["run_dir"])) / "trials" / f"{row['model']}-s{int(row['seed'])}"


def _trials(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (finished or still running), seeds in order."""
    rows = frame[frame["seed"].notna()].drop_duplicates(["run_dir", "model", "seed"])
    return rows.sort_values(["variant", "seed"], kind="stable")


def fid_vs_time(frame: pd.DataFrame, context: str, path: Path, notes: list[str]) -> Path | None:
    """Mean FID against mean training wall-clock per evaluation point, t-interval band across seeds."""
    points = frame[frame["fid"].notna() & ~frame["status"].isin(["failed", "diverged"])]
    if points.empty:
        notes.append("FID versus training time: no row has an FID (run with --eval-samples above 0)")
        return None
    names = variants(points)
    colours = _colours(variants(frame))
    figure = _figure(7.5, 4.6)
    ax = figure.add_subplot()
    for name in names:
        rows = aligned_points(points[points["variant"] == name])
        line = []
        for _, at in rows.groupby("align", sort=False):
            fid = t_interval(at["fid"])
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
    ax.set_xlabel("training wall-clock time (s)")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(plain(f"FID vs training time: {context}"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path)


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
        rows = read_rows(trial_dir(row) / "log.jsonl", notes)
        if rows:
            logs.setdefault(str(row["variant"]), []).append((int(row["seed"]), rows))
    if not logs:
        notes.append("training loss curves: no trial has a log.jsonl with rows")
        return None
    columns = min(2, len(logs))
    lines = math.ceil(len(logs) / columns)
    figure = _figure(5.2 * columns, 3.4 * lines)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, (name, trials) in zip(axes, logs.items(), strict=False):
        keys = sorted({k for _, rows in trials for r in rows for k in r if str(k).startswith("loss")})
        colours = _colours(keys)
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
    return _save(figure, path)


def finite_or_nan(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


def throughput(frame: pd.DataFrame, context: str, path: Path, notes: list[str]) -> Path | None:
    """Training and sampling images/s per variant: mean bar, 95% t-interval error bar (2+ seeds)."""
    final = final_rows(frame)
    specs = [("train_images_per_s", "training"), ("sample_images_per_s", "sampling")]
    specs = [(c, label) for c, label in specs if len(finite(final[c]))]
    if not specs:
        notes.append("throughput: no completed trial has an images/s value")
        return None
    names = variants(final)
    colours = _colours(variants(frame))
    figure = _figure(4.2 * len(specs), 3.8)
    axes = figure.subplots(1, len(specs), squeeze=False).ravel()
    for ax, (column, label) in zip(axes, specs, strict=True):
        intervals = [t_interval(final.loc[final["variant"] == n, column]) for n in names]
        means = [i.mean if i.n else 0.0 for i in intervals]
        errors = np.array([[i.mean - i.low, i.high - i.mean] if i.available else [0.0, 0.0]
                           for i in intervals]).T
        ax.bar(range(len(names)), means, yerr=errors, capsize=4,
               color=[colours[n] for n in names], alpha=0.85)
        for x, interval in enumerate(intervals):
            if interval.n == 0:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), [plain(n) for n in names], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(f"{label} throughput (images/s)")
        ax.set_title(f"{label} (higher is better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    devices = ", ".join(sorted({str(d) for d in final["device"].dropna()})) or "unknown device"
    figure.suptitle(plain(f"Throughput on {devices}: {context}"), fontsize=10)
    return _save(figure, path)


def image_grids(frame: pd.DataFrame, filename: str, title: str, context: str, path: Path,
                notes: list[str], quiet: bool = False) -> Path | None:
    """One picture per variant (``filename`` in its first seed's trial folder) side by side."""
    from PIL import Image, UnidentifiedImageError

    pictures = []
    for name in variants(frame):
        for _, row in _trials(frame[frame["variant"] == name]).iterrows():
            file = trial_dir(row) / filename
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
    columns = min(4, len(pictures))
    lines = math.ceil(len(pictures) / columns)
    figure = _figure(3.0 * columns, 3.2 * lines + 0.4)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, (name, seed, pixels) in zip(axes, pictures, strict=False):
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(plain(f"{name} (seed {seed})"), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(pictures):]:
        ax.set_visible(False)
    figure.suptitle(plain(f"{title}: {context}"), fontsize=10)
    return _save(figure, path)
