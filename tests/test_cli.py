"""The command line end to end: help, errors, runs on synthetic data and real CIFAR-10, options beside
--resume, and the light commands' imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import TINY, cifar_root, only_run, requires_cifar, requires_weights

from bench.store import read_json, read_jsonl


def test_help_lists_commands_and_budget_forms(cli):
    assert "run" in cli("--help").output and "list" in cli("--help").output
    help_text = cli("run", "--help").output
    assert "--budget" in help_text and "5000steps" in help_text and "--resume" in help_text


def test_list_shows_models_with_family_and_source(cli):
    out = cli("list").output
    assert "gan" in out and "built-in" in out and "cifar10" in out and "synthetic" in out
    backbones = out.split("backbones:")[1].split("datasets:")[0]
    assert "dcgan" in backbones and "resnet" in backbones and "built-in" in backbones
    assert "images: 32x32 and 64x64" in backbones


def test_bad_budget_is_rejected_with_the_accepted_forms(cli, results_dir):
    out = cli("run", "--budget", "ten minutes", expect_exit=2).output
    assert "cannot read budget 'ten minutes'" in out and "5000steps" in out
    assert not results_dir.exists()


def test_unknown_model_and_dataset(cli, results_dir):
    out = cli("run", "--models", "gan,nope", "--dataset", "synthetic", expect_exit=1).output
    assert "unknown model(s): nope" in out and "registered: " in out
    out = cli("run", "--models", "gan", "--dataset", "mnist", expect_exit=1).output
    assert "unknown dataset 'mnist'" in out
    out = cli("run", "--models", "gan", "--dataset", "synthetic", "--set", "gan.colour=3",
              expect_exit=1).output
    assert "unknown option(s) colour" in out
    assert not results_dir.exists()  # nothing written for a bad command


def test_missing_cifar_says_where_it_looked(cli, tmp_path):
    out = cli("run", "--models", "gan", "--data-dir", tmp_path / "nowhere", "--no-download",
              expect_exit=1).output
    assert str(tmp_path / "nowhere" / "cifar10") in out and "BENCH_DATA_DIR" in out
    assert "Traceback" not in out


@pytest.mark.slow
def test_synthetic_run_end_to_end(cli, results_dir):
    out = cli("run", "--models", "gan", "--dataset", "synthetic:256", "--budget", "12steps",
              "--batch-size", "16", "--seeds", "2", "--log-every", "4", *TINY).output
    assert "gan-s0: completed" in out and "gan-s1: completed" in out
    run = only_run(results_dir)
    manifest = read_json(run / "manifest.json")
    assert manifest["budget"]["kind"] == "steps" and manifest["dataset"]["name"] == "synthetic"
    assert set(manifest["versions"]) >= {"python", "torch", "torchvision", "torch_fidelity", "bench"}
    assert manifest["trials"]["gan-s1"]["steps"] == 12
    rows = read_jsonl(run / "metrics.jsonl")
    assert [(r["model"], r["seed"], r["step"]) for r in rows] == [("gan", 0, 12), ("gan", 1, 12)]
    assert rows[0]["final_loss_d"] != rows[1]["final_loss_d"]  # seeds differ
    for seed in (0, 1):
        trial = run / "trials" / f"gan-s{seed}"
        assert (trial / "samples.png").stat().st_size > 0
        assert len(read_jsonl(trial / "log.jsonl")) == 3


FAILING_PLUGIN = '''
from bench_plugins.gan import GAN
from bench import hookimpl

class Boom(GAN):
    def train_step(self, batch):
        raise RuntimeError("boom at the first step")

class Nan(GAN):
    def train_step(self, batch):
        losses = super().train_step(batch)
        return {k: v * float("nan") for k, v in losses.items()}

@hookimpl
def bench_register_models(register):
    register("boom", Boom)
    register("nan", Nan)
'''


@pytest.mark.slow
def test_failing_and_diverging_variants_do_not_sink_the_others(cli, tmp_path, results_dir):
    plugin = tmp_path / "failing.py"
    plugin.write_text(textwrap.dedent(FAILING_PLUGIN))
    out = cli("run", "--plugin", plugin, "--models", "boom,nan,gan", "--dataset", "synthetic:256",
              "--budget", "8steps", "--batch-size", "16", "--log-every", "4",
              *TINY, "--set", "boom.width=8", "--set", "nan.width=8", expect_exit=3).output
    assert "2 of 3 trial(s) did not complete (boom-s0, nan-s0)" in out and "--retry-failed" in out
    assert "boom-s0: failed" in out and "nan-s0: diverged" in out and "gan-s0: completed" in out
    rows = {r["model"]: r for r in read_jsonl(only_run(results_dir) / "metrics.jsonl")}
    assert rows["boom"]["message"] == "RuntimeError: boom at the first step"
    assert rows["nan"]["status"] == "diverged" and rows["nan"]["step"] == 1
    assert rows["gan"]["step"] == 8
    assert (only_run(results_dir) / "trials" / "boom-s0" / "error.txt").exists()


@pytest.mark.slow
@requires_cifar
@requires_weights
def test_cifar10_subset_run_end_to_end(cli, results_dir, tmp_path, monkeypatch):
    """Real CIFAR-10 images, real Inception weights: untrained and final rows with metrics."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = cli("run", "--models", "gan,vae", "--dataset", "cifar10", "--data-dir", cifar_root(),
              "--subset", "2000", "--budget", "10steps", "--batch-size", "32", "--log-every", "5",
              *TINY, "--set", "vae.width=8", "--eval-samples", "64", "--ref-samples", "64",
              "--eval-ref", "test", "--eval-untrained", "--eval-every", "5steps").output
    assert "gan-s0: completed" in out and "vae-s0: completed" in out
    run = only_run(results_dir)
    data = read_json(run / "manifest.json")["dataset"]
    assert data["num_images"] == 2000 and data["image_shape"] == [3, 32, 32]
    assert "image-folder export" in data["source"] and len(data["content_hash"]) == 16
    rows = {(r["model"], r["eval_point"]): r for r in read_jsonl(run / "metrics.jsonl")}
    assert set(rows) == {(m, p) for m in ("gan", "vae") for p in ("untrained", "interval", "final")}
    assert [rows["gan", p]["step"] for p in ("untrained", "interval", "final")] == [0, 5, 10]
    for row in rows.values():
        assert row["fid"] > 0 and row["kid_mean"] is not None and row["small_n"] is True
        assert row["eval_ref"] == "test" and row["ref_samples"] == 64
    assert rows["gan", "final"]["recon_mse"] is None  # NaN in the row: no encoder, no number
    assert 0 < rows["vae", "final"]["recon_mse"] < 1 and rows["vae", "final"]["recon_psnr"] > 0
    final = rows["gan", "final"]
    assert 0 < final["mfu"] < 1 and final["train_flops_per_s"] > 0 and final["peak_memory_bytes"] > 0
    assert final["params_total"] == final["params_generator"] + final["params_discriminator"]
    assert (run / "trials" / "vae-s0" / "reconstructions.png").exists()
    assert not (run / "trials" / "gan-s0" / "reconstructions.png").exists()
    assert rows["vae", "final"]["recon_fid"] > 0 and rows["gan", "final"]["recon_fid"] is None
    manifest = read_json(run / "manifest.json")
    assert manifest["device"]["peak_flops"] > 1e9


def test_missing_fid_weights_fail_before_anything_runs(cli, tmp_path, results_dir):
    out = cli("run", "--models", "gan", "--dataset", "synthetic:64", "--budget", "2steps",
              "--fid-weights", tmp_path / "nope.pth", expect_exit=1).output
    assert "nope.pth" in out and "--fid-weights" in out and "BENCH_FID_WEIGHTS" in out
    assert not results_dir.exists()


def test_unknown_eval_ref_split(cli, tmp_path, results_dir):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")  # only its existence is checked before the run
    out = cli("run", "--models", "gan", "--dataset", "synthetic:64", "--eval-ref", "valid",
              "--fid-weights", weights, expect_exit=1).output
    assert "--eval-ref valid" in out and "train, test" in out


def test_device_errors(cli, results_dir):

    if not torch.cuda.is_available():
        out = cli("run", "--models", "gan", "--dataset", "synthetic:64", *TINY, "--device", "cuda",
                  expect_exit=1).output
        assert "CUDA is not available" in out and "--device cpu" in out
    out = cli("run", "--models", "gan", "--dataset", "synthetic:64", *TINY, "--device", "tpu",
              expect_exit=1).output
    assert "use auto, cpu, cuda or cuda:N" in out
    assert not results_dir.exists()



SYNTH = ["--dataset", "synthetic:128", "--budget", "4steps", "--batch-size", "16", "--log-every", "2",
         "--no-progress"]


@pytest.mark.slow
def test_resume_refuses_options_it_would_ignore(cli, tmp_path, results_dir):
    cli("run", "--models", "gan", *SYNTH, *TINY)
    run = only_run(results_dir)
    out = cli("run", "--resume", run, "--budget", "8steps", "--seeds", "2", expect_exit=2).output
    assert "does not take --budget, --seeds" in out and "start a new run" in out
    out = cli("run", "--models", "gan", *SYNTH, *TINY, "--retry-failed", expect_exit=2).output
    assert "--retry-failed needs --resume" in out



def _imported_after(statement: str) -> set[str]:
    code = (f"import sys; {statement}; heavy = ('torch', 'ray', 'torch_fidelity', 'matplotlib', 'pandas'); "
            "print(','.join(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(filter(None, result.stdout.strip().split(",")))


def test_the_light_commands_import_only_what_they_use():
    """`bench --help` loads none of the heavy packages; the results store none; the report path
    its tables and plots (pandas, matplotlib) but no torch, Ray or torch-fidelity."""
    assert _imported_after("from bench.cli import main") == set()
    assert _imported_after("import bench.store, bench.store.retire") == set()
    assert _imported_after("import bench.report") <= {"pandas", "matplotlib"}
