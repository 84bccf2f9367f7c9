"""Stability per variant on a planted sweep: diverged and collapsed shares, FID spread, seed
spread at the best setting, and how far the final FID ends above the best reached on the way."""

from __future__ import annotations

import numpy as np
import pytest
from run_folders import SWEEP_FINAL, SWEEP_SEARCH, make_sweep

from bench.report.load import load_run
from bench.report.stability import is_collapsed, stability_frame
from bench.report.sweep import slot_frame


def test_collapse_is_read_from_coverage_then_recall():
    assert is_collapsed("completed", 0.01, 0.5) and not is_collapsed("completed", 0.3, 0.0)
    assert is_collapsed("completed", float("nan"), 0.01)  # no coverage column: recall decides
    assert not is_collapsed("diverged", 0.0, 0.0)  # a failed trial counts as failed, not collapsed


def test_stability_of_a_planted_sweep(tmp_path):
    frame = slot_frame(load_run(make_sweep(tmp_path, eval_every=True), []))
    table = stability_frame(frame, ["gan", "vae"]).set_index("variant")
    gan, vae = table.loc["gan"], table.loc["vae"]
    assert gan["diverged"] == 0.25 and gan["failed"] == 0.0  # one of 4 search samples diverged
    assert vae["collapsed"] == 0.25  # make_sweep gives FIDs above 155 coverage 0: vae's 160
    finite = [v for v in SWEEP_SEARCH["gan"] if v is not None]
    assert gan["fid_median"] == np.median(finite)
    assert gan["fid_iqr"] == pytest.approx(np.percentile(finite, 75) - np.percentile(finite, 25))
    assert gan["seed_std_at_best"] == pytest.approx(np.std(SWEEP_FINAL["gan"], ddof=1))
    # every completed trial was evaluated at step 50 at 0.9x its final FID: final - best = 0.1 x final
    gan_fids = [v for v in SWEEP_SEARCH["gan"] if v is not None] + SWEEP_FINAL["gan"]
    assert gan["final_minus_best_so_far"] == pytest.approx(0.1 * np.mean(gan_fids))


def test_without_eval_every_there_is_no_best_so_far_gap(tmp_path):
    frame = slot_frame(load_run(make_sweep(tmp_path), []))
    assert stability_frame(frame, ["gan"])["final_minus_best_so_far"].isna().all()
