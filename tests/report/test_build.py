"""``bench report``: intervals, ranking, merge rules, half-written rows, self-contained HTML.

Run folders are written synthetically (manifest, metrics rows, logs, sample grids): no
training, no GPU and no Inception weights.
"""

from __future__ import annotations

import json
import math
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import lognormal_interval
from PIL import Image
from run_folders import FID, make_run, read_md
from scipy import stats

from bench.cli import main
from bench.report import ReportError, build_report
from bench.report.stats import rank_by_fid, t_interval, welch_p


# -- confidence intervals and the ranking ----------------------------------------------------
def test_t_interval_matches_scipy():
    values = [40.0, 42.5, 41.0, 47.25]
    interval = t_interval(values + [None, math.nan])  # missing values are left out
    low, high = stats.t.interval(0.95, df=3, loc=np.mean(values), scale=stats.sem(values))
    assert interval.n == 4 and interval.available
    assert interval.mean == pytest.approx(np.mean(values))
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))


def test_single_seed_interval_is_unavailable_not_zero():
    interval = t_interval([12.5])
    assert interval.n == 1 and interval.mean == 12.5 and not interval.available
    assert math.isnan(interval.low) and math.isnan(interval.high)
    assert t_interval([]).n == 0 and math.isnan(t_interval([None]).mean)


def test_summary_intervals_from_rows_match_scipy(tmp_path):
    run = make_run(tmp_path)
    build_report([run], plots=False)
    summary = pd.read_csv(run / "summary.csv")
    for model, values in FID.items():
        row = summary[(summary["variant"] == model) & (summary["metric"] == "fid")].iloc[0]
        low, high = lognormal_interval(values)  # FID cannot be negative: the log-normal interval
        assert row["n"] == 3 and row["mean"] == pytest.approx(np.mean(values))
        assert row["ci95_low"] == pytest.approx(low) and row["ci95_high"] == pytest.approx(high)
    md = read_md(run)
    gan_low, gan_high = lognormal_interval(FID["gan"])
    assert f"41.17 [{gan_low:.4g}, {gan_high:.4g}]" in md
    assert "Student t-interval" in md
    # a gan has no encoder: its reconstruction cells are n/a, the vae's are numbers
    recon = summary[summary["metric"] == "recon_mse"].set_index("variant")
    assert recon.loc["gan", "n"] == 0 and recon.loc["vae", "mean"] == pytest.approx(0.02)
    # budget used: train_seconds / 600 s
    used = summary[(summary["metric"] == "budget_used") & (summary["variant"] == "gan")].iloc[0]
    assert used["mean"] == pytest.approx(100 * np.mean([600, 601, 602]) / 600)


def test_single_seed_report_shows_interval_as_unavailable(tmp_path):
    run = make_run(tmp_path, seeds=(0,))
    build_report([run], plots=False)
    md = read_md(run)
    assert "40 (CI n/a: 1 seed)" in md and "[40, 40]" not in md
    assert "cannot be tested" in md and "needs at least 2 seeds" in md
    summary = pd.read_csv(run / "summary.csv")
    assert summary.loc[summary["metric"] == "fid", "ci95_low"].isna().all()


def test_ranking_says_whether_the_lead_is_significant(tmp_path):
    run = make_run(tmp_path)
    frame = pd.read_csv(build_report([run], plots=False)["csv"])
    ranks = rank_by_fid(frame)
    assert [r.variant for r in ranks] == ["gan", "vae"]
    expected = stats.ttest_ind(FID["gan"], FID["vae"], equal_var=False).pvalue
    assert ranks[0].p_value == pytest.approx(expected) and ranks[0].significant is True
    assert "is significant at 95%" in read_md(run)
    assert welch_p([1.0], [2.0, 3.0]) != welch_p([1.0], [2.0, 3.0])  # NaN: cannot test with one seed

    noisy = make_run(tmp_path / "noisy", fid={"gan": [40.0, 60.0, 50.0], "vae": [45.0, 52.0, 61.0]})
    build_report([noisy], plots=False)
    md = read_md(noisy)
    assert "is not significant at 95%" in md and "tied" in md


def test_missing_columns_show_as_unavailable_and_new_ones_are_used(tmp_path):
    run = make_run(tmp_path, columns={"mfu": 0.31, "params_total": 3_500_000})
    (run / "metrics.jsonl").write_text(
        (run / "metrics.jsonl").read_text()
        + json.dumps({"model": "gan", "seed": 9, "eval_point": "final", "status": "completed"}) + "\n"
    )
    build_report([run], plots=False)
    summary = pd.read_csv(run / "summary.csv").set_index(["variant", "metric"])
    assert summary.loc[("gan", "mfu"), "mean"] == pytest.approx(31.0)  # shown in %
    assert summary.loc[("gan", "params"), "mean"] == pytest.approx(3.5)
    assert summary.loc[("gan", "peak_memory"), "n"] == 0
    assert summary.loc[("gan", "fid"), "n"] == 3 and summary.loc[("gan", "fid"), "seeds"] == 4
    md = read_md(run)
    assert "peak memory (MiB)" in md and "| n/a |" in md and " (n=3)" in md


def test_failed_and_diverged_trials_are_listed_and_left_out(tmp_path):
    failed = {"run_id": "r", "model": "gan", "family": "gan", "seed": 7, "eval_point": "final",
              "status": "failed", "message": "RuntimeError: boom | <b>", "step": 3}
    diverged = {**failed, "seed": 8, "status": "diverged", "message": "loss_g is NaN at step 12", "step": 12}
    run = make_run(tmp_path, extra_rows=[failed, diverged])
    build_report([run], plots=False)
    md = read_md(run)
    section = md.split("### Trials that did not complete")[1]
    assert "RuntimeError: boom | &lt;b&gt;" in section and "loss_g is NaN at step 12" in section
    summary = pd.read_csv(run / "summary.csv")
    assert summary.loc[(summary["variant"] == "gan") & (summary["metric"] == "fid"), "n"].item() == 3


# -- merging and refusing to merge -------------------------------------------------------------
def test_runs_with_one_protocol_merge_into_one_comparison(tmp_path):
    a = make_run(tmp_path, "00001-a", seeds=(0, 1), fid={"gan": [40.0, 42.0], "vae": [90.0, 91.0]})
    b = make_run(tmp_path, "00002-b", seeds=(2, 3), fid={"gan": [44.0, 46.0], "vae": [92.0, 99.0]})
    out = tmp_path / "merged"
    paths = build_report([a, b], out_dir=out, plots=False)
    assert paths["markdown"] == out / "report.md" and not (a / "report.md").exists()
    summary = pd.read_csv(paths["summary"])
    assert set(summary["comparison"]) == {1}
    gan = summary[(summary["variant"] == "gan") & (summary["metric"] == "fid")].iloc[0]
    assert gan["n"] == 4 and gan["mean"] == pytest.approx(43.0)
    rows = pd.read_csv(paths["csv"])
    assert set(rows["run_id"]) == {"00001-a", "00002-b"} and len(rows) == 2 * 4 * 2
    md = read_md(out)
    assert "2 runs with the same dataset, budget and evaluation protocol are merged" in md
    assert "separate comparisons" not in md


@pytest.mark.parametrize("change, reason", [
    ({"budget": ("5m", "seconds", 300.0)},
     "budget: 5m (300 seconds) here, 10m (600 seconds) in comparison 1"),
    ({"content_hash": "other"}, "dataset content hash: other here, abc123 in comparison 1"),
    ({"eval_samples": 10_000}, "N (generated images): 10,000 here, 2,000 in comparison 1"),
    ({"eval_ref": "train"}, "reference split: train here, test in comparison 1"),
    ({"ref_samples": 5000}, "reference images: 5,000 here, 2,000 in comparison 1"),
    ({"device": "NVIDIA H100"}, "device (a wall-clock budget depends on it)"),
])
def test_runs_that_differ_are_listed_separately_never_averaged(tmp_path, change, reason):
    a = make_run(tmp_path, "00001-a")
    b = make_run(tmp_path, "00002-b", fid={"gan": [10.0, 11.0, 12.0], "vae": [5.0, 6.0, 7.0]}, **change)
    paths = build_report([a, b], plots=False)
    summary = pd.read_csv(paths["summary"])
    assert set(summary["comparison"]) == {1, 2}
    fid = summary[(summary["metric"] == "fid") & (summary["variant"] == "gan")].set_index("comparison")
    assert fid.loc[1, "n"] == 3 and fid.loc[1, "mean"] == pytest.approx(np.mean(FID["gan"]))
    assert fid.loc[2, "n"] == 3 and fid.loc[2, "mean"] == pytest.approx(11.0)
    md = read_md(a)
    assert "2 separate comparisons" in md and "Not merged with comparison 1" in md
    assert reason in md
    rows = pd.read_csv(paths["csv"])
    assert rows.groupby("run_id")["comparison"].nunique().eq(1).all()


def test_a_wall_clock_device_difference_does_not_split_a_step_budget(tmp_path):
    a = make_run(tmp_path, "00001-a", budget=("500steps", "steps", 500.0))
    b = make_run(tmp_path, "00002-b", budget=("500steps", "steps", 500.0), device="NVIDIA H100")
    paths = build_report([a, b], plots=False)
    assert set(pd.read_csv(paths["summary"])["comparison"]) == {1}
    assert "ran on different devices" in read_md(a)


def test_a_seed_in_two_runs_is_counted_once(tmp_path):
    a = make_run(tmp_path, "00001-a", seeds=(0, 1))
    b = make_run(tmp_path, "00002-b", seeds=(1, 2))
    paths = build_report([a, b], plots=False)
    summary = pd.read_csv(paths["summary"])
    assert summary.loc[(summary["variant"] == "gan") & (summary["metric"] == "fid"), "n"].item() == 3
    assert "gan seed 1 (final) is in runs 00001-a and 00002-b: counted once" in read_md(a)


def test_differently_configured_variants_do_not_merge(tmp_path):
    a = make_run(tmp_path, "00001-a")
    b = make_run(tmp_path, "00002-b", options={"gan": {"loss": "hinge"}})
    summary = pd.read_csv(build_report([a, b], plots=False)["summary"])
    assert {"gan", "gan (loss=hinge)", "vae"} <= set(summary["variant"])


# -- robustness ----------------------------------------------------------------------------------
def test_half_written_row_is_skipped_with_a_warning_naming_file_and_line(tmp_path):
    run = make_run(tmp_path, seeds=(0, 1))
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    number = len(lines) + 1
    metrics.write_text("\n".join(lines) + '\n{"run_id": "00001", "model": "gan", "se')
    with pytest.warns(UserWarning, match=rf"metrics\.jsonl:{number}: skipping a half-written row"):
        paths = build_report([run], plots=False)
    assert len(pd.read_csv(paths["csv"])) == len(lines)
    md = read_md(run)
    assert f"metrics.jsonl:{number}: skipping a half-written row" in md
    assert "## Warnings" in md and "Ranking by FID" in md


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ReportError, match="is not a run folder \\(no metrics.jsonl\\); give a folder under"):
        build_report([tmp_path])
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope'} is not a run folder (no metrics.jsonl)" in result.output


@pytest.mark.slow
def test_command_line_and_machine_come_before_the_tables(tmp_path):
    run = make_run(tmp_path, seeds=(0, 1))
    build_report([run])
    md = read_md(run)
    command, machine = md.find("bench run --budget 10m"), md.find("Test CPU 9000, 2 logical CPUs; no GPU")
    assert 0 < command < md.find("| runs |") and 0 < machine < md.find("| runs |")


def test_the_mfu_denominator_says_when_and_how_it_was_measured(tmp_path):
    import json

    run = make_run(tmp_path, seeds=(0,))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["device"].update(peak_flops=1.3e11, peak_flops_dtype="float32",
                              peak_flops_source="cache, measured 2026-11-25 21:31 UTC")
    (run / "manifest.json").write_text(json.dumps(manifest))
    build_report([run])
    assert "0.13 TFLOP/s (float32; cache, measured 2026-11-25 21:31 UTC)" in read_md(run)


def test_machine_description_names_cpu_count_and_gpus():
    import os

    from bench.device import machine_description

    text = machine_description()
    assert f"{os.cpu_count()} logical CPUs" in text
    assert text.endswith("no GPU") or "GPUs: " in text


@pytest.mark.slow
def test_report_builds_from_rows_alone_without_gpu_or_fid_weights(tmp_path, monkeypatch):
    import torch

    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # any import of it would fail
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("BENCH_FID_WEIGHTS", str(tmp_path / "no-weights.pth"))
    run = make_run(tmp_path, seeds=(0, 1))
    paths = build_report([run])
    for key in ("markdown", "html", "csv", "parquet", "summary"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    rows = pd.read_parquet(paths["parquet"])
    assert len(rows) == 2 * 2 * 2  # variant x seed x evaluation point
    assert {"budget_text", "budget_kind", "dataset", "dataset_hash", "device", "version_torch",
            "git_commit", "variant", "eval_point", "budget_used"} <= set(rows.columns)
    assert set(rows["eval_point"]) == {"untrained", "final"}
    assert len(pd.read_csv(paths["csv"])) == len(rows)
    # plots: PNGs in plots/, linked relatively from report.md
    names = {p.name for p in (run / "plots").iterdir()}
    assert {"fid-vs-time.png", "losses.png", "throughput.png", "samples.png"} <= names
    assert "reconstructions.png" not in names  # no trial has one: skipped silently
    md = read_md(run)
    for name in ("fid-vs-time", "losses", "throughput", "samples"):
        assert f"](<plots/{name}.png>)" in md
    for name in names:
        with Image.open(run / "plots" / name) as image:
            assert image.format == "PNG"


@pytest.mark.slow
def test_a_one_trial_run_draws_no_single_bar_charts_and_shows_its_own_pictures(tmp_path):
    """One trial, FID measured once: the metrics, throughput and FID-versus-time charts would each
    show one bar or one point, so the report says why they are not drawn; the loss curves are, and
    the sample grid is the trial's own picture, pixel for pixel."""
    run = make_run(tmp_path, models={"gan": "gan"}, seeds=(0,), untrained=False)
    build_report([run])
    names = {p.name for p in (run / "plots").iterdir()}
    assert names == {"losses.png", "samples.png"}
    md = read_md(run)
    assert "One trial: its metrics and throughput are in the tables above" in md
    assert "FID was measured once per trial" in md and "](<plots/losses.png>)" in md
    with Image.open(run / "plots" / "samples.png") as shown, \
            Image.open(run / "trials" / "gan-s0" / "samples.png") as own:
        assert np.array_equal(np.asarray(shown), np.asarray(own))
    two_points = make_run(tmp_path, name="00002-synthetic-10m", models={"gan": "gan"}, seeds=(0,))
    build_report([two_points])  # the untrained and the final FID: a curve; still one trial
    assert {p.name for p in (two_points / "plots").iterdir()} == {"losses.png", "samples.png",
                                                                   "fid-vs-time.png"}


@pytest.mark.slow
def test_reconstruction_grids_are_included_when_a_trial_has_them(tmp_path):
    run = make_run(tmp_path, seeds=(0,))
    Image.new("RGB", (34, 18), "gray").save(run / "trials" / "vae-s0" / "reconstructions.png")
    build_report([run])
    assert (run / "plots" / "reconstructions.png").is_file()
    assert "](<plots/reconstructions.png>)" in read_md(run)


# -- the HTML ------------------------------------------------------------------------------------
class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.slow
def test_html_is_self_contained_parses_and_escapes_everything(tmp_path):
    evil = "<script>alert(1)</script>"
    models = {evil: "gan", 'x" onerror="alert(2)': "vae", "$\\alpha$ & <b>": "hybrid"}
    run = make_run(tmp_path, "00001-<i>run</i>", models=models, seeds=(0, 1),
                   fid={evil: [40.0, 41.0]}, extra_rows=[{
                       "model": evil, "family": "gan", "seed": 5, "eval_point": "final",
                       "status": "failed", "message": "</td></tr></table><script>alert(3)</script>"}])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["dataset"]["source"] = '<img src="http://example.com/x.png">'
    manifest["command_line"] = "bench run --set 'gan.x=<style>body{display:none}</style>'"
    (run / "manifest.json").write_text(json.dumps(manifest))

    paths = build_report([run])
    text = paths["html"].read_text()
    ET.fromstring(text.split("\n", 1)[1])  # well-formed (after the doctype)
    parser = _Collector()
    parser.feed(text)
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert tags.count("style") == 1 and tags.count("img") >= 4
    for tag, attrs in parser.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert "href" not in attrs
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,")
    assert "http://" not in "".join(str(a) for _, a in parser.tags)
    assert "url(" not in text and "@import" not in text
    body = "".join(parser.text)
    assert evil in body and "</td></tr></table><script>alert(3)</script>" in body
    assert '<img src="http://example.com/x.png">' in body and "$\\alpha$ & <b>" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text

    md = read_md(run)
    assert "<script>" not in md and "<img" not in md and "<style>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md


# -- the command line ----------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_report_command(tmp_path):
    a = make_run(tmp_path, "00001-a", seeds=(0, 1))
    b = make_run(tmp_path, "00002-b", seeds=(2,), budget=("5m", "seconds", 300.0))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out / "report.md") in result.output and (out / "report.html").is_file()
    assert "Comparison 2" in (out / "report.md").read_text()


def test_bench_run_builds_the_report_and_survives_its_failure(tmp_path, monkeypatch):
    import types

    import bench.report
    import bench.run

    run_dir = make_run(tmp_path, seeds=(0,))
    fake = types.SimpleNamespace(directory=run_dir, plugins=types.SimpleNamespace(failures=[], warnings=[]))
    monkeypatch.setattr(bench.run, "start_run", lambda *a, **k: fake)
    monkeypatch.setattr(bench.run, "execute", lambda run: {"gan-s0": "completed"})
    args = ["run", "--models", "gan", "--dataset", "synthetic", "--device", "cpu", "--no-progress"]
    monkeypatch.setattr(bench.report, "build_report", lambda dirs, out_dir=None: build_report(dirs, out_dir,
                                                                                              plots=False))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.md").is_file() and str(run_dir / "report.md") in result.output

    def broken(*args, **kwargs):
        raise RuntimeError("no disk")

    monkeypatch.setattr(bench.report, "build_report", broken)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "report could not be built (RuntimeError: no disk)" in result.output
    assert f"bench report {run_dir}" in result.output and "gan-s0: completed" in result.output
