"""The Ray executor on a local Ray (2 CPUs): the same rows as the local executor, failures,
a worker killed mid-trial, Ctrl-C and --resume, and a clear error without Ray."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import torch
from helpers import TINY, fixed_peak, only_run, requires_weights, write_plugin

import bench.run
from bench.store import read_json, read_jsonl

requires_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                  reason="Ray is not installed (pip install '.[test,ray]')")

RAY = ["--executor", "ray", "--cpus-per-trial", "1"]
GRID = ["--models", "gan,vae", "--dataset", "synthetic:256", "--budget", "8steps", "--batch-size", "16",
        "--seeds", "2", "--log-every", "4", *TINY, "--set", "vae.width=8", "--set", "vae.latent=16"]
# columns that say where and how fast a trial ran, not what it computed
TIMING = {"run_id", "device", "train_seconds", "train_images_per_s", "train_flops_per_s", "mfu",
          "peak_memory_bytes", "eval_seconds", "sample_images_per_s"}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Ray workers train with --cpus-per-trial (1) torch threads: so does the local reference.
    The MFU denominator is a constant here (its matmul benchmark is not what is tested)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(bench.run, "cached_peaks", fixed_peak)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def by_trial(rows):
    return {(r["model"], r["seed"], r["eval_point"], r["step"]): r for r in rows}


def same_values(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in set(a) - TIMING:
        if isinstance(a[key], float) and isinstance(b[key], float):
            assert math.isclose(a[key], b[key], rel_tol=1e-6, abs_tol=1e-9), (key, a[key], b[key])
        else:
            assert a[key] == b[key], (key, a[key], b[key])


def test_missing_ray_fails_at_once_with_the_install_command(cli, results_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = cli("run", "--models", "gan", "--dataset", "synthetic:64", *TINY, *RAY, expect_exit=1).output
    assert "--executor ray needs Ray" in out and "pip install 'bench-gen[ray]'" in out
    assert "Traceback" not in out
    out = cli("run", "--models", "gan", "--dataset", "synthetic:64", "--gpus-per-trial", "1",
              expect_exit=2).output
    assert "--gpus-per-trial needs --executor ray" in out
    assert not results_dir.exists()  # nothing written


@pytest.mark.slow
@requires_ray
def test_ray_grid_gives_the_local_rows(ray_cluster, cli, tmp_path, results_dir):
    cli("run", *GRID, "--results-dir", tmp_path / "local")
    out = cli("run", *GRID, *RAY).output
    for trial in ("gan-s0", "gan-s1", "vae-s0", "vae-s1"):
        assert f"{trial}: completed" in out
    assert "report:" in out  # `bench report` read the run folder
    local, remote = only_run(tmp_path / "local"), only_run(results_dir)
    local_rows = by_trial(read_jsonl(local / "metrics.jsonl"))
    ray_rows = by_trial(read_jsonl(remote / "metrics.jsonl"))
    assert set(ray_rows) == {(m, s, "final", 8) for m in ("gan", "vae") for s in (0, 1)}
    assert set(local_rows) == set(ray_rows)
    for key in ray_rows:
        same_values(local_rows[key], ray_rows[key])
    assert ray_rows["vae", 0, "final", 8]["recon_mse"] > 0
    assert ray_rows["gan", 0, "final", 8]["final_loss_d"] != ray_rows["gan", 1, "final", 8]["final_loss_d"]

    manifest = read_json(remote / "manifest.json")
    assert manifest["config"]["executor"] == "ray"
    assert manifest["config"]["executor_options"]["cpus_per_trial"] == 1
    assert set(manifest["trials"]) == set(read_json(local / "manifest.json")["trials"])
    for name, trial in manifest["trials"].items():
        assert trial["status"] == "completed" and trial["steps"] == 8
        assert trial["device"].startswith("cpu") and trial["node"] and trial["attempts"] == 1
        files = {p.name for p in (remote / "trials" / name).iterdir()}
        assert files == {p.name for p in (local / "trials" / name).iterdir()}
        assert {"status.json", "log.jsonl", "checkpoint.pt", "samples.png"} <= files
        assert read_json(remote / "trials" / name / "status.json")["status"] == "completed"
        logs = [read_jsonl(run / "trials" / name / "log.jsonl") for run in (local, remote)]
        assert [r["step"] for r in logs[1]] == [4, 8]
        for a, b in zip(*logs, strict=True):
            same_values({k: v for k, v in a.items() if k.startswith("loss")},
                        {k: v for k, v in b.items() if k.startswith("loss")})
    assert (remote / "trials" / "vae-s0" / "reconstructions.png").exists()


@pytest.mark.slow
@requires_ray
def test_workers_log_to_the_run_folders_trackers(ray_cluster, cli, results_dir, monkeypatch):
    """TensorBoard's event files come back with each trial's files; MLflow's nested runs, logged
    by the workers, hang under the run's MLflow run that the driver created."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cli("run", "--models", "gan", "--seeds", "2", "--dataset", "synthetic:128", "--budget", "2steps",
        "--batch-size", "16", "--log-every", "1", *TINY, *RAY, "--tracker", "tensorboard,mlflow")
    run = only_run(results_dir)
    client = MlflowClient(f"sqlite:///{run / 'mlflow.db'}")
    parent = read_json(run / "manifest.json")["config"]["tracker_state"]["mlflow"]["run_id"]
    assert client.get_run(parent).info.status == "FINISHED"
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.info.run_name for r in children) == ["gan-s0", "gan-s1"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "train/loss_d")] == [1, 2]
        events = EventAccumulator(str(run / "trials" / child.info.run_name))
        events.Reload()
        assert [e.step for e in events.Scalars("train/loss_d")] == [1, 2]


FAILING_PLUGIN = '''
from bench_plugins.gan import GAN
from bench import hookimpl

class Boom(GAN):
    def train_step(self, batch):
        raise RuntimeError("boom at the first step")

@hookimpl
def bench_register_models(register):
    register("boom", Boom)
'''


@pytest.mark.slow
@requires_ray
def test_a_raising_trial_is_failed_and_the_others_complete(ray_cluster, cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "failing.py", FAILING_PLUGIN)
    out = cli("run", "--plugin", plugin, "--models", "boom,gan", "--dataset", "synthetic:256",
              "--budget", "8steps", "--batch-size", "16", "--log-every", "4", *TINY,
              "--set", "boom.width=8", *RAY, expect_exit=3).output
    assert "boom-s0: failed" in out and "gan-s0: completed" in out
    run = only_run(results_dir)
    rows = {r["model"]: r for r in read_jsonl(run / "metrics.jsonl")}
    assert rows["boom"]["status"] == "failed"
    assert rows["boom"]["message"] == "RuntimeError: boom at the first step"
    assert rows["gan"]["status"] == "completed" and rows["gan"]["step"] == 8
    assert "boom at the first step" in (run / "trials" / "boom-s0" / "error.txt").read_text()
    manifest = read_json(run / "manifest.json")
    assert manifest["trials"]["boom-s0"]["status"] == "failed"
    assert manifest["trials"]["boom-s0"]["attempts"] == 1  # an exception is not retried


DYING_PLUGIN = '''
import os
import time
from pathlib import Path

from bench_plugins.gan import GAN
from bench import hookimpl

HERE = Path(__file__).parent

class Dies(GAN):
    """Kills its own worker process before its 11th step, the first time only."""
    calls = 0

    def train_step(self, batch):
        self.calls += 1
        with open(HERE / "calls", "a") as f:
            f.write("x")
        if self.calls == 11 and not (HERE / "killed-once").exists():
            (HERE / "killed-once").write_text(str(os.getpid()))
            time.sleep(2)  # a real step takes long enough for the step-8 checkpoint to get out
            os._exit(1)
        return super().train_step(batch)

@hookimpl
def bench_register_models(register):
    register("dies", Dies)
'''


@pytest.mark.slow
@requires_ray
def test_a_killed_worker_is_retried_from_its_checkpoint(ray_cluster, cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "dying.py", DYING_PLUGIN)
    common = ["--plugin", plugin, "--dataset", "synthetic:256", "--budget", "16steps",
              "--batch-size", "16", "--log-every", "2", "--checkpoint-every", "4steps", "--eval-samples", "0",
              "--set", "dies.width=8", "--set", "dies.latent=16"]
    out = cli("run", "--models", "dies,gan", *common, *TINY, *RAY).output
    assert "dies-s0: completed" in out and "gan-s0: completed" in out
    assert (tmp_path / "killed-once").exists()
    run = only_run(results_dir)
    rows = {r["model"]: r for r in read_jsonl(run / "metrics.jsonl")}
    assert rows["dies"]["status"] == "completed" and rows["dies"]["step"] == 16
    assert rows["gan"]["step"] == 16
    trial = read_json(run / "manifest.json")["trials"]["dies-s0"]
    assert trial["attempts"] == 2 and trial["steps"] == 16 and trial["images"] == 16 * 16
    # 11 calls (the last one died), then steps 9..16 from the step-8 checkpoint: not 11 + 16
    assert len((tmp_path / "calls").read_text()) == 11 + 8
    log = read_jsonl(run / "trials" / "dies-s0" / "log.jsonl")
    assert [r["step"] for r in log] == list(range(2, 17, 2))  # resumed: no step twice

    # and the checkpoint resumed exactly: the same losses as a trial that was never killed
    cli("run", "--models", "dies", *common, "--results-dir", tmp_path / "uninterrupted")
    reference = read_jsonl(only_run(tmp_path / "uninterrupted") / "metrics.jsonl")[0]
    for key in ("final_loss_d", "final_loss_g"):
        assert math.isclose(rows["dies"][key], reference[key], rel_tol=1e-6), key


SLOW_PLUGIN = '''
import time
from pathlib import Path

from bench_plugins.gan import GAN
from bench import hookimpl

HERE = Path(__file__).parent

class Slow(GAN):
    started = False

    def train_step(self, batch):
        if not self.started:  # the step it starts from: Adam's step count (0 for a new trial)
            self.started = True
            state = self.optimizers["generator"].state
            step = int(next(iter(state.values()))["step"]) if state else 0
            with open(HERE / f"start-{self.seed}", "a") as f:
                f.write(f"{step}\\n")
        time.sleep(0.05)
        return super().train_step(batch)

@hookimpl
def bench_register_models(register):
    register("slow", Slow)
'''


@pytest.mark.slow
@requires_ray
def test_ctrl_c_cancels_the_tasks_and_resume_finishes_the_run(ray_cluster, cli, tmp_path, results_dir,
                                                              monkeypatch):
    from bench.executors import ray_executor

    plugin = write_plugin(tmp_path, "slow.py", SLOW_PLUGIN)
    sync = ray_executor._Driver._sync

    def sync_then_ctrl_c(self):  # Ctrl-C once a checkpoint has reached the run folder
        sync(self)
        if any(results_dir.glob("*/trials/*/checkpoint.pt")):
            raise KeyboardInterrupt

    monkeypatch.setattr(ray_executor._Driver, "_sync", sync_then_ctrl_c)
    out = cli("run", "--plugin", plugin, "--models", "slow", "--seeds", "2", "--dataset", "synthetic:256",
              "--budget", "60steps", "--batch-size", "16", "--log-every", "2",
              "--checkpoint-every", "4steps", "--eval-samples", "0", "--set", "slow.width=8",
              "--set", "slow.latent=16", *RAY,
              expect_exit=130).output
    run = only_run(results_dir)
    assert f"bench run --resume {run}" in out
    assert not read_jsonl(run / "metrics.jsonl")  # no trial finished
    statuses = [read_json(p)["status"] for p in run.glob("trials/*/status.json")]
    assert statuses and set(statuses) == {"interrupted"}
    steps_before = {p.parent.name: torch.load(p, weights_only=True)["usage"]["steps"]
                    for p in run.glob("trials/*/checkpoint.pt")}
    assert steps_before and all(0 < s < 60 for s in steps_before.values())

    monkeypatch.setattr(ray_executor._Driver, "_sync", sync)
    out = cli("run", "--resume", run).output
    assert "slow-s0: completed" in out and "slow-s1: completed" in out
    rows = read_jsonl(run / "metrics.jsonl")
    assert sorted((r["seed"], r["step"], r["status"]) for r in rows) == [(0, 60, "completed"),
                                                                        (1, 60, "completed")]
    for name in ("slow-s0", "slow-s1"):
        log = read_jsonl(run / "trials" / name / "log.jsonl")
        assert [r["step"] for r in log] == list(range(2, 61, 2))
        starts = (tmp_path / f"start-{name[-1]}").read_text().split()
        assert int(starts[-1]) == steps_before.get(name, 0)  # resumed from the checkpoint it had
    manifest = read_json(run / "manifest.json")
    assert {t["steps"] for t in manifest["trials"].values()} == {60}


@pytest.mark.slow
@requires_ray
@requires_weights
def test_a_tiny_sweep_runs_its_pool_on_ray(ray_cluster, cli, results_dir):
    """`bench sweep --executor ray`: the search pool and the final phase as Ray tasks."""
    out = cli("sweep", "--models", "gan", "--dataset", "synthetic:128", "--budget", "3steps", "--batch-size",
              "16", "--eval-samples", "4", "--ref-samples", "8", *TINY[:4], "--samples", "2",
              "--final-seeds", "1", *RAY, "--no-progress").output
    assert "sweep: 3 of 3 trials completed" in out
    run_dir = only_run(results_dir)
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["config"]["executor"] == "ray"
    assert len(manifest["trials"]) == 3
    assert all(t["status"] == "completed" and t["node"] for t in manifest["trials"].values())
    assert [s["phase"] for s in read_json(run_dir / "sweep.json")["slots"]] == ["search", "search", "final"]
