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

from bench.report.answer import (
    SIGNIFICANT_BELOW,
    answer_table,
    compute_sentence,
    equal_compute,
    expected_best_curves,
    interval_text,
    lead_sentence,
)
from bench.report.format import fmt_fid
from bench.report.load import RunFolder
from bench.report.plots import new_figure, palette, plain, save_figure
from bench.report.render import Bold, Code, Heading, Image, Para, Table
from bench.report.settings import setting_ids, setting_text, settings_rows
from bench.report.stability import (
    STABILITY_HEADER,
    STABILITY_NOTE,
    is_collapsed,
    stability_frame,
    stability_rows,
)
from bench.report.stats import bounded_interval, fid_interval, rank_by_fid, welch_p
from bench.space import parse_distribution
from bench.store.rows import row_trial
from bench.store.sweep import FINAL, SEARCH, read_sweep

COMPUTE = (("train_seconds", "training seconds"), ("images_seen", "training images"),
           ("train_flops", "training FLOPs"))
SLOT_COLUMNS = ["model", "setting", "phase", "index", "seed", "trial", "options", "status", "superseded",
                "fid", "best_fid_so_far", "evaluations", "collapsed", "coverage", "recall", "recon_mse",
                *(k for k, _ in COMPUTE)]


def slot_frame(run: RunFolder, state: dict | None = None) -> pd.DataFrame:
    """One row per sweep slot: its setting id, phase, status, final FID, reconstruction, compute,
    the coverage and recall that tell a collapse, and its best FID of every evaluation (with
    ``--eval-every``: interval points too)."""
    state = state or read_sweep(run.path, parse_distribution)  # the caller's, when it has read it
    ids = setting_ids(state)
    finals = {row_trial(r): r for r in run.rows if r.get("eval_point") == "final"}
    evaluated: dict[str, list[float]] = {}
    for r in run.rows:
        if r.get("eval_point") in ("interval", "final") and math.isfinite(_number(r.get("fid"))):
            evaluated.setdefault(row_trial(r), []).append(_number(r.get("fid")))
    records = []
    for slot in state["slots"]:
        row = finals.get(slot["trial"], {})
        status = row.get("status", "not run")
        done = status == "completed"
        records.append({
            "model": slot["model"], "setting": ids[slot["trial"]], "phase": slot["phase"],
            "index": slot["index"], "seed": slot["seed"], "trial": slot["trial"], "options": slot["options"],
            "status": status,
            "superseded": bool(slot.get("superseded")),  # a final of an earlier best (--add-samples)
            "fid": _number(row.get("fid")) if done else math.nan,
            "best_fid_so_far": min(evaluated.get(slot["trial"], [math.nan])) if done else math.nan,
            "evaluations": len(evaluated.get(slot["trial"], [])),
            "collapsed": is_collapsed(status, _number(row.get("coverage")), _number(row.get("recall"))),
            **{key: _number(row.get(key)) if done else math.nan for key in ("coverage", "recall")},
            "recon_mse": _number(row.get("recon_mse")),
            **{key: _number(row.get(key)) for key, _ in COMPUTE},
        })
    return pd.DataFrame.from_records(records, columns=SLOT_COLUMNS)  # named: a sweep without slots


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _families(run: RunFolder, models: list[str]) -> dict[str, str]:
    declared = run.manifest.get("models") if isinstance(run.manifest.get("models"), dict) else {}
    out = {m: (declared.get(m) or {}).get("family", "") for m in models}
    for row in run.rows:  # a manifest without its models' families: the rows carry them
        if not out.get(row.get("model"), "x") and row.get("family"):
            out[row["model"]] = row["family"]
    return out


def sweep_blocks(run: RunFolder, plots_dir: Path | None, default_runs: list[RunFolder]) -> list:
    """The sweep's report: the answer first (table, significance, equal compute, the
    expected-best and per-sample figures), then the protocol, settings, search, final phase,
    stability, compute and the ranking at the defaults."""
    state = read_sweep(run.path, parse_distribution)
    p = state["protocol"]
    frame = slot_frame(run, state)
    models = list(p["spaces"])
    search = frame[frame["phase"] == SEARCH]
    final = frame[(frame["phase"] == FINAL) & ~frame["superseded"].astype(bool)]
    penalty = worst_finite(search)
    curves = expected_best_curves(search, models, penalty)
    header, rows, _ = answer_table(final, frame, curves, models, _families(run, models))
    blocks: list = [
        Heading(2, f"Sweep {run.run_id}: which variant is best at equal search budget"),
        Table(header, rows, [False, False] + [True] * (len(header) - 2)),
        Para([Bold(lead_sentence(final, [r[0] for r in rows]))]),
        Para([compute_sentence(curves)]),
        Para([_protocol_text(p, penalty)]),
    ]
    if plots_dir is not None and curves:
        blocks += [Image(expected_best_plot(curves, plots_dir / "sweep-expected-best.png", run.run_id),
                         "expected best FID after k search samples, and against the search compute spent")]
    if plots_dir is not None and len(search):
        blocks.append(Image(strip_plot(search, models, plots_dir / "sweep-fid.png", run.run_id),
                            "FID per search sample"))
    blocks += _settings_section(p, state, models)
    blocks += _search_section(search, models, p["samples"], curves, penalty)
    blocks += _final_section(final, state, models)
    stability = stability_frame(frame, models)
    blocks += [Heading(3, "Stability"),
               Table(STABILITY_HEADER, stability_rows(stability), [False] + [True] * 8),
               Para([STABILITY_NOTE])]
    blocks += _compute_section(frame, models)
    if default_runs:
        blocks += _ranking_section(final, models, default_runs)
    return blocks


def _protocol_text(p: dict, penalty: float) -> str:
    return (f"K = {p['samples']}{_added(p)} settings drawn per variant ({p['sampler']} sampler, sweep seed "
            f"{p['seed']}), each trained once (seed {p['trial_seed']}) under the same budget; then each "
            f"variant's best setting by FID retrained with S = {p['final_seeds']} fresh seeds (Lucic et al. "
            "2018). Final FID: the mean over those seeds, with a 95% interval (log-normal, never below "
            "zero). E[best FID] after K: the expected best of K settings drawn at random from the ones tried "
            "(Dodge et al. 2019). Failed and diverged samples are data: they count as the worst finite FID "
            f"of the sweep ({fmt_fid(penalty)}).")


def _settings_section(p: dict, state: dict, models: list[str]) -> list:
    fields = [[m, [Code(", ".join(f"{f} ~ {t}" for f, t in p["spaces"][m].items()))]] for m in models]
    settings = [[sid, [Code(setting_text(options))]] for _, sid, options in settings_rows(state)]
    return [Heading(3, "Protocol and settings"), Table(["variant", "searched fields"], fields),
            Table(["setting", "values"], settings),
            Para(["#best: the setting the search chose for the variant (its final seeds ran it too); #k: the "
                  "k-th search sample. Values to 3 significant digits; sweep.csv has them in full."])]


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
        totals = [f"{np.nansum(mine[key].to_numpy(float)):.3g}" for key, _ in COMPUTE]
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


def _search_section(search: pd.DataFrame, models: list[str], k_max: int, curves: dict,
                    penalty: float) -> list:
    table = []
    for model in models:
        mine = search[search["model"] == model]
        statuses = mine["status"].tolist()
        n, finite = len(mine), mine["fid"].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        diverged = statuses.count("diverged")
        failed = sum(s not in ("completed", "diverged") for s in statuses)
        curve = curves[model].mean if model in curves else np.array([])
        table.append([model, str(n), f"{diverged}/{n}" if n else "-", f"{failed}/{n}" if n else "-",
                      fmt_fid(np.median(finite)) if len(finite) else "-",
                      fmt_fid(finite.min()) if len(finite) else "-",
                      fmt_fid(curve[0]) if len(curve) else "-", fmt_fid(curve[-1]) if len(curve) else "-"])
    return [Heading(3, "Search: FID over the samples"),
            Table(["variant", "samples", "diverged", "failed", "median FID", "best FID",
                   "E[best] k=1", f"E[best] k={k_max}"], table, [False] + [True] * 7),
            Para(["E[best] k: the expected best (lowest) FID of k settings drawn at random from the "
                  "ones tried (Dodge et al. 2019), failed or diverged samples counted as the worst finite "
                  f"FID of the sweep ({fmt_fid(penalty)}) so that the curve stays finite. k = 1 is the mean "
                  "over the samples: a variant's quality at a random setting; the curve's fall to k = K "
                  "says how much tuning buys. Compare variants at the same k, or at the same compute."])]


def _final_section(final: pd.DataFrame, state: dict, models: list[str]) -> list:
    objective = state["protocol"].get("metric", "fid")  # --objective: what chose each best setting
    rows = []
    ids = setting_ids(state)
    for model in models:
        chosen = state["chosen"].get(model)
        if not chosen or chosen.get("trial") is None:
            rows.append([model, (chosen or {}).get("reason", "not chosen yet"), "-", "-", "-"])
            continue
        mine = final[final["model"] == model]
        fid, mse = fid_interval(mine["fid"]), bounded_interval(mine["recon_mse"], minimum=0.0)
        rows.append([model, f"{ids.get(chosen['trial'], model)} (search sample {chosen_index(state, model)})",
                     fmt_fid(chosen["value"]),
                     interval_text(fid), interval_text(mse, ".4f") if mse.n else "-"])
    return [Heading(3, "Final: the best setting over fresh seeds"),
            Table(["variant", "best setting", "search FID" if objective == "fid" else f"search {objective}",
                   "final FID mean [95% CI] (n)",
                   "final recon MSE mean [95% CI]"], rows, [False, False, True, True, True]),
            Para(["The search FID of the chosen setting is biased low (it is the minimum of K noisy "
                  "values); the final phase's fresh seeds are the fair estimate of that setting."])]


def chosen_index(state: dict, model: str) -> str:
    """The search sample number (1-based) of the variant's chosen setting."""
    trial = state["chosen"][model]["trial"]
    return next((str(s["index"] + 1) for s in state["slots"] if s["trial"] == trial), "?")


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
    rows = [[f"{m} (default)", fmt_fid(at_defaults.get(m)),
             str(order_d.index(m) + 1) if m in at_defaults else "-",
             fmt_fid(searched.get(m)),
             str(order_s.index(m) + 1) if m in searched else "-"] for m in models]
    return [Heading(3, "Ranking at the defaults and after search"),
            Para(["At the defaults: mean final FID of the default-setting trials in ",
                  ", ".join(r.run_id for r in default_runs), ". After search: the final phase's mean."]),
            Table(["variant", "FID at defaults", "rank", "FID after search", "rank"], rows,
                  [False, True, True, True, True]),
            Para([ranking_change(final, at_default, order_d, order_s)])]


def ranking_change(final: pd.DataFrame, at_default: pd.DataFrame, order_d: list[str],
                   order_s: list[str]) -> str:
    """Whether the order of the means changes after search, worded by what a test can say: a
    swapped pair counts only if it is significant at both stages (Welch, 2+ seeds each)."""
    shared_d = [m for m in order_d if m in order_s]
    shared_s = [m for m in order_s if m in order_d]
    if shared_d == shared_s:
        return "The order of the means is the same at the defaults and after search."
    swapped = [(a, b) for i, a in enumerate(shared_s) for b in shared_s[i + 1:]
               if shared_d.index(a) > shared_d.index(b)]
    finals = at_default[at_default["eval_point"] == "final"]
    tested = []
    for a, b in swapped:
        p_after = welch_p(final[final["model"] == a]["fid"], final[final["model"] == b]["fid"])
        p_before = welch_p(finals[finals["variant"] == a]["fid"], finals[finals["variant"] == b]["fid"])
        tested.append((a, b, p_before, p_after))
    pairs = ", ".join(f"{a} / {b}" for a, b, _, _ in tested)
    significant = [(a, b) for a, b, pb, pa in tested if pb < SIGNIFICANT_BELOW and pa < SIGNIFICANT_BELOW]
    if significant:
        return (f"The order changes after search ({pairs}); significant at both stages (Welch, p < 0.05): "
                + ", ".join(f"{a} / {b}" for a, b in significant) + ".")
    if any(math.isfinite(pb) and math.isfinite(pa) for _, _, pb, pa in tested):
        return (f"The order of the means changes after search ({pairs}), but no swapped pair differs "
                "significantly at both stages (Welch, p < 0.05): read it as a tie, not a change.")
    return (f"The order of the means changes after search ({pairs}); with one seed at the defaults or in the "
            "final phase no test is possible: read it as unresolved, not as a change.")


def strip_plot(search: pd.DataFrame, models: list[str], path: Path, run_id: str) -> Path:
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


def expected_best_plot(curves: dict, path: Path, run_id: str) -> Path:
    """Expected best FID against k, and against the search compute it cost (training seconds,
    FLOPs): a variant whose step costs 10x is compared at equal cost on the right."""
    figure = new_figure(13.0, 4.0)
    axes = figure.subplots(1, 3)
    colours = palette(list(curves))
    budget = equal_compute(curves)
    costs = (("k: settings tried (random search)", None),
             ("search compute: training seconds", "seconds_per_sample"),
             ("search compute: training FLOPs", "flops_per_sample"))
    for ax, (label, cost) in zip(axes, costs, strict=True):
        for model, curve in curves.items():
            k = np.arange(1, len(curve.mean) + 1)
            x = k if cost is None else k * getattr(curve, cost)
            if not np.isfinite(x).all() or (cost and getattr(curve, cost) <= 0):
                continue
            ax.plot(x, curve.mean, color=colours[model], label=plain(model), marker="o", markersize=3)
            ax.fill_between(x, curve.low, curve.high, color=colours[model], alpha=0.15)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
        if cost is not None:
            ax.set_xscale("log")
        if cost == "seconds_per_sample" and math.isfinite(budget):
            line = ax.axvline(budget, color="black", linestyle="--", linewidth=0.8,
                              label="equal compute (answer table)")
            ax.legend(handles=[line], fontsize=7, loc="upper right")
    axes[0].set_ylabel("expected best FID")
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=8, ncol=2)
    figure.suptitle(plain(f"{run_id}: expected best FID (95% bootstrap band), at equal trials and at "
                          "equal compute"), fontsize=9)
    return save_figure(figure, path)
