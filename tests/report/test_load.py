"""The report's columns come from the column table: a run's manifest ``columns`` (a metric
plugin's included), or the built-in metrics' for manifests older than that; and the report
package loads no torch.

Run folders are written synthetically, except the bench 0.1.0 fixture: no training.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES
from PIL import Image
from run_folders import column_table, make_columns_run, read_md
from scipy import stats

from bench.report import build_report
from bench.store.columns import Column
from bench.store.layout import trial_name

SHARPNESS = Column("sharpness", "sharpness", "higher", "a.u.")
HIDDEN = Column("sharpness_spread", "sharpness spread", summary=False)  # rows and CSV, no summary line
FIXTURE = FIXTURES / "run-format-0.1.0"








def summary_lines(md: str) -> str:
    return md.split("### Summary across seeds")[1].split("### ")[0]


def test_a_declared_column_is_in_every_output(tmp_path):
    run = make_columns_run(tmp_path, columns=column_table(SHARPNESS, HIDDEN))
    paths = build_report([run])
    summary = pd.read_csv(paths["summary"])
    row = summary[summary["metric"] == "sharpness"].iloc[0]
    low, high = stats.t.interval(0.95, df=2, loc=np.mean([1, 2, 4]), scale=stats.sem([1, 2, 4]))
    assert row["label"] == "sharpness (a.u.)" and row["column"] == "sharpness" and row["n"] == 3
    assert row["mean"] == pytest.approx(7 / 3)
    assert (row["ci95_low"], row["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
    assert "sharpness_spread" not in set(summary["metric"])  # summary=False: no summary line
    # in declaration order: the plugin's column after the built-in metrics, before the trial's cost
    metrics = list(dict.fromkeys(summary["metric"]))
    assert metrics.index("recon_fid") < metrics.index("sharpness") < metrics.index("train_images_per_s")
    assert metrics[-1] == "budget_used"

    lines = summary_lines(read_md(run))
    assert f"| sharpness (a.u.) ↑ | 2.333 [{low:.4g}, {high:.4g}] |" in lines
    assert "sharpness spread" not in lines

    rows = pd.read_csv(paths["csv"])
    assert sorted(rows["sharpness"]) == [1.0, 2.0, 4.0]
    assert sorted(rows["sharpness_spread"]) == pytest.approx([0.1, 0.2, 0.4])

    figure = run / "plots" / "metrics.png"
    with Image.open(figure) as image:
        assert image.format == "PNG"
    assert "](<plots/metrics.png>)" in read_md(run)
    assert "Every summary metric per variant" in paths["html"].read_text()


def test_an_old_manifest_without_columns_gets_the_built_in_table(tmp_path):
    run = tmp_path / "00001-synthetic-4steps"
    shutil.copytree(FIXTURE, run, ignore=shutil.ignore_patterns("README.md"))
    assert "columns" not in json.loads((run / "manifest.json").read_text())
    paths = build_report([run], out_dir=tmp_path / "report")
    summary = pd.read_csv(paths["summary"])
    assert list(dict.fromkeys(summary["metric"])) == [
        "fid", "fid_infinity", "kid", "precision", "recall", "recon_mse", "recon_psnr", "recon_fid",
        "train_images_per_s", "sample_images_per_s", "mfu", "params", "peak_memory", "budget_used"]
    # the run's --set options name the variant; the old rows (no trial column) find their trial folder
    gan = summary[summary["variant"] == "gan (latent=16, width=8)"].set_index("metric")
    assert gan.loc["params", "mean"] == pytest.approx(0.086372)
    assert gan.loc["params", "label"] == "parameters (millions)"
    assert gan.loc["fid", "n"] == 0  # --eval-samples 0
    rows = pd.read_csv(paths["csv"])
    assert {"kid_std", "trial"} <= set(rows.columns) and set(rows["trial"]) == {"gan-s0", "vae-s0"}
    names = {p.name for p in (tmp_path / "report" / "plots").iterdir()}
    assert {"metrics.png", "losses.png", "samples.png"} <= names


def test_a_trials_own_options_make_it_a_variant_of_its_own(tmp_path):
    lr = {"lr": 0.001}
    run = make_columns_run(tmp_path, columns=column_table(SHARPNESS), run_options={"gan": {"width": 8}},
                   trials=(("gan", {}, [1.0, 2.0]), ("gan", lr, [3.0, 5.0])))
    for seed in (0, 1):  # only the lr trials have sample grids now
        (run / "trials" / f"gan-s{seed}" / "samples.png").unlink()
    paths = build_report([run])
    sharpness = pd.read_csv(paths["summary"]).query("metric == 'sharpness'").set_index("variant")
    assert sharpness.loc["gan (width=8)", "mean"] == pytest.approx(1.5)
    assert sharpness.loc["gan (lr=0.001, width=8)", "mean"] == pytest.approx(4.0)
    assert sharpness["n"].tolist() == [2, 2]
    # a trial's files are found in its own folder (gan-<digest>-s0), named by the rows' trial column
    assert set(pd.read_csv(paths["csv"])["trial"]) == {f"gan-s{s}" for s in (0, 1)} | {
        trial_name("gan", s, lr) for s in (0, 1)}
    assert (run / "plots" / "samples.png").is_file()
    assert "no trial has a samples.png" not in read_md(run)


def test_a_damaged_manifest_costs_only_the_runs_settings(tmp_path):
    run = make_columns_run(tmp_path, columns=column_table(SHARPNESS))
    (run / "manifest.json").write_text('{"run_id": "00001", "config": {')
    paths = build_report([run], plots=False)
    md = read_md(run)
    assert "is damaged (not valid JSON" in md and "run settings taken from the rows" in md
    # the built-in table applies; the plugin's column is still in the rows
    assert "fid" in set(pd.read_csv(paths["summary"])["metric"])
    assert "sharpness" in pd.read_csv(paths["csv"]).columns


@pytest.mark.slow
def test_the_report_loads_no_torch(tmp_path):
    run = make_columns_run(tmp_path, columns=column_table(SHARPNESS))
    code = ("import sys\n"
            "import bench.report\n"
            "assert 'torch' not in sys.modules, 'import bench.report loaded torch'\n"
            f"bench.report.build_report([{str(run)!r}])\n"
            "assert 'torch' not in sys.modules, 'building a report loaded torch'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (run / "plots" / "metrics.png").is_file()
