"""The answer table of a sweep: best first, intervals, expected best after K against a brute
force over every draw, equal compute on a planted 6x dearer variant, the lead worded by Welch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from run_folders import make_sweep

from bench.report.answer import (
    answer_table,
    compute_sentence,
    equal_compute,
    expected_best_curves,
    lead_sentence,
)
from bench.report.load import load_run
from bench.report.stats import fid_interval
from bench.report.sweep import slot_frame, worst_finite

SEARCH = {"gan": [80.0, 60.0, 120.0, None], "wgan-gp": [70.0, 90.0, 100.0, 110.0]}
FINAL = {"gan": [62.0, 65.0, 59.0], "wgan-gp": [71.0, 69.0, 73.0]}


def parts(tmp_path, search=SEARCH, final=FINAL, seconds=None):
    run = load_run(make_sweep(tmp_path, search=search, final=final, seconds=seconds or {"wgan-gp": 60.0}), [])
    frame = slot_frame(run)
    search_rows = frame[frame["phase"] == "search"]
    final_rows = frame[frame["phase"] == "final"]
    penalty = worst_finite(search_rows)
    curves = expected_best_curves(search_rows, list(search), penalty)
    return frame, final_rows, curves, penalty


def brute_force_expected_min(values, k):
    """E[min of k draws with replacement] by enumerating all len(values)**k draws."""
    draws = list(itertools.product(values, repeat=k))
    return sum(min(d) for d in draws) / len(draws)


def test_rows_best_first_with_the_final_interval_and_the_expected_best_after_k(tmp_path):
    frame, final, curves, penalty = parts(tmp_path)
    families = {"gan": "gan", "wgan-gp": "gan"}
    header, rows, order = answer_table(final, frame, curves, ["wgan-gp", "gan"], families)
    assert order == ["gan", "wgan-gp"] and [r[0] for r in rows] == order
    interval = fid_interval(FINAL["gan"])
    assert rows[0][2] == f"{interval.mean:.1f} [{interval.low:.1f}, {interval.high:.1f}] (n=3)"
    with_penalty = [v if v is not None else penalty for v in SEARCH["gan"]]  # diverged: the worst FID
    assert penalty == 120.0
    assert float(rows[0][3]) == pytest.approx(brute_force_expected_min(with_penalty, 4), abs=0.05)
    assert "recon MSE mean [95% CI]" not in header  # no encoder variant here


def test_equal_compute_is_the_least_search_total_and_a_dearer_variant_gets_fewer_samples(tmp_path):
    _, _, curves, _ = parts(tmp_path)  # gan: 10 s per sample, wgan-gp: 60 s, K = 4 each
    assert equal_compute(curves) == pytest.approx(40.0)
    assert curves["gan"].at_compute(40.0) == (4, pytest.approx(curves["gan"].mean[-1]))
    k, value = curves["wgan-gp"].at_compute(40.0)
    assert k == 0 and np.isnan(value)  # one wgan-gp sample costs more than all of gan's search
    _, _, curves, _ = parts(tmp_path / "b", seconds={"wgan-gp": 20.0})
    k, value = curves["wgan-gp"].at_compute(40.0)
    assert k == 2 and value == pytest.approx(brute_force_expected_min(SEARCH["wgan-gp"], 2))
    text = compute_sentence(curves)
    assert "40 training seconds" in text and "wgan-gp" in text and "(k=2)" in text


def test_the_lead_is_worded_by_its_significance(tmp_path):
    _, final, _, _ = parts(tmp_path)
    assert "the lead is significant" in lead_sentence(final, ["gan", "wgan-gp"])
    close = {"gan": [62.0, 75.0, 59.0], "wgan-gp": [64.0, 69.0, 73.0]}
    _, final, _, _ = parts(tmp_path / "close", final=close)
    text = lead_sentence(final, ["gan", "wgan-gp"])
    assert "not significant" in text and "does not separate gan from wgan-gp" in text
    _, final, _, _ = parts(tmp_path / "one", final={"gan": [62.0], "wgan-gp": [70.0]})
    assert "cannot be tested" in lead_sentence(final, ["gan", "wgan-gp"])
