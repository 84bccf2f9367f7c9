"""`bench sweep`: reproducible draws, equal trial counts, kill -9 and resume, Ray, the report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import fixed_peak, requires_weights

import bench.run
from bench.config import RunConfig, RunError
from bench.space import LogUniform, parse_distribution
from bench.store import read_json, read_jsonl
from bench.sweep.run import SweepProtocol, add_search_slots, search_spaces, start_sweep
from bench.sweep.study import ask_settings

# A tiny but real sweep: 3-step trials of small networks, FID on 8 samples against 16 images.
TRIALS = ["--dataset", "synthetic:128", "--budget", "3steps", "--batch-size", "16", "--log-every", "3",
          "--eval-samples", "4", "--ref-samples", "8", "--recon-samples", "4", "--set", "gan.width=8",
          "--set", "gan.latent=16"]
VAE = ["--set", "vae.width=8", "--set", "vae.latent=16"]


@pytest.fixture(autouse=True)
def quick_peak(monkeypatch):
    """The MFU denominator is a constant here (its matmul benchmark is not what is tested)."""
    monkeypatch.setattr(bench.run, "cached_peaks", fixed_peak)


def config(**overrides) -> RunConfig:
    values = dict(models=["gan", "vae"], dataset="synthetic:128", budget="3steps", batch_size=16,
                  eval_samples=8, ref_samples=16, options={"gan": {"width": 8}, "vae": {"width": 8}})
    return RunConfig(**{**values, **overrides})


def drawn(tmp_path, name, seed, overrides=None, k=4):
    """The search slots a sweep with this seed would write: (model, options), K per variant."""
    from bench.plugins import load_plugins

    spaces = search_spaces(load_plugins(), ["gan", "vae"], overrides or {})
    return [(model, options) for model, space in spaces.items()
            for options, _ in ask_settings(tmp_path / name, model, space, "random", seed, k, 0)]


@pytest.mark.slow
def test_settings_are_a_function_of_the_sweep_seed_and_lie_in_the_space(tmp_path):
    for name in "abcd":
        (tmp_path / name).mkdir()
    first = drawn(tmp_path, "a", 7)
    assert first == drawn(tmp_path, "b", 7)
    assert first != drawn(tmp_path, "c", 8)
    assert [m for m, _ in first] == ["gan"] * 4 + ["vae"] * 4
    for model, options in first:
        assert set(options) == ({"lr", "beta1"} | ({"beta"} if model == "vae" else set()))
        assert 1e-5 <= options["lr"] <= 1e-2 and 0 <= options["beta1"] <= 1
    narrow = drawn(tmp_path, "d", 7, {"gan": {"lr": "loguniform(1e-4,1e-3)", "beta1": "default"}})
    for model, options in narrow:
        if model == "gan":
            assert set(options) == {"lr"} and 1e-4 <= options["lr"] <= 1e-3


@pytest.mark.slow
def test_tpe_draws_new_settings_each_round_and_the_same_ones_again_from_the_same_seed(tmp_path):
    """The study is reopened every round; TPE's start-up draws must not repeat across rounds."""
    from bench.sweep.study import tell

    space = {"lr": LogUniform(1e-5, 1e-2), "beta1": parse_distribution("uniform(0,1)")}

    def three_rounds(folder):
        folder.mkdir()
        settings = []
        for round_ in range(3):
            asked = ask_settings(folder, "gan", space, "tpe", seed=5, count=2, already=2 * round_)
            settings += [options for options, _ in asked]
            tell(folder, "gan", "tpe", 5, [(number, 100.0 + number) for _, number in asked])
        return settings

    first = three_rounds(tmp_path / "a")
    assert len({tuple(sorted(s.items())) for s in first}) == 6
    assert three_rounds(tmp_path / "b") == first


@requires_weights
def test_bad_sweeps_are_refused_before_anything_is_written(tmp_path):
    root = tmp_path / "results"
    with pytest.raises(RunError, match="picks each variant's best setting by FID"):
        start_sweep(config(eval_samples=0), SweepProtocol(), root, "test", progress=False)
    with pytest.raises(RunError, match="--space-override names arvae"):
        start_sweep(config(), SweepProtocol(overrides={"arvae": {"lr": "uniform(0,1)"}}), root, "t", False)
    with pytest.raises(RunError, match="search space of gan: .*n_critic"):
        start_sweep(config(), SweepProtocol(overrides={"gan": {"n_critic": "int(1,5)"}}), root, "t", False)
    with pytest.raises(RunError, match=r"beta2=default: gan does not search beta2 \(it searches beta1, lr\)"):
        start_sweep(config(), SweepProtocol(overrides={"gan": {"beta2": "default"}}), root, "t", False)
    with pytest.raises(RunError, match="--objective fd_dinov2_s14: no selected metric writes such a column.*"
                                       "choose one of fid, fid_infinity, .*precision, recall"):
        start_sweep(config(), SweepProtocol(objective="fd_dinov2_s14"), root, "t", False)  # not --extractors
    assert not root.exists()


def test_the_objective_picks_each_variants_best_in_its_direction(tmp_path):
    """`--objective precision` (higher is better) picks the highest; the default, FID, the lowest."""
    from types import SimpleNamespace

    from bench.store import append_jsonl
    from bench.sweep import run as sweep_run

    values = {"gan-a-s0": (0.2, 30.0), "gan-b-s0": (0.9, 50.0), "gan-c-s0": (0.5, 40.0)}
    for trial, (precision, fid) in values.items():
        append_jsonl(tmp_path / "metrics.jsonl", {"trial": trial, "model": "gan", "eval_point": "final",
                                                  "status": "completed", "precision": precision, "fid": fid})
    for objective, better, best in (("precision", "higher", "gan-b-s0"), ("fid", "lower", "gan-a-s0")):
        state = {"slots": [{"model": "gan", "phase": "search", "index": i, "options": {"lr": i}, "trial": t}
                           for i, t in enumerate(values)], "chosen": {},
                 "protocol": {"metric": objective, "better": better, "final_seeds": 1, "trial_seed": 0,
                              "spaces": {"gan": {}}}}
        sweep = SimpleNamespace(directory=tmp_path, state=state, protocol=state["protocol"],
                                ctx=SimpleNamespace(config=config()), save=lambda: None)
        sweep_run._choose(sweep)
        assert state["chosen"]["gan"]["trial"] == best, objective


@requires_weights
def test_default_on_a_field_not_searched_is_refused_naming_the_searched_ones(cli, results_dir):
    out = cli("sweep", "--models", "gan", *TRIALS, "--space-override", "gan.beta2=default", "--no-progress",
              expect_exit=1).output
    assert out.strip().splitlines() == [
        "Error: --space-override gan.beta2=default: gan does not search beta2 (it searches beta1, lr), so it "
        "already stays at its default; leave the override out"]
    assert not results_dir.exists()


def test_every_builtin_declares_a_valid_space_with_the_shared_ranges():
    from bench.plugins import load_plugins
    from bench.space import LUCIC_SHARED, space_of

    for entry in load_plugins().models:
        space = space_of(entry.obj)
        assert {"lr", "beta1"} <= set(space), entry.name
        assert space["lr"] == LUCIC_SHARED["lr"] == LogUniform(1e-5, 1e-2)
        assert space["beta1"] == LUCIC_SHARED["beta1"]
        assert parse_distribution(space["lr"].text()) == space["lr"]


def test_bench_list_prints_a_search_space(cli):
    out = cli("list", "--search-space", "wgan-gp").output
    assert "n_critic" in out and "choice(1,5)" in out and "lr" in out and "loguniform(1e-05,0.01)" in out
    assert "unknown model 'nope'" in cli("list", "--search-space", "nope", expect_exit=1).output


def finals(run_dir):
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("eval_point") == "final"]


@pytest.mark.slow
@requires_weights
def test_a_sweep_killed_mid_search_resumes_to_exactly_k_plus_s_trials(tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "BENCH_RESULTS_DIR": str(results), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.cli", "sweep", "--models", "gan,vae", *TRIALS, *VAE,
           "--samples", "2", "--final-seeds", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline, run_dir = time.time() + 240, None
    while time.time() < deadline:  # kill -9 once the first search trial has its row
        found = list(results.glob("*/metrics.jsonl"))
        if found and read_jsonl(found[0], growing=True):
            run_dir = found[0].parent
            break
        time.sleep(0.05)
    assert run_dir is not None, proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_json(run_dir / "sweep.json")
    assert len(finals(run_dir)) < 4  # killed during the search
    drawn_before = {s["trial"]: s["options"] for s in before["slots"]}
    assert len(drawn_before) == 4  # all K slots of both variants were written before training

    out = subprocess.run(cmd[:4] + ["--resume", str(run_dir), "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    state = read_json(run_dir / "sweep.json")
    for model in ("gan", "vae"):
        search = [s for s in state["slots"] if s["model"] == model and s["phase"] == "search"]
        final = [s for s in state["slots"] if s["model"] == model and s["phase"] == "final"]
        assert len(search) == 2 and len(final) == 1  # K + S, the same for every variant
        assert {s["trial"]: s["options"] for s in search} == {t: o for t, o in drawn_before.items()
                                                             if t.startswith(model + "-")}
        rows = {r["trial"]: r for r in finals(run_dir)}
        best = min(search, key=lambda s: rows[s["trial"]]["fid"])  # all finite here
        assert state["chosen"][model]["trial"] == best["trial"]
        assert all(s["options"] == best["options"] and s["seed"] == 1 for s in final)
    trials = [r["trial"] for r in finals(run_dir)]
    assert len(trials) == len(set(trials)) == 6  # every trial trained and evaluated exactly once

    import optuna

    study = optuna.load_study(study_name="gan", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    told = {t.number: t.value for t in study.trials}
    for slot in (s for s in state["slots"] if s["model"] == "gan" and s["phase"] == "search"):
        assert told[slot["optuna_number"]] == pytest.approx(rows[slot["trial"]]["fid"])
        assert study.trials[slot["optuna_number"]].params == pytest.approx(slot["options"])

    report = (run_dir / "report.md").read_text()
    for heading in ("which variant is best at equal search budget", "Training compute per variant",
                    "Search: FID over the samples", "Final: the best setting over fresh seeds"):
        assert heading in report
    assert (run_dir / "plots" / "sweep-fid.png").is_file()
    import pandas as pd

    table = pd.read_csv(run_dir / "sweep.csv")
    assert len(table) == 6 and set(table["phase"]) == {"search", "final"}
    compute = state["compute"]  # what each variant's trials used, recorded in the sweep folder
    assert {m: c["trials"] for m, c in compute.items()} == {"gan": 3, "vae": 3}
    assert {m: c["images"] for m, c in compute.items()} == {"gan": 3 * 3 * 16, "vae": 3 * 3 * 16}
    assert all(c["seconds"] > 0 and c["flops"] > 0 for c in compute.values()), compute
    assert (run_dir / "plots" / "sweep-expected-best.png").is_file()


PLUGIN = '''
import dataclasses
from bench import hookimpl
from bench.space import Categorical, LogUniform
from bench_plugins.gan import GAN, GANConfig

@dataclasses.dataclass
class ThirdConfig(GANConfig):
    steps_d: int = 1

class Third(GAN):
    Config = ThirdConfig
    search_space = {"lr": LogUniform(1e-4, 2e-4), "steps_d": Categorical((2, 3))}

@hookimpl
def bench_register_models(register):
    register("third", Third)
'''


@pytest.mark.slow
@requires_weights
def test_a_plugins_declared_space_is_the_one_drawn_from(tmp_path):
    plugin = tmp_path / "third.py"
    plugin.write_text(PLUGIN)
    sweep = start_sweep(config(models=["third"], options={"third": {"width": 8}}, plugin_files=[str(plugin)]),
                        SweepProtocol(samples=6, final_seeds=1), tmp_path / "results", "test", progress=False)
    add_search_slots(sweep)
    assert sweep.state["protocol"]["spaces"] == {"third": {"lr": "loguniform(0.0001,0.0002)",
                                                           "steps_d": "choice(2,3)"}}
    for slot in sweep.state["slots"]:
        assert set(slot["options"]) == {"lr", "steps_d"}
        assert 1e-4 <= slot["options"]["lr"] <= 2e-4 and slot["options"]["steps_d"] in (2, 3)
