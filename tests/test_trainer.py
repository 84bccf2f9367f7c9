"""The fixed-budget loop: exact budgets, resume, divergence and failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bench_plugins.gan import GAN, GANConfig
from helpers import train_settings

from bench.data.batches import DeviceBatches
from bench.data.synthetic import synthetic_images
from bench.store import read_json, read_jsonl
from bench.trainer import Diverged, Trainer

TINY = GANConfig(width=8, latent=16)


def make_trainer(tmp_path, budget, seed=0, **settings):
    variant = GAN((3, 32, 32), TINY, "cpu", seed)
    batches = DeviceBatches(synthetic_images(256), 16, "cpu", seed=seed)
    return Trainer(variant, batches, train_settings(budget, batch_size=16, **settings),
                   tmp_path, progress=False)


@pytest.mark.slow
def test_steps_budget_runs_exactly(tmp_path):
    trainer = make_trainer(tmp_path, "100steps", log_every=7)
    usage = trainer.run()
    assert usage.steps == 100 and usage.images == 1600
    rows = read_jsonl(tmp_path / "log.jsonl")
    assert rows[-1]["step"] == 100 and rows[-1]["budget_used"] == 1.0
    assert usage.flops == pytest.approx(100 * usage.flops_per_step) and usage.flops_per_step > 0


def test_images_and_flops_budgets(tmp_path):
    assert make_trainer(tmp_path / "a", "500img").run().images == 512  # 32 steps of 16
    trainer = make_trainer(tmp_path / "b", "1step")
    per_step = trainer.run().flops_per_step
    usage = make_trainer(tmp_path / "c", f"{per_step * 10 / 1e9:.6f}GFLOP").run()
    assert usage.steps in (10, 11)  # rounding of the printed amount


@pytest.mark.slow
def test_time_budget_stops_within_ten_percent(tmp_path):
    usage = make_trainer(tmp_path, "20s", log_every=5).run()
    assert 20.0 <= usage.seconds <= 22.0


@pytest.mark.slow
def test_same_seed_same_losses(tmp_path):
    a = make_trainer(tmp_path / "a", "20steps", log_every=5)
    b = make_trainer(tmp_path / "b", "20steps", log_every=5)
    a.run(), b.run()
    strip = lambda rows: [{k: v for k, v in r.items() if k.startswith("loss")} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "a" / "log.jsonl")) == strip(read_jsonl(tmp_path / "b" / "log.jsonl"))
    c = make_trainer(tmp_path / "c", "20steps", seed=1, log_every=5)
    c.run()
    assert strip(read_jsonl(tmp_path / "c" / "log.jsonl")) != strip(read_jsonl(tmp_path / "a" / "log.jsonl"))


@pytest.mark.slow
def test_checkpoint_resume_is_exact(tmp_path):
    """Stopping at a checkpoint and resuming gives the same losses as one straight run."""
    straight = make_trainer(tmp_path / "straight", "30steps", log_every=5)
    straight.run()
    part = make_trainer(tmp_path / "split", "15steps", log_every=5)
    part.run()  # ends with a checkpoint at step 15
    resumed = make_trainer(tmp_path / "split", "30steps", log_every=5)
    assert resumed.load_checkpoint() and resumed.usage.steps == 15
    resumed.run()
    a = read_jsonl(tmp_path / "straight" / "log.jsonl")
    b = read_jsonl(tmp_path / "split" / "log.jsonl")
    assert [r["step"] for r in b] == [5, 10, 15, 20, 25, 30]
    assert [r["loss_d"] for r in a] == [r["loss_d"] for r in b]


class ExplodingGAN(GAN):
    def train_step(self, batch):
        losses = super().train_step(batch)
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps >= 12:
            losses["loss_d"] = losses["loss_d"] * float("nan")
        return losses


def test_nan_loss_stops_the_trial_at_its_step(tmp_path):
    variant = ExplodingGAN((3, 32, 32), TINY, "cpu", 0)
    batches = DeviceBatches(synthetic_images(256), 16, "cpu")
    trainer = Trainer(variant, batches, train_settings("100steps", batch_size=16, log_every=10),
                      tmp_path, progress=False)
    with pytest.raises(Diverged) as err:
        trainer.run()
    assert err.value.step == 12 and "loss_d" in str(err.value)
    assert trainer.usage.steps == 20  # found at the next logging interval, no per-step sync


@pytest.mark.slow
def test_interrupted_cli_run_resumes_to_the_same_step_count(tmp_path):
    """Kill a real `bench run` mid-trial, resume it, and end at exactly the budget."""
    results = tmp_path / "results"
    env = {**os.environ, "BENCH_RESULTS_DIR": str(results)}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--models", "gan", "--dataset", "synthetic:512",
           "--budget", "120steps", "--batch-size", "16", "--log-every", "5",
           "--checkpoint-every", "10steps", "--set", "gan.width=8", "--eval-samples", "0",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    checkpoint = None
    while time.time() < deadline and checkpoint is None:
        found = list(results.glob("*/trials/gan-s0/checkpoint.pt"))
        checkpoint = found[0] if found else None
        time.sleep(0.05)
    assert checkpoint is not None, proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = checkpoint.parents[2]
    assert read_json(checkpoint.parent / "status.json")["status"] == "running"
    out = subprocess.run(cmd[:4] + ["--resume", str(run_dir), "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (row,) = read_jsonl(run_dir / "metrics.jsonl")
    assert row["status"] == "completed" and row["step"] == 120
    steps = [r["step"] for r in read_jsonl(checkpoint.parent / "log.jsonl")]
    assert steps == list(range(5, 125, 5))  # no duplicated or missing log rows
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["trials"]["gan-s0"]["steps"] == 120


def test_a_trial_killed_after_its_final_row_keeps_its_manifest_entry(cli, results_dir):
    """The kill window between a trial's final row and its status file and manifest entry (the
    executor records the entry last): resume repairs both from the row, so what the trial used
    still counts (a sweep's compute per variant sums the entries), and trains nothing again."""
    from bench.store import write_json

    cli("run", "--models", "gan", "--dataset", "synthetic:64", "--budget", "3steps", "--batch-size", "16",
        "--log-every", "3", "--set", "gan.width=8", "--eval-samples", "0", "--no-progress")
    (run_dir,) = results_dir.iterdir()
    manifest = read_json(run_dir / "manifest.json")
    recorded = manifest["trials"].pop("gan-s0")
    write_json(run_dir / "manifest.json", manifest)
    (run_dir / "trials" / "gan-s0" / "status.json").unlink()
    cli("run", "--resume", run_dir, "--no-progress")
    repaired = read_json(run_dir / "manifest.json")["trials"]["gan-s0"]
    for key in ("status", "steps", "images", "seconds", "flops", "model", "seed"):
        assert repaired[key] == pytest.approx(recorded[key]), key
    assert repaired["images"] == 3 * 16 and "final row" in repaired["repaired_from"]
    assert read_json(run_dir / "trials" / "gan-s0" / "status.json")["status"] == "completed"
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 1  # not trained or evaluated again


def test_checkpoints_load_with_weights_only(tmp_path):
    make_trainer(tmp_path, "5steps").run()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["usage"]["steps"] == 5
    assert not list(Path(tmp_path).glob(".checkpoint.pt.*"))  # no temporary files left
    json.dumps(state["usage"])


def test_flop_count_matches_torch_flop_counter():
    """Our counting mode applies torch's formulas; it must agree with FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    from bench.flops import CountFlops

    batch = synthetic_images(16).float() / 127.5 - 1
    a, b = GAN((3, 32, 32), TINY, "cpu", 0), GAN((3, 32, 32), TINY, "cpu", 0)
    with CountFlops() as ours:
        a.train_step(batch)
    with FlopCounterMode(display=False) as reference:
        b.train_step(batch)
    assert ours.total == reference.get_total_flops() > 0


@pytest.mark.parametrize("model", ["gan", "vae", "vaegan", "arvae"])
def test_bf16_autocast_path_trains(tmp_path, model):
    """The CUDA path's bf16 autocast, exercised on the CPU: finite losses, float32 logs."""
    from bench.plugins import load_plugins

    cls = load_plugins().models.get(model).obj
    variant = cls((3, 32, 32), cls.Config(width=8, latent=16), "cpu", 0)
    batches = DeviceBatches(synthetic_images(64), 8, "cpu")
    settings = train_settings("4steps", batch_size=8, log_every=2, amp=True)
    Trainer(variant, batches, settings, tmp_path, progress=False).run()
    rows = read_jsonl(tmp_path / "log.jsonl")
    assert len(rows) == 2 and all(v is not None for r in rows for v in r.values())


def _three_steps(tmp_path, **settings):
    variant = GAN((3, 32, 32), TINY, "cpu", 0)
    batches = DeviceBatches(synthetic_images(64), 16, "cpu")
    trainer = Trainer(variant, batches, train_settings("3steps", batch_size=16, log_every=1,
                                                      **settings), tmp_path, progress=False)
    trainer.run()
    losses = [[r["loss_d"], r["loss_g"]] for r in read_jsonl(tmp_path / "log.jsonl")]
    params = torch.cat([p.detach().flatten() for net in variant.networks.values() for p in net.parameters()])
    return variant, batches, torch.tensor(losses), params


def test_cuda_layout_and_fused_adam_train_like_the_defaults_on_cpu(tmp_path, monkeypatch):
    """The CUDA path's channels_last layout and fused Adam, run on the CPU: the same three steps
    as the contiguous layout with torch's default Adam, up to float rounding."""
    import bench.variant

    _, _, base_losses, base_params = _three_steps(tmp_path / "a", channels_last=False)
    variant, batches, losses, params = _three_steps(tmp_path / "b", channels_last=True)
    conv = variant.networks["discriminator"].head.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert next(batches).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(losses, base_losses, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(params, base_params, rtol=1e-4, atol=1e-5)

    monkeypatch.setattr(bench.variant, "fused_adam", lambda device: True)
    variant, _, losses, params = _three_steps(tmp_path / "c", channels_last=False)
    assert all(opt.defaults["fused"] for opt in variant.optimizers.values())
    torch.testing.assert_close(losses, base_losses, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(params, base_params, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_path_trains_like_eager_on_cpu(tmp_path):
    """--compile (inductor, C++ on the CPU) trains the same three steps as eager mode."""
    _, _, eager, _ = _three_steps(tmp_path / "eager")
    _, _, compiled, _ = _three_steps(tmp_path / "compiled", compile=True)
    torch.testing.assert_close(compiled, eager, rtol=1e-3, atol=1e-4)


def test_append_after_a_half_written_row_keeps_the_new_row(tmp_path):
    from bench.store import append_jsonl

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"a": 2, "b"')  # killed mid-append
    append_jsonl(path, {"a": 3})
    with pytest.warns(UserWarning, match=r"metrics.jsonl:2"):
        assert read_jsonl(path) == [{"a": 1}, {"a": 3}]
