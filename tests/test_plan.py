"""The plan a run prints before training, and its estimate against what the run took."""

from __future__ import annotations

import datetime

import pytest
from helpers import TINY, only_run

from bench.config import RunConfig
from bench.plan import estimate
from bench.run import prepare_run
from bench.store import read_json


@pytest.mark.slow
def test_bench_run_prints_its_plan_and_records_it(cli, results_dir):
    out = cli("run", "--models", "gan", "--dataset", "synthetic:128", "--budget", "6steps",
              "--batch-size", "16", "--seeds", "2", "--no-progress", *TINY).output
    assert "plan: 2 trial(s), budget 6steps each" in out and "training images/s measured here: gan" in out
    assert "estimated total: about" in out
    assert out.index("plan:") < out.index("gan-s0: completed")  # before training
    manifest = read_json(only_run(results_dir) / "manifest.json")
    plan = manifest["plan"]
    assert plan["trials"] == 2 and plan["train_images_per_s"]["gan"] > 0
    # a steps budget: 2 trials x 6 steps x 16 images at the measured rate
    assert plan["train_seconds"] == pytest.approx(2 * 6 * 16 / plan["train_images_per_s"]["gan"])
    assert plan["estimated_seconds"] == pytest.approx(plan["train_seconds"])  # --eval-samples 0
    started = datetime.datetime.strptime(manifest["started"], "%Y-%m-%dT%H:%M:%SZ")
    finished = datetime.datetime.strptime(manifest["finished"], "%Y-%m-%dT%H:%M:%SZ")
    assert started <= finished


def test_a_long_cpu_plan_says_how_to_shrink_it():
    config = RunConfig(models=["gan"], dataset="synthetic:64", budget="2h", batch_size=16, eval_samples=0,
                       options={"gan": {"width": "8", "latent": "16"}}, device="cpu")
    plan = estimate(config, prepare_run(config), extractor_loader=None)
    assert plan.train_seconds == 7200 and plan.eval_seconds is None
    assert any("--eval-samples" in note and "--budget" in note for note in plan.notes)
    assert "2.0 h" in "\n".join(plan.lines())


def test_evaluations_and_inception_images_are_counted(monkeypatch):
    """Per trial: untrained + one per interval + final; images: samples per evaluation, the
    encoder variants' reconstructions, and references not cached yet."""
    import bench.plan

    monkeypatch.setattr(bench.plan, "inception_rate", lambda config, device, loader: (10.0, "torch"))
    monkeypatch.setattr(bench.plan, "_reference_images", lambda config, prepared, metrics: 500)
    config = RunConfig(models=["gan", "vae"], dataset="synthetic:64", budget="8steps", batch_size=16,
                       eval_samples=32, recon_samples=20, eval_every="2steps", eval_untrained=True,
                       options={"gan": {"width": "8", "latent": "16"}, "vae": {"width": "8", "latent": "16"}},
                       device="cpu", fid_weights=__file__)  # the weights file is not opened here
    import bench.evaluation

    monkeypatch.setattr(bench.evaluation, "check_weights_file", lambda path: None)
    plan = estimate(config, prepare_run(config), extractor_loader=None)
    assert plan.evaluations_per_trial == 1 + 3 + 1  # untrained, steps 2, 4, 6, final
    assert plan.inception_images == 32 * 5 * 2 + 20 * 5 * 1 + 500
    assert plan.eval_seconds == pytest.approx(plan.inception_images / 10.0)
