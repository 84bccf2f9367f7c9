"""bench.trial: a trial is (model, options, seed); a diverged trial keeps its last finite state; a failing
metric costs the trial nothing."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import SYNTH_RUN, TINY, only_run, write_plugin

from bench.config import RunConfig
from bench.executors import make_executor
from bench.run import start_run
from bench.store import read_json, read_jsonl, trial_name
from bench.trial import TrialSpec


def test_trial_names():
    assert trial_name("gan", 0) == "gan-s0" == TrialSpec("gan", 0).name
    hinge = TrialSpec("gan", 3, {"loss": "hinge"}).name
    assert hinge.startswith("gan-") and hinge.endswith("-s3") and len(hinge) == len("gan-12345678-s3")
    assert hinge == TrialSpec("gan", 3, {"loss": "hinge"}).name  # a function of the options
    assert hinge != TrialSpec("gan", 3, {"loss": "nonsaturating"}).name
    on_resnet = TrialSpec("gan", 0, backbone="resnet").name
    assert on_resnet == "gan@resnet-s0" == trial_name("gan", 0, {}, "resnet")


@pytest.mark.slow
def test_the_backbone_is_recorded_in_names_rows_manifest_and_report_labels(cli, results_dir):
    from bench.report.load import load_runs, run_frame

    small = [f"--set={m}.{k}={v}" for m in ("gan", "vae") for k, v in (("width", 8), ("latent", 16))]
    cli("run", "--models", "gan,vae", *SYNTH_RUN, "--eval-samples", "0", "--backbone", "resnet",
        "--set", "vae.backbone=dcgan", *small)
    run = only_run(results_dir)
    rows = {r["trial"]: r for r in read_jsonl(run / "metrics.jsonl")}
    assert set(rows) == {"gan@resnet-s0", "vae-s0"}  # the default backbone leaves the name as it was
    assert (rows["gan@resnet-s0"]["backbone"], rows["vae-s0"]["backbone"]) == ("resnet", "dcgan")
    manifest = read_json(run / "manifest.json")
    assert manifest["config"]["backbone"] == "resnet"
    assert manifest["config"]["options"]["gan"]["backbone"] == "resnet"
    assert "backbone" not in manifest["config"]["options"]["vae"]
    assert manifest["models"]["gan"]["config"]["beta1"] == 0.0  # SNGAN's Adam on resnet
    state = torch.load(run / "trials" / "gan@resnet-s0" / "checkpoint.pt", weights_only=True)
    assert state["variant_config"]["backbone"] == "resnet"
    runs, _ = load_runs([run])
    labels = dict(zip(run_frame(runs[0], 0)["trial"], run_frame(runs[0], 0)["variant"], strict=True))
    assert labels["gan@resnet-s0"].startswith("gan (backbone=resnet") and labels["vae-s0"].startswith("vae (")
    assert "backbone" not in labels["vae-s0"]


def test_two_settings_of_one_model_in_one_run_folder(tmp_path):
    config = RunConfig(models=["gan"], dataset="synthetic:64", budget="2steps", batch_size=16, log_every=1,
                       eval_samples=0, options={"gan": {"width": "8", "latent": "16"}})
    ctx = start_run(config, tmp_path, "test", progress=False)
    trials = [TrialSpec("gan", 0), TrialSpec("gan", 0, {"loss": "hinge"})]
    statuses = make_executor("local").execute(ctx, trials)
    assert statuses == {t.name: "completed" for t in trials}
    rows = read_jsonl(ctx.directory / "metrics.jsonl")
    assert [r["trial"] for r in rows] == [t.name for t in trials]
    assert [r["options"] for r in rows] == [{}, {"loss": "hinge"}]
    for t in trials:
        assert (ctx.directory / "trials" / t.name / "checkpoint.pt").is_file()
    manifest = read_json(ctx.directory / "manifest.json")
    assert manifest["trials"][trials[1].name]["options"] == {"loss": "hinge"}
    # a second pass finds both finished and trains nothing
    assert make_executor("local").execute(ctx, trials) == statuses
    assert len(read_jsonl(ctx.directory / "metrics.jsonl")) == 2



@pytest.mark.slow
def test_the_trackers_hear_a_trials_whole_life(tmp_path):
    """Its start (who it is, its sweep slot), each logging interval, each evaluation row with its
    pictures (drawn during training, the saved files at the end) and its end."""
    from bench.trackers import SafeTrackers, Tracker
    from bench.trial import run_context, run_trial

    heard = []

    class Listening(Tracker):
        def start_trial(self, trial):
            heard.append(trial)

        def log_train(self, step, values):
            heard.append(("train", step, sorted(values)))

        def log_eval(self, step, row):
            heard.append(("eval", step, row["eval_point"]))

        def log_images(self, step, name, image):
            heard.append(("picture", step, name, type(image).__name__))

        def end_trial(self, status, final_row):
            heard.append(("end", status, final_row["step"]))

    config = RunConfig(models=["vae"], dataset="synthetic:64", budget="4steps", batch_size=16, log_every=2,
                       eval_every="2steps", eval_samples=0, recon_samples=8,
                       options={"vae": {"width": 8, "latent": 16}})
    ctx = run_context(tmp_path / "run", config, progress=False, trackers=SafeTrackers({"ear": Listening()}))
    assert run_trial(ctx, TrialSpec("vae", 1, sweep={"phase": "search", "slot": 3})).status == "completed"
    trial, *life = heard
    assert (trial.run_id, trial.trial, trial.family, trial.backbone, trial.seed) == ("run", "vae-s1", "vae",
                                                                                     "dcgan", 1)
    assert trial.config["width"] == 8 and trial.config["beta"] == 1.0  # resolved: defaults too
    assert (trial.sweep_phase, trial.sweep_slot, trial.directory) == ("search", 3, ctx.directory / "trials"
                                                                      / "vae-s1")
    losses = ["images_per_s", "kl", "loss", "recon"]
    assert life == [("train", 2, losses), ("eval", 2, "interval"), ("picture", 2, "samples", "ndarray"),
                    ("picture", 2, "reconstructions", "ndarray"), ("train", 4, losses),
                    ("picture", 4, "samples", "PosixPath"), ("picture", 4, "reconstructions", "PosixPath"),
                    ("eval", 4, "final"), ("end", "completed", 4)]


EXPLODES = '''
from bench_plugins.gan import GAN
from bench import hookimpl

class Explodes(GAN):
    """Its generator loss turns NaN at step 7."""

    steps = 0

    def train_step(self, batch):
        losses = super().train_step(batch)
        self.steps += 1
        if self.steps >= 7:
            losses["loss_g"] = losses["loss_g"] * float("nan")
        return losses

@hookimpl
def bench_register_models(register):
    register("explodes", Explodes)
'''


def test_a_diverged_trial_names_loss_and_step_and_keeps_its_last_finite_state(cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "explodes.py", EXPLODES)
    out = cli("run", "--plugin", plugin, "--models", "explodes", "--dataset", "synthetic:128",
              "--budget", "20steps", "--batch-size", "16", "--log-every", "2", "--checkpoint-every", "4steps",
              "--set", "explodes.width=8", "--set", "explodes.latent=16", "--eval-samples", "0",
              "--no-progress", expect_exit=3).output
    assert "bench: trial explodes-s0 diverged: loss_g became NaN or infinite at step 7" in out
    run = only_run(results_dir)
    trial = run / "trials" / "explodes-s0"
    (row,) = read_jsonl(run / "metrics.jsonl")
    assert row["status"] == "diverged" and row["step"] == 7
    assert "from its last finite step, 4" in row["message"]
    assert (trial / "samples.png").stat().st_size > 0
    state = torch.load(trial / "checkpoint.pt", weights_only=True)
    assert state["usage"]["steps"] == 4  # the checkpoint before the NaN, not after it
    finite = [torch.isfinite(v).all() for net in state["variant"]["networks"].values() for v in net.values()
              if v.is_floating_point()]
    assert all(finite)


def test_metrics_errors_do_not_cost_the_trial(cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "badmetric.py", '''
        from bench import Column, Metric, hookimpl

        def broken(ctx):
            raise ValueError("no luck")

        @hookimpl
        def bench_register_metrics(register):
            register("broken", Metric(broken, (Column("broken_value", "broken value"),), needs="nothing"))
    ''')
    cli("run", "--plugin", plugin, "--models", "gan", *SYNTH_RUN, *TINY)
    (row,) = read_jsonl(only_run(results_dir) / "metrics.jsonl")
    assert row["status"] == "completed" and row["broken_value"] is None
    assert row["metric_errors"] == {"broken": "ValueError: no luck"}
    json.dumps(row)
