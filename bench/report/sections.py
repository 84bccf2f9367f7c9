"""The report's sections, as document blocks (``render``): for each comparison its setup (with
the run's estimated and actual wall time), the FID ranking, the summary table (one line per
summary column of the column table), each trial's best FID so far, the trials that did not
complete, and the plots; ``group_blocks`` puts one comparison together.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.report import plots as figures
from bench.report.best import has_progress, trial_bests
from bench.report.comparable import Group
from bench.report.format import dig, dig_float, fmt, fmt_interval, fmt_p, to_int, unique
from bench.report.render import Bold, Bullets, Code, Heading, Image, Para, Table
from bench.report.stats import (
    CI_METHOD,
    TEST_METHOD,
    Rank,
    fid_interval,
    final_rows,
    rank_agreement,
    rank_by_fid,
    summarize,
    variants,
)
from bench.report.timing import timing_text
from bench.store.columns import Column
from bench.store.layout import (
    COPYING_FILE,
    ENCODED_LATENTS_FILE,
    LATENTS_FILE,
    RECONSTRUCTIONS_FILE,
    SAMPLES_FILE,
)

SMALL_N = 10_000  # as bench.evaluation.SMALL_N (not imported: that would load the metrics stack)
ARROWS = {"lower": " ↓", "higher": " ↑"}


def _title(group: Group) -> str:
    p = group.protocol
    return f"{p.get('dataset', 'n/a')}, budget {p.get('budget', 'n/a')}, N={p.get('N (generated images)')}"


def _context(group: Group) -> str:
    frame, p = group.frame, group.protocol
    budget = unique(frame["budget_text"]) or unique(frame["budget"]) or ["n/a"]
    return f"{p.get('dataset', 'n/a')}, budget {budget[0]}, N={p.get('N (generated images)')}"


def _reference(ref: str | None, ref_n: int | None, dataset: str | None) -> str:
    """``2,000 images of the test split of cifar10``, or ``2,000 images from /a/folder``."""
    count = f"{ref_n:,} images" if ref_n else "all images"
    if ref and ("/" in ref or "\\" in ref or "." in ref):  # --eval-ref given as a folder or .npz
        return f"{count} from {ref}"
    return f"{count} of the {ref} split" + (f" of {dataset}" if dataset else "")


def _evaluation(samples: int | None, ref: str | None, ref_n: int | None) -> str:
    if not samples:
        return "none (no sample metrics: --eval-samples 0)"
    against = _reference(ref, ref_n, None)
    return f"{samples:,} generated images against {against}"


def setup_section(group: Group) -> list:
    frame = group.frame
    runs = group.runs
    manifests = [r.manifest for r in runs]
    p = group.protocol
    samples = to_int(next(iter(frame["eval_samples"].dropna()), None)) if not frame.empty else None
    ref = next(iter(unique(frame["eval_ref"])), None)
    ref_n = to_int(next(iter(frame["ref_samples"].dropna()), None)) if not frame.empty else None
    sources = unique(frame["dataset_source"]) or [str(m.get("dataset", {}).get("source")) for m in manifests]
    seeds = sorted({s for s in (to_int(v) for v in frame["seed"]) if s is not None})
    rows = [
        ["runs", ", ".join(r.run_id for r in runs)],
        ["dataset", p.get("dataset", "n/a")],
        ["dataset source", "; ".join(sources)],
        ["dataset content hash", p.get("dataset content hash", "n/a")],
        ["training images", ", ".join(f"{n:,}" for n in {to_int(v) for v in frame["dataset_num_images"]}
                                      if n is not None) or "n/a"],
        ["image shape", ", ".join(unique(frame["image_shape"])) or "n/a"],
        ["budget (per trial)", p.get("budget", "n/a")],
        ["device", ", ".join(unique(frame["device"])) or "n/a"],
        ["evaluation", _evaluation(samples, ref, ref_n)],
        ["seeds", ", ".join(str(s) for s in seeds) or "n/a"],
        ["variants", ", ".join(variants(frame)) or "none"],
    ]
    for name in ("torch", "torchvision", "torch_fidelity", "bench", "python"):
        if f"version_{name}" in frame.columns:
            rows.append([f"{name} version", ", ".join(unique(frame[f"version_{name}"])) or "n/a"])
    # with when and how it was measured: a peak measured on a busy machine makes every MFU read high
    peaks = {f"{fmt(dig_float(m, 'device', 'peak_flops') / 1e12)} TFLOP/s "
             f"({dig(m, 'device', 'peak_flops_dtype')}; "
             f"{dig(m, 'device', 'peak_flops_source', default='when: not recorded')})"
             for m in manifests if dig_float(m, "device", "peak_flops") > 0}
    if peaks:
        rows.append(["MFU denominator (measured matrix-product peak)", ", ".join(sorted(peaks))])
    rows.append(["git commit", ", ".join(unique(frame["git_commit"])) or "n/a"])
    # What a reader needs first: how to reproduce it and what it ran on.
    blocks: list = [Heading(3, "Setup")]
    commands = [str(m.get("command_line")) for m in manifests if m.get("command_line")]
    if commands:
        blocks.append(Para(["Command line" + ("s" if len(commands) > 1 else "") + ": "]
                           + [part for c in commands for part in (Code(c), " ")]))
    machines = list(dict.fromkeys(str(dig(m, "device", "machine")) for m in manifests
                                  if dig(m, "device", "machine")))
    if machines:
        blocks.append(Para(["Machine" + ("s" if len(machines) > 1 else "") + ": " + " | ".join(machines)]))
    timings = [(r.run_id, text) for r in runs if (text := timing_text(r.manifest))]
    if len(timings) == 1 and len(runs) == 1:
        blocks.append(Para(timings[0][1]))
    elif timings:
        blocks.append(Bullets([[f"{run_id}: {text}"] for run_id, text in timings]))
    blocks.append(Table(["", "value"], [[a, Code(b) if a == "git commit" else b] for a, b in rows]))
    if samples:
        small = any(bool(v) for v in frame["small_n"].dropna()) if "small_n" in frame else False
        small = small or samples < SMALL_N
        reference = (f"The reference is {_reference(ref, ref_n, p.get('dataset'))}; "
                     f"training data: {'; '.join(sources)}.")
        if small:
            flag = f"Small N: FID from N = {samples:,} generated images (below {SMALL_N:,}). "
            blocks.append(Para([Bold(flag),
                                "FID is biased upward at small N and is only comparable between runs at the "
                                "same N; FID-infinity (FID extrapolated to infinitely many samples) is given "
                                "alongside, and is the fairer number at this N. ", reference]))
        else:
            blocks.append(Para([f"FID from N = {samples:,} generated images; FID-infinity (extrapolated to "
                                "infinitely many samples) is given alongside. ", reference]))
    else:
        blocks.append(Para("No sample-quality metrics in these rows (the run used --eval-samples 0): "
                           "FID, KID and precision/recall are n/a."))
    return blocks


def ranking_section(ranks: list[Rank]) -> list:
    blocks: list = [Heading(3, "Ranking by FID (lower is better)")]
    if not ranks:
        return blocks + [Para("No completed trial has an FID, so there is nothing to rank.")]
    best = ranks[0]
    if len(ranks) == 1:
        blocks.append(Para(["Only ", Bold(best.variant), f" has an FID ({fmt(best.fid.mean)}); "
                            "there is nothing to rank it against."]))
    else:
        second, p_text = ranks[1], fmt_p(best.p_value, "p")
        lead = ["Best by FID: ", Bold(best.variant),
                f" (mean {fmt(best.fid.mean)}, {best.fid.n} seed{'s' * (best.fid.n != 1)}). "]
        if best.significant:
            lead += ["Its lead over ", Bold(second.variant), f" ({fmt(second.fid.mean)}) ",
                     Bold("is significant at 95%"), f" (Welch's t-test, two-sided, {p_text})."]
        elif best.significant is False:
            lead += ["Its lead over ", Bold(second.variant), f" ({fmt(second.fid.mean)}) ",
                     Bold("is not significant at 95%"), f" (Welch's t-test, two-sided, {p_text}): "
                     "on this evidence the two are tied, and the ordering may be noise."]
        elif best.fid.n < 2 or second.fid.n < 2:
            lead += ["Whether its lead over ", Bold(second.variant), f" ({fmt(second.fid.mean)}) is real ",
                     Bold("cannot be tested"), f": Welch's t-test needs at least 2 seeds of each variant "
                     f"(these have {best.fid.n} and {second.fid.n}). Do not read this ordering as a win; "
                     "run more seeds (--seeds 3 or more)."]
        else:
            lead += ["Whether its lead over ", Bold(second.variant), f" ({fmt(second.fid.mean)}) is real ",
                     Bold("cannot be tested"), " (no spread across seeds, so Welch's t-test is undefined)."]
        blocks.append(Para(lead))
    rows = []
    for i, rank in enumerate(ranks, start=1):
        if rank.next_variant is None:
            verdict = "—"
        elif rank.significant is None:
            few = min(rank.fid.n, ranks[i].fid.n) < 2
            verdict = "cannot tell (needs 2+ seeds each)" if few else "cannot tell"
        else:
            verdict = "yes" if rank.significant else "no"
        rows.append([str(i), rank.variant, rank.family, str(rank.fid.n),
                     fmt_interval(rank.fid.mean, rank.fid.low, rank.fid.high, rank.fid.n),
                     "—" if rank.next_variant is None else f"{fmt(rank.lead)} over {rank.next_variant}",
                     fmt_p(rank.p_value) if rank.next_variant else "—", verdict])
    blocks.append(Table(["rank", "variant", "family", "seeds", "FID mean [95% CI]", "lead over next",
                         "Welch p vs next", "lead significant at 95%"], rows,
                        [True, False, False, True, True, False, True, False]))
    blocks.append(Para(TEST_METHOD))
    return blocks


def _ranked_against_fid(column: Column) -> bool:
    """Inception Score and each extractor's Fréchet distance (not its FD-infinity)."""
    return column.key == "inception_score_mean" or (column.key.startswith("fd_")
                                                    and not column.key.startswith("fd_infinity_"))


def other_rankings_section(frame: pd.DataFrame, columns: list[Column]) -> list:
    """The variants ranked by Inception Score and by each other extractor's FD, and whether each
    ranking agrees with FID's (Kendall's tau-b): where they differ, the report says so."""
    agreements = [a for a in (rank_agreement(frame, c) for c in columns if _ranked_against_fid(c)) if a]
    if not agreements:
        return []
    blocks: list = [Heading(3, "Other rankings: Inception Score and other feature extractors")]
    for a in agreements:
        better = "higher" if a.column.better == "higher" else "lower"
        order = ", ".join(f"{v} ({fmt(a.means[v])})" for v in a.order)
        text: list = [f"By {a.column.label} ({better} is better), best first: {order}. "]
        if a.same_order:
            text.append("The same order as by FID.")
        else:
            tau = "undefined (a tie)" if not math.isfinite(a.tau) else f"{a.tau:.2f}"
            text += [Bold("This ranking differs from FID's"), f" ({', '.join(a.fid_order)}): Kendall's "
                     f"tau-b = {tau} over {len(a.order)} variants ({fmt_p(a.p, 'p')}; 1 is the same order, "
                     "-1 the reverse)."]
        blocks.append(Para(text))
    return blocks


def summary_section(summary: pd.DataFrame, columns: list[Column]) -> list:
    """One line per summary column of the table (``columns``), one cell per variant."""
    blocks: list = [Heading(3, "Summary across seeds: mean [95% CI]")]
    names = list(dict.fromkeys(summary["variant"]))
    if not names:
        return blocks + [Para("No rows yet.")]
    header = ["metric"]
    for name in names:
        seeds = int(summary.loc[summary["variant"] == name, "seeds"].iloc[0])
        header.append(f"{name} ({seeds} seed{'s' * (seeds != 1)})")
    rows = []
    for column in columns:
        if not column.summary:
            continue
        cells = summary[summary["column"] == column.key].set_index("variant")
        row = [column.title + ARROWS.get(column.better, "")]
        for name in names:
            c = cells.loc[name]
            row.append(fmt_interval(c["mean"], c["ci95_low"], c["ci95_high"], int(c["n"]), int(c["seeds"])))
        rows.append(row)
    families = [str(summary.loc[summary["variant"] == n, "family"].iloc[0]) for n in names]
    rows.insert(0, ["family", *families])
    blocks.append(Table(header, rows, [False] + [True] * len(names)))
    blocks.append(Para([CI_METHOD, " Only completed trials at the final evaluation point count; ",
                        "n/a means no completed trial has that value (the variant has no encoder, or the "
                        "column is not produced yet). ↓ lower is better, ↑ higher is better. Budget used is "
                        "the share of the per-trial budget a trial consumed."]))
    return blocks


BEST_METHOD = (
    "Each trial's lowest FID over its evaluations during training (--eval-every) and at the end (the "
    "untrained point does not count), the share of its budget it had used there, and how far its final "
    "FID is above it: GAN FIDs often reach their best before the budget runs out and then get worse. "
    "The per-variant lines are across completed trials (mean [95% t-interval]). The lowest of several "
    "noisy evaluations is biased low (it is picked by the same noise it is measured with): compare best "
    "FIDs with each other, not with final FIDs."
)


def _percent(fraction) -> str:
    text = fmt(100 * fraction)
    return text if text == "n/a" else f"{text}%"


def best_section(frame: pd.DataFrame) -> list:
    """Each trial's best FID so far beside its final FID, and a line per variant; nothing when no
    trial was evaluated more than once (then the final FID is the best)."""
    bests = trial_bests(frame)
    if not has_progress(bests):
        return []
    lines = []
    for name in variants(bests):
        rows = bests[(bests["variant"] == name) & (bests["status"] == "completed")]
        if rows.empty:
            continue
        best, final = fid_interval(rows["best_fid"]), fid_interval(rows["final_fid"])
        gap = rows["final_fid"] - rows["best_fid"]
        worse = gap[gap > 0]
        text = (f"{name}: best FID {fmt_interval(best.mean, best.low, best.high, best.n)}, at "
                f"{_percent(rows['best_at'].mean())} of the budget on average; final FID "
                f"{fmt_interval(final.mean, final.low, final.high, final.n)}; the final FID is above the "
                f"best in {len(worse)} of {len(rows)} seed{'s' * (len(rows) != 1)}")
        lines.append([text + (f" (by {fmt(worse.mean())} on average)." if len(worse) else ".")])
    table = []
    for _, r in bests.iterrows():
        gap = r["final_fid"] - r["best_fid"]
        if pd.isna(r["final_fid"]):
            above = f"n/a ({r['status']})"
        elif gap > 0:
            above = f"+{fmt(gap)} (+{fmt(100 * gap / r['best_fid'])}%)"
        else:
            above = "no: the final FID is the best"
        at = _percent(r["best_at"]) + (" (final)" if r["best_point"] == "final" else "")
        table.append([str(r["variant"]), str(to_int(r["seed"])), str(int(r["points"])), fmt(r["final_fid"]),
                      fmt(r["best_fid"]), at, above])
    blocks: list = [Heading(3, "Best FID so far (lower is better)")]
    if lines:
        blocks.append(Bullets(lines))
    blocks.append(Table(["variant", "seed", "evaluations", "final FID", "best FID", "at budget used",
                         "final above best by"], table, [False, True, True, True, True, True, False]))
    return blocks + [Para(BEST_METHOD)]


def failures_section(frame: pd.DataFrame) -> list:
    blocks: list = [Heading(3, "Trials that did not complete")]
    final = frame[frame["eval_point"] == "final"] if not frame.empty else frame
    bad = final[final["status"] != "completed"] if not final.empty else final
    if final.empty:
        return blocks + [Para("No trial has finished yet (no final row).")]
    if bad.empty:
        return blocks + [Para(f"None: all {len(final)} trials with a final row completed.")]
    rows = [[str(r["variant"]), str(to_int(r["seed"])), str(r["run_id"]), str(r["status"]),
             fmt(r["step"]), str(r["message"]) if isinstance(r["message"], str) else ""]
            for _, r in bad.iterrows()]
    blocks.append(Table(["variant", "seed", "run", "status", "step", "message"], rows,
                        [False, True, False, False, True, False]))
    blocks.append(Para("These trials are left out of the summary and the ranking."))
    return blocks


def _charts_without_a_comparison(frame: pd.DataFrame) -> dict[str, str]:
    """The charts that would show a single bar or a single point here (one trial; an FID measured
    once per trial), by name, with why they are left out: the tables hold those numbers, and
    drawing them is most of a short run's report time."""
    out = {}
    if len(frame.drop_duplicates(["run_dir", "trial"])) < 2:
        out["metrics"] = out["throughput"] = ("One trial: its metrics and throughput are in the tables "
                                              "above, not drawn as single bars.")
    fids = frame[frame["fid"].notna()] if "fid" in frame.columns else frame.iloc[:0]
    if not fids.empty and fids.groupby(["run_dir", "trial"]).size().max() < 2:
        out["fid-vs-time"] = ("FID was measured once per trial, so there is no FID-versus-time "
                              "curve (--eval-every draws one).")
    return out


def plots_section(group: Group, summary: pd.DataFrame, plots_dir: Path, notes: list[str]) -> list:
    blocks: list = [Heading(3, "Plots")]
    frame, context = group.frame, _context(group)
    suffix = "" if group.number == 1 else f"-{group.number}"
    stars = "; a star marks each trial's best (lowest) FID" if has_progress(trial_bests(frame)) else ""
    drawings = [
        ("Every summary metric per variant: mean across seeds (bar), 95% t-interval error bar where "
         "there are 2+ seeds; the numbers of the summary table, each panel saying which way is better",
         lambda p: figures.metric_panels(summary, group.columns, context, p, notes), "metrics"),
        ("FID versus training wall-clock time per variant: mean across seeds (line), each seed (dots), "
         f"95% t-interval band where there are 2+ seeds{stars}",
         lambda p: figures.fid_vs_time(frame, context, p, notes), "fid-vs-time"),
        ("Training loss curves per variant (each seed one line)",
         lambda p: figures.loss_curves(frame, context, p, notes), "losses"),
        ("Training and sampling throughput per variant (mean, 95% t-interval error bars with 2+ seeds)",
         lambda p: figures.throughput(frame, context, p, notes), "throughput"),
        ("An 8x8 grid of samples per variant (first seed)",
         lambda p: figures.image_grids(frame, SAMPLES_FILE, "Samples", context, p, notes), "samples"),
        ("Encoder variants: test originals above their reconstructions (first seed)",
         lambda p: figures.image_grids(frame, RECONSTRUCTIONS_FILE, "Reconstructions", context, p, notes,
                                       quiet=True), "reconstructions"),
        ("Latent interpolations: each row decodes 10 points, left to right, along the spherical path "
         "between two draws from the prior N(0, I) (direction interpolated on the sphere, length linearly); "
         "8 pairs per variant, drawn from the trial seed (first seed)",
         lambda p: figures.image_grids(frame, LATENTS_FILE, "Latent interpolations", context, p, notes,
                                       quiet=True), "latents"),
        ("Encoder variants: each row is a test image (left), 10 decodings along the spherical path "
         "between its encoding (the posterior mean) and that of another test image, and that image "
         "(right); the same 8 pairs of test images for every variant (first seed)",
         lambda p: figures.image_grids(frame, ENCODED_LATENTS_FILE, "Interpolations between encodings",
                                       context, p, notes, quiet=True), "latents-encoded"),
        ("Data copying: the 16 generated samples closest to a training image (left of each pair) beside "
         "that training image (right), closest first, in Inception feature space (first seed)",
         lambda p: figures.image_grids(frame, COPYING_FILE, "Nearest training images", context, p, notes,
                                       quiet=True), "copying"),
    ]
    left_out = _charts_without_a_comparison(frame)
    if left_out:
        drawings = [d for d in drawings if d[2] not in left_out]
        blocks.append(Para(" ".join(dict.fromkeys(left_out.values()))))
    for caption, draw, name in drawings:
        try:
            path = draw(plots_dir / f"{name}{suffix}.png")
        except Exception as exc:  # a broken figure must not cost the tables
            notes.append(f"plot {name} failed: {type(exc).__name__}: {exc}")
            continue
        if path is not None:
            blocks.append(Image(path, caption))
    return blocks if len(blocks) > 1 else []


def group_blocks(group: Group, plots_dir: Path | None, several: bool) -> tuple[list, pd.DataFrame]:
    """One comparison's part of the report (no plots without ``plots_dir``), and its summary."""
    frame = group.frame
    anchor = f"comparison-{group.number}"
    heading = f"Comparison {group.number}: {_title(group)}" if several else f"Results: {_title(group)}"
    blocks: list = [Heading(2, heading, anchor)]
    if group.reason:
        blocks.append(Para([Bold("Not merged with comparison 1"), f" (listed separately, never averaged "
                            f"together): {group.reason}."]))
    if len(group.runs) > 1:
        blocks.append(Para(f"{len(group.runs)} runs with the same dataset, budget and evaluation protocol "
                           "are merged into this comparison."))
    summary = summarize(frame, group.columns)
    notes = list(group.notes)
    # the answer first: which variant leads and whether that is significant, then how it was run
    blocks += ranking_section(rank_by_fid(frame) if not frame.empty else [])
    blocks += other_rankings_section(frame, group.columns)
    blocks += setup_section(group)
    blocks += summary_section(summary, group.columns)
    blocks += best_section(frame)
    blocks += failures_section(frame)
    if plots_dir is not None and not frame.empty:
        blocks += plots_section(group, summary, plots_dir, notes)
    if final_rows(frame).empty and not frame.empty:
        notes.append("no trial has completed yet")
    if notes:
        blocks += [Heading(3, "Notes"), Bullets([[n] for n in notes])]
    return blocks, summary.assign(comparison=group.number)
