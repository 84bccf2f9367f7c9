"""The report's best FID so far (``--eval-every``) and the run's estimated and actual wall time.

Run folders are written synthetically with tests/test_report.py's ``make_run``: no training.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest
from helpers import lognormal_interval
from matplotlib.axes import Axes
from run_folders import FID, make_run, read_md

from bench.report import build_report
from bench.report.timing import timing_text

# gan's FID at 150, 300 and 450 of its 600 s per seed; its final FIDs are FID["gan"] = 40, 42.5, 41
GAN_INTERVALS = {0: [60.0, 35.0, 38.0], 1: [55.0, 39.0, 45.0], 2: [58.0, 50.0, 44.0]}
GAN_BEST = {0: (35.0, 0.5), 1: (39.0, 0.5), 2: (41.0, 602 / 600)}  # seed 2's best is its final FID


def interval_rows(values=GAN_INTERVALS, model="gan", family="gan", seconds=(150.0, 300.0, 450.0),
                  flops=True) -> list[dict]:
    rows = []
    for seed, fids in values.items():
        for k, (fid, at) in enumerate(zip(fids, seconds, strict=True)):
            rows.append({"run_id": "00001-synthetic-10m", "model": model, "family": family, "seed": seed,
                         "eval_point": "interval", "status": "training", "step": 25 * (k + 1),
                         "images_seen": 1600 * (k + 1), "train_seconds": at, "eval_samples": 2000,
                         "eval_ref": "test", "ref_samples": 2000, "fid": fid, "fid_infinity": fid - 2,
                         **({"train_flops": 2.5e11 * (k + 1)} if flops else {})})
    return rows


def best_lines(md: str) -> str:
    return md.split("### Best FID so far")[1].split("### ")[0]


@pytest.mark.slow
def test_best_fid_so_far_per_trial_and_per_variant(tmp_path):
    run = make_run(tmp_path, extra_rows=interval_rows())
    paths = build_report([run])
    summary = pd.read_csv(paths["summary"])
    gan = summary[summary["variant"] == "gan"].set_index("metric")
    best = [GAN_BEST[s][0] for s in (0, 1, 2)]
    low, high = lognormal_interval(best)  # FID cannot be negative: the log-normal interval
    assert gan.loc["best_fid", "n"] == 3 and gan.loc["best_fid", "mean"] == pytest.approx(np.mean(best))
    assert (gan.loc["best_fid", "ci95_low"], gan.loc["best_fid", "ci95_high"]) == (
        pytest.approx(low), pytest.approx(high))
    at = 100 * np.mean([GAN_BEST[s][1] for s in (0, 1, 2)])
    assert gan.loc["best_fid_at", "mean"] == pytest.approx(at)
    assert gan.loc["best_fid_at", "label"] == "budget used at the best FID (%)"
    # the vae was evaluated at the end only: its best is its final FID, at the end of its budget
    vae = summary[summary["variant"] == "vae"].set_index("metric")
    assert vae.loc["best_fid", "mean"] == pytest.approx(np.mean(FID["vae"]))
    # in the column table's order: right after FID; budget used stays last
    metrics = list(dict.fromkeys(summary["metric"]))
    assert metrics.index("fid") + 1 == metrics.index("best_fid") == metrics.index("best_fid_at") - 1
    assert metrics[-1] == "budget_used"

    md = read_md(run)
    lines = best_lines(md)
    assert "| gan | 0 | 4 | 40 | 35 | 50% | +5 (+14.29%) |" in lines
    assert "| gan | 2 | 4 | 41 | 41 | 100.3% (final) | no: the final FID is the best |" in lines
    assert "| vae | 0 | 1 | 90 | 90 | 100.0% (final) | no: the final FID is the best |" in lines
    assert (f"gan: best FID {np.mean(best):.4g} [{low:.4g}, {high:.4g}], at {at:.4g}% of the budget on "
            "average; final FID 41.17") in lines
    assert "the final FID is above the best in 2 of 3 seeds (by 4.25 on average)." in lines
    assert "vae: best FID 92.67" in lines and "above the best in 0 of 3 seeds." in lines
    assert "biased low" in lines
    assert "| best FID so far (interval and final evaluations) ↓ | 38.33 [" in md
    # the final rows carry the two columns in results.csv
    rows = pd.read_csv(paths["csv"])
    final = rows[(rows["eval_point"] == "final") & (rows["variant"] == "gan")].set_index("seed")
    assert final.loc[0, "best_fid"] == 35.0 and final.loc[0, "best_fid_at"] == pytest.approx(0.5)
    assert rows.loc[rows["eval_point"] != "final", "best_fid"].isna().all()


@pytest.mark.slow
def test_without_evaluations_during_training_there_is_no_best_so_far(tmp_path):
    run = make_run(tmp_path)  # untrained and final points only: the untrained one never counts
    paths = build_report([run])
    assert not {"best_fid", "best_fid_at"} & set(pd.read_csv(paths["summary"])["metric"])
    assert "best_fid" not in pd.read_csv(paths["csv"]).columns
    md = read_md(run)
    assert "Best FID so far" not in md and "a star marks" not in md and "best FID so far" not in md


def test_a_diverged_trial_is_listed_but_not_summarized(tmp_path):
    diverged = {"run_id": "00001-synthetic-10m", "model": "gan", "family": "gan", "seed": 3,
                "eval_point": "final", "status": "diverged", "message": "loss is nan", "step": 60,
                "train_seconds": 360.0}
    run = make_run(tmp_path, extra_rows=interval_rows({3: [70.0, 52.0, 90.0]}) + [diverged])
    paths = build_report([run], plots=False)
    lines = best_lines(read_md(run))
    assert "| gan | 3 | 3 | n/a | 52 | 50% | n/a (diverged) |" in lines
    assert "gan: best FID 41.17 [" in lines  # seeds 0-2 (best = final), not the diverged seed 3
    best = pd.read_csv(paths["summary"]).query("metric == 'best_fid' and variant == 'gan'")
    assert best["n"].item() == 3


def test_a_flop_budget_places_the_best_by_steps(tmp_path):
    # interval rows carry no FLOP count: their share is the final row's, scaled by steps (25 of 100)
    run = make_run(tmp_path, budget=("1e12flops", "flops", 1e12), seeds=(0,),
                   extra_rows=interval_rows({0: [30.0, 50.0, 60.0]}, flops=False))
    build_report([run], plots=False)
    assert "| gan | 0 | 4 | 40 | 30 | 25% | +10 (+33.33%) |" in best_lines(read_md(run))


@pytest.mark.slow
def test_the_fid_plot_stars_each_trials_best(tmp_path, monkeypatch):
    stars = []
    scatter = Axes.scatter

    def spy(self, x, y, *args, **kwargs):
        if kwargs.get("marker") == "*" and len(x):  # the legend entry is an empty scatter
            stars.append(sorted(zip(np.asarray(x, float), np.asarray(y, float), strict=True)))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "scatter", spy)
    run = make_run(tmp_path, extra_rows=interval_rows())
    paths = build_report([run])
    assert len(stars) == 1
    gan = [(300.0, 35.0), (300.0, 39.0), (602.0, 41.0)]
    vae = [(600.0 + s, fid) for s, fid in enumerate(FID["vae"])]
    assert stars[0] == sorted(gan + vae)
    assert "a star marks each trial's best (lowest) FID" in html.unescape(paths["html"].read_text())


# -- the run's estimate ---------------------------------------------------------------------------
def with_manifest(run, **keys):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(keys)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def setup_part(md: str) -> str:
    return md.split("### Setup")[1].split("### Summary across seeds")[0]


def test_the_setup_gives_the_estimate_and_the_time_taken(tmp_path):
    run = with_manifest(make_run(tmp_path), format=2, started="2026-11-25T19:40:00Z",
                        finished="2026-11-25T19:55:00Z",
                        plan={"estimated_seconds": 720.0, "parts": {"training": 600.0}})
    build_report([run], plots=False)
    setup = setup_part(read_md(run))
    assert ("Estimated before the run: 12.0 min; took 15.0 min (2026-11-25 19:40 UTC to 19:55 UTC): "
            "1.25x the estimate.") in setup
    assert setup.index("Estimated before the run") < setup.index("| runs |")


def test_a_run_not_finished_or_without_those_keys(tmp_path):
    running = with_manifest(make_run(tmp_path, "00001-a"), started="2026-11-25T19:40:00Z",
                            plan={"estimated_seconds": 720.0})
    old = make_run(tmp_path, "00002-b")  # an old manifest: no plan, no times
    build_report([running, old], plots=False)
    setup = setup_part(read_md(running))
    assert ("00001-a: Estimated before the run: 12.0 min; started 2026-11-25 19:40 UTC and not finished "
            "(still running, or stopped before its last trial ended): no total time to compare.") in setup
    assert "00002-b:" not in setup  # says nothing about a run that records nothing
    build_report([old], plots=False)
    assert "Estimated" not in read_md(old) and "took" not in setup_part(read_md(old))


def test_timing_text_tolerates_what_manifests_may_hold():
    plan = {"estimated_seconds": 600.0}
    assert timing_text({}) is None
    assert timing_text({"plan": plan}) == ("Estimated before the run: 10.0 min; the manifest records no "
                                           "start time.")
    assert timing_text({"started": "2026-11-25T19:40:00Z", "finished": "2026-11-26T00:10:00+00:00"}) == (
        "No estimate was recorded before the run; took 270.0 min (2026-11-25 19:40 UTC to 2026-11-26 "
        "00:10 UTC).")
    assert timing_text({"plan": {"estimated_seconds": "soon"}, "started": "2026-11-25T19:40:00Z",
                        "finished": "2026-11-25T19:50:00Z"}) == (
        "Estimated before the run: unknown (the plan could not tell); took 10.0 min (2026-11-25 19:40 UTC "
        "to 19:50 UTC).")
    resumed = {"plan": plan, "started": "2026-11-25T19:40:00Z", "finished": "2026-11-25T19:50:00Z",
               "resumed": ["2026-11-25T20:00:00Z"]}
    assert "resumed 2026-11-25 20:00 UTC and not finished" in timing_text(resumed)
    resumed["finished"] = "2026-11-25T20:20:00Z"
    assert timing_text(resumed).endswith("took 40.0 min (2026-11-25 19:40 UTC to 20:20 UTC): 4.00x the "
                                         "estimate. The run was resumed 1 time: the time taken includes any "
                                         "pause before a resume.")
    assert "the time taken is unknown" in timing_text({"plan": plan, "started": "2026-11-25T19:40:00Z",
                                                        "finished": "2026-11-25T19:00:00Z"})
    assert "records no start time" in timing_text({"plan": plan, "started": "yesterday"})
