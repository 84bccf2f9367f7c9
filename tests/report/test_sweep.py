"""A sweep's report opens with its answer: the order of its sections, setting ids instead of
spelled-out settings, the per-setting detail collapsed, several sweeps in one table, a ranking
change worded by its significance, and a damaged sweep.json that costs only the sweep section."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from run_folders import make_run, make_sweep, read_md

from bench.report import build_report
from bench.report.sweep import ranking_change


@pytest.mark.slow
def test_the_answer_comes_first_and_the_per_setting_detail_last_and_collapsed(tmp_path):
    run = make_sweep(tmp_path)
    paths = build_report([run], plots=False)
    md = read_md(run)
    answer = md.index("which variant is best at equal search budget")
    assert answer < md.index("Protocol and settings") < md.index("Stability") < md.index("Per-setting detail")
    assert answer < md.index("Results: synthetic")  # the plain report of every setting comes after
    assert "gan has the lowest mean final FID" in md and "the lead is significant" in md
    assert "| gan#best | <code>beta1=" in md and "0.5581343000015276" not in md
    html = paths["html"].read_text()
    assert html.index("<details><summary>Open the per-setting report") > html.index("Stability</h3>")
    table = pd.read_csv(paths["sweep_csv"])
    assert {"setting", "collapsed", "best_fid_so_far", "coverage"} <= set(table.columns)


def test_two_sweeps_get_one_cross_table_and_its_csv(tmp_path):
    a = make_sweep(tmp_path, "00001-a", dataset="cifar10")
    b = make_sweep(tmp_path, "00002-b", dataset="celeba", final={"gan": [150.0, 151.0, 149.0],
                                                                 "vae": [140.0, 139.0, 141.0]})
    paths = build_report([a, b], tmp_path / "both", plots=False)
    md = read_md(tmp_path / "both")
    assert "Across sweeps" in md and "Kendall's tau = -1.00 over 2 variants" in md
    cross = pd.read_csv(paths["across_csv"])
    assert set(cross["run_id"]) == {"00001-a", "00002-b"} and len(cross) == 4


def test_a_ranking_change_is_a_change_only_when_significant_at_both_stages():
    final = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "fid": [50.0, 51, 49, 60, 61, 59]})
    clear = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "eval_point": "final",
                          "fid": [70.0, 71, 69, 40, 41, 39]})
    assert "significant at both stages (Welch, p < 0.05): a / b" in ranking_change(final, clear, ["b", "a"],
                                                                                    ["a", "b"])
    noisy = clear.assign(fid=[70.0, 20, 69, 40, 90, 39])
    assert "read it as a tie" in ranking_change(final, noisy, ["b", "a"], ["a", "b"])
    one = clear.iloc[[0, 3]]
    assert "no test is possible" in ranking_change(final, one, ["b", "a"], ["a", "b"])
    assert "is the same" in ranking_change(final, clear, ["a", "b"], ["a", "b"])


def test_a_damaged_sweep_json_is_one_warning_and_its_rows_are_still_reported(tmp_path):
    run = make_sweep(tmp_path)
    state = json.loads((run / "sweep.json").read_text())
    del state["slots"][0]["options"]
    (run / "sweep.json").write_text(json.dumps(state))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_report([run, make_run(tmp_path)], plots=False)
    damaged = [str(w.message) for w in caught if "sweep.json" in str(w.message)]
    assert len(damaged) == 1 and "slot 0 has no 'options'" in damaged[0]
    md = read_md(run)
    assert "is damaged" in md and "Ranking by FID" in md and "which variant is best" not in md
