"""``build_report``: run folders in; report.md, report.html, results.csv/.parquet and plots out.

Everything comes from the rows and files already in the run folders: no model, no GPU and
no Inception weights are needed.
"""

from __future__ import annotations

import datetime
import io
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from bench.report import plots as figures
from bench.report.load import Group, group_runs, load_runs
from bench.report.render import Bold, Bullets, Code, Heading, Image, Para, Table, to_html, to_markdown
from bench.report.stats import (
    CI_METHOD,
    METRICS,
    TEST_METHOD,
    Rank,
    final_rows,
    rank_by_fid,
    summarize,
    variants,
)

SMALL_N = 10_000  # as bench.evaluation.SMALL_N (not imported: that would load the metrics stack)
FIRST_COLUMNS = ["comparison", "run_id", "variant", "model", "family", "seed", "eval_point", "status"]


def fmt(value) -> str:
    """A number for a table: n/a when missing, about 4 significant digits otherwise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1_000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.4g}"


def fmt_interval(mean, low, high, n: int, seeds: int | None = None) -> str:
    if n == 0:
        return "n/a"
    if n == 1:
        return f"{fmt(mean)} (CI n/a: 1 seed)"
    text = f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"
    return text + (f" (n={n})" if seeds is not None and n < seeds else "")


def fmt_p(p: float, prefix: str = "") -> str:
    """``0.012``, ``< 0.001`` (``p = 0.012``, ``p < 0.001`` with ``prefix="p"``)."""
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return f"{prefix} < 0.001".strip()
    return f"{prefix} = {p:.3f}" if prefix else f"{p:.3f}"


def _int(value) -> int | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return int(x) if math.isfinite(x) else None


def _get(d, key):
    return d.get(key) if isinstance(d, dict) else None


def _get_float(d, key) -> float:
    try:
        x = float(_get(d, key))
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _unique(series: pd.Series) -> list[str]:
    return list(dict.fromkeys(str(v) for v in series.dropna() if str(v) != ""))


# -- the sections --------------------------------------------------------------------------
def _title(group: Group) -> str:
    p = group.protocol
    return f"{p.get('dataset', 'n/a')}, budget {p.get('budget', 'n/a')}, N={p.get('N (generated images)')}"


def _context(group: Group) -> str:
    frame, p = group.frame, group.protocol
    budget = _unique(frame["budget_text"]) or _unique(frame["budget"]) or ["n/a"]
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
    samples = _int(next(iter(frame["eval_samples"].dropna()), None)) if not frame.empty else None
    ref = next(iter(_unique(frame["eval_ref"])), None)
    ref_n = _int(next(iter(frame["ref_samples"].dropna()), None)) if not frame.empty else None
    sources = _unique(frame["dataset_source"]) or [str(m.get("dataset", {}).get("source")) for m in manifests]
    seeds = sorted({s for s in (_int(v) for v in frame["seed"]) if s is not None})
    rows = [
        ["runs", ", ".join(r.run_id for r in runs)],
        ["dataset", p.get("dataset", "n/a")],
        ["dataset source", "; ".join(sources)],
        ["dataset content hash", p.get("dataset content hash", "n/a")],
        ["training images", ", ".join(f"{n:,}" for n in {_int(v) for v in frame["dataset_num_images"]}
                                      if n is not None) or "n/a"],
        ["image shape", ", ".join(_unique(frame["image_shape"])) or "n/a"],
        ["budget (per trial)", p.get("budget", "n/a")],
        ["device", ", ".join(_unique(frame["device"])) or "n/a"],
        ["evaluation", _evaluation(samples, ref, ref_n)],
        ["seeds", ", ".join(str(s) for s in seeds) or "n/a"],
        ["variants", ", ".join(variants(frame)) or "none"],
    ]
    for name in ("torch", "torchvision", "torch_fidelity", "bench", "python"):
        if f"version_{name}" in frame.columns:
            rows.append([f"{name} version", ", ".join(_unique(frame[f"version_{name}"])) or "n/a"])
    peaks = {f"{fmt(_get_float(m, 'peak_flops') / 1e12)} TFLOP/s ({_get(m, 'peak_flops_dtype')})"
             for m in (r.manifest.get("device") for r in runs) if _get_float(m, "peak_flops") > 0}
    if peaks:
        rows.append(["MFU denominator (measured matrix-product peak)", ", ".join(sorted(peaks))])
    rows.append(["git commit", ", ".join(_unique(frame["git_commit"])) or "n/a"])
    # What a reader needs first: how to reproduce it and what it ran on.
    blocks: list = [Heading(3, "Setup")]
    commands = [str(m.get("command_line")) for m in manifests if m.get("command_line")]
    if commands:
        blocks.append(Para(["Command line" + ("s" if len(commands) > 1 else "") + ": "]
                           + [part for c in commands for part in (Code(c), " ")]))
    machines = list(dict.fromkeys(str(_get(m.get("device"), "machine")) for m in manifests
                                  if _get(m.get("device"), "machine")))
    if machines:
        blocks.append(Para(["Machine" + ("s" if len(machines) > 1 else "") + ": " + " | ".join(machines)]))
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


def summary_section(summary: pd.DataFrame, frame: pd.DataFrame) -> list:
    blocks: list = [Heading(3, "Summary across seeds: mean [95% CI]")]
    names = list(dict.fromkeys(summary["variant"]))
    if not names:
        return blocks + [Para("No rows yet.")]
    header = ["metric"]
    for name in names:
        seeds = int(summary.loc[summary["variant"] == name, "seeds"].iloc[0])
        header.append(f"{name} ({seeds} seed{'s' * (seeds != 1)})")
    rows = []
    for metric in METRICS:
        cells = summary[summary["metric"] == metric.key].set_index("variant")
        arrow = {"lower": " ↓", "higher": " ↑"}.get(metric.better, "")
        row = [metric.label + arrow]
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


def failures_section(frame: pd.DataFrame) -> list:
    blocks: list = [Heading(3, "Trials that did not complete")]
    final = frame[frame["eval_point"] == "final"] if not frame.empty else frame
    bad = final[final["status"] != "completed"] if not final.empty else final
    if final.empty:
        return blocks + [Para("No trial has finished yet (no final row).")]
    if bad.empty:
        return blocks + [Para(f"None: all {len(final)} trials with a final row completed.")]
    rows = [[str(r["variant"]), str(_int(r["seed"])), str(r["run_id"]), str(r["status"]),
             fmt(r["step"]), str(r["message"]) if isinstance(r["message"], str) else ""]
            for _, r in bad.iterrows()]
    blocks.append(Table(["variant", "seed", "run", "status", "step", "message"], rows,
                        [False, True, False, False, True, False]))
    blocks.append(Para("These trials are left out of the summary and the ranking."))
    return blocks


def plots_section(group: Group, plots_dir: Path, notes: list[str]) -> list:
    blocks: list = [Heading(3, "Plots")]
    frame, context = group.frame, _context(group)
    suffix = "" if group.number == 1 else f"-{group.number}"
    drawings = [
        ("FID versus training wall-clock time per variant: mean across seeds (line), each seed (dots), "
         "95% t-interval band where there are 2+ seeds",
         lambda p: figures.fid_vs_time(frame, context, p, notes), "fid-vs-time"),
        ("Training loss curves per variant (each seed one line)",
         lambda p: figures.loss_curves(frame, context, p, notes), "losses"),
        ("Training and sampling throughput per variant (mean, 95% t-interval error bars with 2+ seeds)",
         lambda p: figures.throughput(frame, context, p, notes), "throughput"),
        ("An 8x8 grid of samples per variant (first seed)",
         lambda p: figures.image_grids(frame, "samples.png", "Samples", context, p, notes), "samples"),
        ("Encoder variants: test originals above their reconstructions (first seed)",
         lambda p: figures.image_grids(frame, "reconstructions.png", "Reconstructions", context, p, notes,
                                     quiet=True), "reconstructions"),
    ]
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
    summary = summarize(frame)
    notes = list(group.notes)
    blocks += setup_section(group)
    blocks += ranking_section(rank_by_fid(frame) if not frame.empty else [])
    blocks += summary_section(summary, frame)
    blocks += failures_section(frame)
    if plots_dir is not None and not frame.empty:
        blocks += plots_section(group, plots_dir, notes)
    if final_rows(frame).empty and not frame.empty:
        notes.append("no trial has completed yet")
    if notes:
        blocks += [Heading(3, "Notes"), Bullets([[n] for n in notes])]
    return blocks, summary.assign(comparison=group.number)


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception:  # a column with values of several types: store it as text
        buffer = io.BytesIO()
        def as_text(v):
            return v if v is None or isinstance(v, float) and math.isnan(v) else str(v)

        text = {c: frame[c].map(as_text) for c in frame.columns if frame[c].dtype == object}
        frame.assign(**text).to_parquet(buffer, index=False)
    return buffer.getvalue()


def build_report(run_dirs, out_dir=None, plots: bool = True) -> dict[str, Path]:
    """Build the report of one or more run folders; returns the paths written.

    Outputs go to ``out_dir`` (default: the first run folder): ``report.md``, ``report.html``,
    ``results.csv``, ``results.parquet`` (the long-form rows of every run given),
    ``summary.csv`` (mean and 95% CI per comparison x variant x metric) and ``plots/*.png``.
    """
    runs, notes = load_runs([Path(d) for d in run_dirs])
    groups, rows = group_runs(runs)
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
    if notes:
        blocks += [Heading(2, "Warnings"), Bullets([[n] for n in notes])]
    summaries = []
    for group in groups:
        group_part, summary = group_blocks(group, plots_dir if plots else None, several)
        blocks += group_part
        summaries.append(summary)

    ordered = [c for c in FIRST_COLUMNS if c in rows.columns]
    rows = rows[ordered + [c for c in rows.columns if c not in ordered]]
    paths = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "csv": out / "results.csv",
        "parquet": out / "results.parquet",
        "summary": out / "summary.csv",
    }
    _write_bytes(paths["csv"], rows.to_csv(index=False).encode())
    _write_bytes(paths["parquet"], _parquet_bytes(rows))
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["comparison"] + [c for c in summary.columns if c != "comparison"]]
    _write_bytes(paths["summary"], summary.to_csv(index=False).encode())
    _write_bytes(paths["markdown"], to_markdown(blocks, out).encode())
    _write_bytes(paths["html"], to_html(blocks, title).encode())
    if plots and plots_dir.is_dir():
        paths["plots"] = plots_dir
    return paths
