"""The sweep part of a report (``bench sweep`` folders, ``bench.store.sweep``).

Per variant: the FID of its K search samples (one strip per variant, diverged and failed samples
marked), the expected best FID after k samples with a bootstrap band (Dodge et al. 2019, "Show
Your Work": what a reader compares families by at equal tuning budgets), the best setting and
its final-phase mean FID with a 95% t-interval over the S seeds, the reconstruction columns of
the encoder variants, the ranking after search beside the ranking at the defaults when a plain
``bench run`` is reported alongside, and the training compute each variant received.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.format import show
from bench.report.load import RunFolder
from bench.report.plots import new_figure, palette, plain, save_figure
from bench.report.render import Bold, Code, Heading, Image, Para, Table
from bench.report.stats import rank_by_fid, t_interval
from bench.space import parse_distribution
from bench.store.rows import row_trial
from bench.store.sweep import FINAL, SEARCH, read_sweep
from bench.sweep.expected_best import bootstrap_band, expected_best_curve

COMPUTE = (("train_seconds", "training seconds"), ("images_seen", "training images"),
           ("train_flops", "training FLOPs"))


def slot_frame(run: RunFolder) -> pd.DataFrame:
    """One row per sweep slot: its phase, setting, status, final FID, reconstruction and compute."""
    state = read_sweep(run.path, parse_distribution)
    finals = {row_trial(r): r for r in run.rows if r.get("eval_point") == "final"}
    records = []
    for slot in state["slots"]:
        row = finals.get(slot["trial"], {})
        status = row.get("status", "not run")
        records.append({
            "model": slot["model"], "phase": slot["phase"], "index": slot["index"], "seed": slot["seed"],
            "trial": slot["trial"], "options": slot["options"], "status": status,
            "superseded": bool(slot.get("superseded")),  # a final of an earlier best (--add-samples)
            "fid": _number(row.get("fid")) if status == "completed" else math.nan,
            "recon_mse": _number(row.get("recon_mse")),
            **{key: _number(row.get(key)) for key, _ in COMPUTE},
        })
    columns = ["model", "phase", "index", "seed", "trial", "options", "status", "superseded", "fid",
               "recon_mse", *(key for key, _ in COMPUTE)]  # named, so a sweep without slots is an empty table
    return pd.DataFrame.from_records(records, columns=columns)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _setting(options: dict) -> str:
    def text(value):
        return f"{value:.3g}" if isinstance(value, float) else show(value)

    return ", ".join(f"{k}={text(v)}" for k, v in sorted(options.items())) or "defaults"


def sweep_blocks(run: RunFolder, plots_dir: Path | None, default_runs: list[RunFolder]) -> list:
    state = read_sweep(run.path, parse_distribution)
    p = state["protocol"]
    frame = slot_frame(run)
    models = list(p["spaces"])
    search = frame[frame["phase"] == SEARCH]
    final = frame[(frame["phase"] == FINAL) & ~frame["superseded"].astype(bool)]
    blocks: list = [
        Heading(2, f"Sweep {run.run_id}: equal search budget per variant"),
        Para([f"Every variant: K = {p['samples']}{_added(p)} settings drawn ({p['sampler']} sampler, sweep "
              f"seed {p['seed']}) from its search space, each trained once (seed {p['trial_seed']}) under "
              f"the same budget and evaluated; then its best setting by FID retrained with "
              f"S = {p['final_seeds']} fresh seeds (the protocol of Lucic et al. 2018). Failed and "
              "diverged samples are data: they count as the worst outcome in the expected-best curve."]),
        Table(["variant", "searched fields"],
              [[m, [Code(", ".join(f"{f} ~ {t}" for f, t in p["spaces"][m].items()))]] for m in models]),
    ]
    blocks += _compute_section(frame, models)
    blocks += _search_section(search, models, p["samples"], plots_dir, run.run_id)
    blocks += _final_section(final, state, models)
    if default_runs:
        blocks += _ranking_section(final, models, default_runs)
    return blocks


def _added(protocol: dict) -> str:
    added = protocol.get("added_samples", [])
    if not added:
        return ""
    first = protocol["samples"] - sum(added)
    return f" ({' + '.join(map(str, [first, *added]))}: more added with --add-samples)"


def _compute_section(frame: pd.DataFrame, models: list[str]) -> list:
    rows = []
    for model in models:
        mine = frame[frame["model"] == model]
        totals = [f"{np.nansum(mine[key].to_numpy(float)):.4g}" for key, _ in COMPUTE]
        rows.append([model, str(len(mine)), *totals])
    return [Heading(3, "Training compute per variant"),
            Para(["Search and final trials together; every variant has the same number of trials of one "
                  "budget, so equal trial counts are equal compute for a steps or images budget and equal "
                  "wall-clock for a time budget."]),
            Table(["variant", "trials", *[label for _, label in COMPUTE]], rows,
                  [False, True, True, True, True])]


def worst_finite(search: pd.DataFrame) -> float:
    values = search["fid"].to_numpy(float)
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else math.nan


def _search_section(search: pd.DataFrame, models: list[str], k_max: int, plots_dir: Path | None,
                    run_id: str) -> list:
    penalty = worst_finite(search)
    table, curves = [], {}
    for model in models:
        mine = search[search["model"] == model].sort_values("index")
        values = mine["fid"].to_numpy(float)
        statuses = mine["status"].tolist()
        n = len(values)
        diverged = statuses.count("diverged")
        failed = sum(s not in ("completed", "diverged") for s in statuses)
        finite = values[np.isfinite(values)]
        if n and math.isfinite(penalty):
            curve = expected_best_curve(values, n, failed=penalty)
            low, high = bootstrap_band(values, n, failed=penalty, n_boot=500)
            curves[model] = (curve, low, high)
        else:
            curve = np.array([])
        table.append([model, str(n), f"{diverged}/{n}" if n else "-", f"{failed}/{n}" if n else "-",
                      f"{np.median(finite):.1f}" if len(finite) else "-",
                      f"{finite.min():.1f}" if len(finite) else "-",
                      f"{curve[0]:.1f}" if len(curve) else "-",
                      f"{curve[-1]:.1f}" if len(curve) else "-"])
    blocks = [Heading(3, "Search: FID over the samples"),
              Table(["variant", "samples", "diverged", "failed", "median FID", "best FID",
                     "E[best] k=1", f"E[best] k={k_max}"], table, [False] + [True] * 7),
              Para(["E[best] k: the expected best (lowest) FID of k settings drawn at random from the "
                    "ones tried (Dodge et al. 2019), failed or diverged samples counted as the worst finite "
                    f"FID of the sweep ({penalty:.1f}) so that the curve stays finite. k = 1 is the mean "
                    "over the samples: a variant's quality at a random setting; the curve's fall to k = K "
                    "says how much tuning buys. Compare variants at the same k."])]
    if plots_dir is not None and len(search):
        strip = _strip_plot(search, models, plots_dir / "sweep-fid.png", run_id)
        blocks.append(Image(strip, "FID per sample"))
    if plots_dir is not None and curves:
        blocks.append(Image(_expected_best_plot(curves, plots_dir / "sweep-expected-best.png", run_id),
                            "expected best FID after k samples"))
    return blocks


def _final_section(final: pd.DataFrame, state: dict, models: list[str]) -> list:
    rows = []
    for model in models:
        chosen = state["chosen"].get(model)
        if not chosen or chosen.get("trial") is None:
            rows.append([model, (chosen or {}).get("reason", "not chosen yet"), "-", "-", "-"])
            continue
        mine = final[final["model"] == model]
        fid, mse = t_interval(mine["fid"]), t_interval(mine["recon_mse"])
        rows.append([model, [Code(_setting(chosen["options"]))], f"{chosen['value']:.1f}",
                     _interval(fid, ".1f"), _interval(mse, ".4f") if mse.n else "-"])
    return [Heading(3, "Final: the best setting over fresh seeds"),
            Table(["variant", "best setting (search)", "search FID", "final FID mean [95% CI] (n)",
                   "final recon MSE mean [95% CI]"], rows, [False, False, True, True, True]),
            Para(["The search FID of the chosen setting is biased low (it is the minimum of K noisy "
                  "values); the final phase's fresh seeds are the fair estimate of that setting."])]


def _interval(interval, fmt: str) -> str:
    if interval.n == 0:
        return "-"
    if not interval.available:
        return f"{interval.mean:{fmt}} (n={interval.n})"
    return f"{interval.mean:{fmt}} [{interval.low:{fmt}}, {interval.high:{fmt}}] (n={interval.n})"


def _ranking_section(final: pd.DataFrame, models: list[str], default_runs: list[RunFolder]) -> list:
    # The main report's ranking, of the default runs' trials without options of their own, by model:
    # the run's --set options are the base config the sweep searched from, so they count as defaults.
    at_default = pd.DataFrame.from_records(
        [{"variant": row.get("model"), "family": row.get("family"), "eval_point": row.get("eval_point"),
          "status": row.get("status"), "fid": row.get("fid")}
         for run in default_runs for row in run.rows if not row.get("options")])
    at_defaults = {r.variant: r.fid.mean for r in rank_by_fid(at_default) if r.variant in models}
    searched = {m: float(np.nanmean(final[final["model"] == m]["fid"])) for m in models
                if np.isfinite(final[final["model"] == m]["fid"]).any()}
    order_d = sorted(at_defaults, key=at_defaults.get)
    order_s = sorted(searched, key=searched.get)
    rows = [[m, f"{at_defaults[m]:.1f}" if m in at_defaults else "-",
             str(order_d.index(m) + 1) if m in at_defaults else "-",
             f"{searched[m]:.1f}" if m in searched else "-",
             str(order_s.index(m) + 1) if m in searched else "-"] for m in models]
    shared = [m for m in order_s if m in at_defaults]
    same = [m for m in order_d if m in searched] == shared
    return [Heading(3, "Ranking at the defaults and after search"),
            Para(["At the defaults: mean final FID of the default-setting trials in ",
                  ", ".join(r.run_id for r in default_runs), ". After search: the final phase's mean."]),
            Table(["variant", "FID at defaults", "rank", "FID after search", "rank"], rows,
                  [False, True, True, True, True]),
            Para([Bold("The ranking " + ("is the same." if same else "changes after search.")),
                  " (Over the variants present in both.)"])]


def _strip_plot(search: pd.DataFrame, models: list[str], path: Path, run_id: str) -> Path:
    figure = new_figure(1.0 + 0.9 * len(models), 4.0)
    ax = figure.add_subplot()
    colours = palette(models)
    rng = np.random.default_rng(0)  # the jitter only; fixed so reports are reproducible
    finite_all = search["fid"].to_numpy(float)
    finite_all = finite_all[np.isfinite(finite_all)]
    top = float(finite_all.max()) * 1.08 if len(finite_all) else 1.0
    marked = False
    for i, model in enumerate(models):
        mine = search[search["model"] == model]
        values = mine["fid"].to_numpy(float)
        jitter = rng.uniform(-0.18, 0.18, len(values))
        ok = np.isfinite(values)
        ax.scatter(i + jitter[ok], values[ok], color=colours[model], s=22, alpha=0.8)
        if (~ok).any():
            ax.scatter(i + jitter[~ok], np.full((~ok).sum(), top), marker="x", color="black", s=30,
                       label=None if marked else "diverged / failed")
            marked = True
    ax.set_xticks(range(len(models)), [plain(m) for m in models], rotation=30, ha="right")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(plain(f"{run_id}\nFID of each search sample"), fontsize=9)
    if marked:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)


def _expected_best_plot(curves: dict, path: Path, run_id: str) -> Path:
    figure = new_figure(6.0, 4.0)
    ax = figure.add_subplot()
    colours = palette(list(curves))
    for model, (curve, low, high) in curves.items():
        k = np.arange(1, len(curve) + 1)
        ax.plot(k, curve, color=colours[model], label=plain(model), marker="o", markersize=3)
        ax.fill_between(k, low, high, color=colours[model], alpha=0.15)
    ax.set_xlabel("k: settings tried (random search)")
    ax.set_ylabel("expected best FID")
    ax.set_title(plain(f"{run_id}\nexpected best FID after k samples (95% bootstrap band)"), fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return save_figure(figure, path)
