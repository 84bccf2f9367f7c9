"""Intervals across seeds that respect the quantity's range (issue 24 item 6), against a float64
reference of the published formula, a coverage simulation and planted cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.stats import (
    bounded_interval,
    column_interval,
    fid_interval,
    rank_agreement,
    summarize,
    t_interval,
)
from bench.store.columns import Column


def test_a_spread_fid_gets_a_log_normal_interval_above_zero_where_the_t_interval_goes_below():
    values = [1.0, 1.0, 30.0]
    assert t_interval(values).low < 0  # the interval the issue found: below zero for an FID
    got = fid_interval(values)
    y = np.log(np.array(values, dtype=np.float64))  # Olsson 2005, the modified Cox interval
    s2 = y.var(ddof=1)
    half = stats.t.ppf(0.975, 2) * math.sqrt(s2 / 3 + s2**2 / 4)
    assert got.low == pytest.approx(math.exp(y.mean() + s2 / 2 - half), rel=1e-12)
    assert got.high == pytest.approx(math.exp(y.mean() + s2 / 2 + half), rel=1e-12)
    assert got.low > 0 and got.mean == pytest.approx(32 / 3) and got.method == "log-normal"


def test_the_log_normal_interval_covers_the_mean_of_a_log_normal_quantity_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    mu, sigma, n, sims = math.log(50.0), 0.3, 5, 2000
    true_mean = math.exp(mu + sigma**2 / 2)
    hits = 0
    for sample in rng.lognormal(mu, sigma, (sims, n)):
        interval = fid_interval(sample)
        hits += interval.low <= true_mean <= interval.high
    assert 0.93 <= hits / sims <= 0.97


def test_values_at_or_below_the_bound_fall_back_to_the_t_interval_cut_at_the_range():
    kid = bounded_interval([-0.001, 0.002, 0.0005], minimum=0.0)  # KID's unbiased estimate can be < 0
    assert kid.low == 0.0 and kid.method == "t, cut at the range"
    assert kid.high == pytest.approx(t_interval([-0.001, 0.002, 0.0005]).high)
    recall = bounded_interval([0.99, 0.5, 0.98], minimum=0.0, maximum=1.0)
    assert recall.high == 1.0 and recall.low > 0
    narrow = bounded_interval([0.4, 0.41, 0.42], minimum=0.0, maximum=1.0)
    assert narrow.method == "t" and (narrow.low, narrow.high) == pytest.approx(
        (t_interval([0.4, 0.41, 0.42]).low, t_interval([0.4, 0.41, 0.42]).high))


def test_one_seed_gives_no_interval_whatever_the_method():
    one = fid_interval([40.0])
    assert one.n == 1 and not one.available and math.isnan(one.low)


def test_a_column_range_is_applied_in_the_shown_unit():
    coverage = Column("coverage", "coverage", "higher", "%", scale=100.0, minimum=0.0, maximum=1.0)
    interval = column_interval(np.array([0.99, 0.5, 0.98]) * 100, coverage)
    assert interval.high == 100.0


def test_the_summary_uses_each_columns_range():
    rows = pd.DataFrame([{"variant": "gan", "family": "gan", "eval_point": "final", "status": "completed",
                          "fid": f, "recall": r} for f, r in ((1.0, 0.99), (1.0, 0.5), (30.0, 0.98))])
    columns = [Column("fid", "FID", "lower", minimum=0.0), Column("recall", "recall", "higher", minimum=0.0,
                                                                  maximum=1.0)]
    summary = summarize(rows, columns).set_index("metric")
    assert summary.loc["fid", "ci95_low"] > 0
    assert summary.loc["recall", "ci95_high"] == 1.0


def _finals(fid: dict, fd: dict, seeds: int = 2) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "family": "gan", "eval_point": "final", "status": "completed",
                          "fid": fid[v] + s, "fd_dinov2_s14": fd[v] + s, "inception_score_mean": 10 - fid[v]}
                         for v in fid for s in range(seeds)])


def test_an_fd_ranking_that_differs_from_fids_is_said_with_kendalls_tau(tmp_path):
    """By FID a < b < c, by FD_DINOv2 c < a < b: the report says the rankings differ, with Kendall's
    tau-b; Inception Score (higher is better) ranks as FID here, and the report says that too."""
    from bench.report.render import to_markdown
    from bench.report.sections import other_rankings_section

    frame = _finals({"a": 10.0, "b": 20.0, "c": 30.0}, {"a": 200.0, "b": 300.0, "c": 100.0})
    fd = Column("fd_dinov2_s14", "FD (DINOv2 ViT-S/14)", "lower", minimum=0.0)
    agreement = rank_agreement(frame, fd)
    assert agreement.order == ["c", "a", "b"] and agreement.fid_order == ["a", "b", "c"]
    assert agreement.tau == pytest.approx(stats.kendalltau([1, 2, 3], [2, 3, 1])[0])
    assert not agreement.same_order
    score = Column("inception_score_mean", "Inception Score", "higher")
    text = to_markdown(other_rankings_section(frame, [Column("fid", "FID", "lower"), fd, score]), tmp_path)
    assert "By FD (DINOv2 ViT-S/14) (lower is better), best first: c (100.5), a (200.5), b (300.5)" in text
    assert "**This ranking differs from FID's** (a, b, c): Kendall's tau-b = -0.33 over 3 variants" in text
    assert "Inception Score (higher is better), best first: a (0), b (-10), c (-20). The same order" in text
    assert rank_agreement(frame[frame["variant"] == "a"], fd) is None  # one variant: nothing to compare
