"""What a plugin author meets: plugins that register nothing, typed --set values, missing plugin
files, exit codes, retrying failed trials, diverged trials, and what runs record about variants."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from conftest import TINY, only_run

from bench.store import read_json, read_jsonl

SYNTH = ["--dataset", "synthetic:128", "--budget", "4steps", "--batch-size", "16", "--log-every", "2",
         "--no-progress"]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_plugin_that_registers_nothing_is_named(cli, tmp_path, results_dir):
    plugin = write(tmp_path, "forgot.py", '''
        from bench_plugins.gan import GAN

        class Mine(GAN):
            pass

        def bench_register_models(register):  # no @hookimpl: pluggy never calls it
            register("mine", Mine)
    ''')
    out = cli("run", "--plugin", plugin, "--models", "mine", *SYNTH, *TINY, expect_exit=1).output
    assert "unknown model(s): mine" in out
    assert f"plugin '{plugin}'" in out and "registered nothing" in out and "@bench.hookimpl" in out
    assert not results_dir.exists()
    listed = cli("list", "--plugin", plugin).output
    assert "registered nothing" in listed


@pytest.mark.parametrize("setting, message", [
    ("vae.beta=abc", "--set vae.beta=abc: beta takes a number, and 'abc' is not that"),
    ("vae.width=2.5", "--set vae.width=2.5: width takes an integer, and '2.5' is not that"),
    ("gan.loss=wgan", "--set gan.loss=wgan: loss takes one of 'nonsaturating', 'hinge'"),
])
def test_set_values_are_checked_against_the_field_type_before_training(cli, results_dir, setting, message):
    out = cli("run", "--models", "gan,vae", *SYNTH, "--eval-samples", "0", "--set", setting,
              expect_exit=1).output
    assert message in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1  # one line
    assert not results_dir.exists()  # nothing written, nothing trained


def test_set_values_are_stored_with_their_field_type(cli, results_dir):
    cli("run", "--models", "vae", *SYNTH, "--eval-samples", "0", "--set", "vae.beta=2",
        "--set", "vae.width=8", "--set", "vae.latent=16")
    manifest = read_json(only_run(results_dir) / "manifest.json")
    assert manifest["config"]["options"]["vae"] == {"beta": 2.0, "width": 8, "latent": 16}
    assert isinstance(manifest["config"]["options"]["vae"]["beta"], float)
    # every variant's full resolved config and the version of what registered it
    vae = manifest["models"]["vae"]
    assert vae["config"]["beta"] == 2.0 and vae["config"]["sigma"] == 0.15 and vae["config"]["lr"] == 2e-4
    assert vae["source"] == "built-in" and vae["version"] == manifest["versions"]["bench"]
    assert [c["key"] for c in manifest["columns"]][:2] == ["fid", "fid_infinity"]
    # the checkpoint says what produced it
    state = torch.load(only_run(results_dir) / "trials" / "vae-s0" / "checkpoint.pt", weights_only=True)
    assert state["run_config"]["options"]["vae"]["beta"] == 2.0
    assert state["variant_config"]["beta"] == 2.0 and state["variant_config"]["width"] == 8


def test_a_missing_plugin_file_is_an_error_before_training(cli, tmp_path, results_dir):
    missing = tmp_path / "nope.py"
    out = cli("run", "--plugin", missing, "--models", "gan", *SYNTH, *TINY, expect_exit=1).output
    assert f"--plugin {missing}: no such file" in out and "Traceback" not in out
    assert not results_dir.exists()


FLAKY = '''
from pathlib import Path

from bench_plugins.gan import GAN
from bench import hookimpl

FLAG = Path(__file__).with_name("broken")

class Flaky(GAN):
    """Raises while the file `broken` sits beside this plugin."""

    def train_step(self, batch):
        if FLAG.exists():
            raise RuntimeError("flaky is broken")
        return super().train_step(batch)

@hookimpl
def bench_register_models(register):
    register("flaky", Flaky)
'''


def test_failed_trials_exit_3_and_retry_failed_trains_them_again(cli, tmp_path, results_dir):
    plugin = write(tmp_path, "flaky.py", FLAKY)
    (tmp_path / "broken").write_text("")
    out = cli("run", "--plugin", plugin, "--models", "flaky,gan", *SYNTH, *TINY, "--set", "flaky.width=8",
              expect_exit=3).output
    assert "flaky-s0: failed" in out and "gan-s0: completed" in out and "--retry-failed" in out
    run = only_run(results_dir)
    assert (run / "report.md").is_file()  # the report is written before the exit status

    # --resume alone keeps it, says so, and says how to retry
    out = cli("run", "--resume", run, expect_exit=3).output
    assert "flaky-s0: kept as failed (RuntimeError: flaky is broken)" in out
    assert f"bench run --resume {run} --retry-failed" in out

    (tmp_path / "broken").unlink()  # the bug is fixed
    out = cli("run", "--resume", run, "--retry-failed").output
    assert "flaky-s0: completed" in out and "gan-s0: completed" in out
    rows = read_jsonl(run / "metrics.jsonl")
    assert [(r["model"], r["status"]) for r in rows] == [("gan", "completed"), ("flaky", "completed")]
    retired = run / "retired" / "flaky-s0-1"
    assert (retired / "error.txt").is_file() and "flaky is broken" in (retired / "error.txt").read_text()
    (old,) = read_jsonl(retired / "metrics.jsonl")
    assert old["status"] == "failed"
    manifest = read_json(run / "manifest.json")
    assert manifest["trials"]["flaky-s0"]["status"] == "completed"
    assert manifest["retired"][0]["trial"] == "flaky-s0"


def test_resume_refuses_options_it_would_ignore(cli, tmp_path, results_dir):
    cli("run", "--models", "gan", *SYNTH, *TINY)
    run = only_run(results_dir)
    out = cli("run", "--resume", run, "--budget", "8steps", "--seeds", "2", expect_exit=2).output
    assert "does not take --budget, --seeds" in out and "start a new run" in out
    out = cli("run", "--models", "gan", *SYNTH, *TINY, "--retry-failed", expect_exit=2).output
    assert "--retry-failed needs --resume" in out


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
    plugin = write(tmp_path, "explodes.py", EXPLODES)
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
    plugin = write(tmp_path, "badmetric.py", '''
        from bench import Column, Metric, hookimpl

        def broken(ctx):
            raise ValueError("no luck")

        @hookimpl
        def bench_register_metrics(register):
            register("broken", Metric(broken, (Column("broken_value", "broken value"),), needs="nothing"))
    ''')
    cli("run", "--plugin", plugin, "--models", "gan", *SYNTH, *TINY)
    (row,) = read_jsonl(only_run(results_dir) / "metrics.jsonl")
    assert row["status"] == "completed" and row["broken_value"] is None
    assert row["metric_errors"] == {"broken": "ValueError: no luck"}
    json.dumps(row)


TOY_METRIC = '''
import torch
from bench import Column, Metric, hookimpl

def pixel_std_gap(ctx):
    fake = ctx.samples
    real = ctx.dataset.split("test").images.float() / 127.5 - 1
    return {"pixel_std_gap": float((fake.std(0) - real.std(0)).abs().mean())}

@hookimpl
def bench_register_metrics(register):
    register("pixel-std-gap", Metric(pixel_std_gap,
             columns=(Column("pixel_std_gap", "pixel std gap", better="lower", unit="a.u."),)))
'''


def test_a_metric_from_a_plugin_reaches_rows_summary_and_report(cli, tmp_path, results_dir, monkeypatch):
    """Adding a metric is one registered function: no harness or report file changes."""
    import bench.evaluation

    plugin = write(tmp_path, "toy_metric.py", TOY_METRIC)
    # Only the toy metric: the built-in sample metrics would need the Inception weights.
    from bench.plugins import Plugins

    real = Plugins.metric_objects
    monkeypatch.setattr(Plugins, "metric_objects",
                        lambda self: {k: v for k, v in real(self).items() if k == "pixel-std-gap"})
    monkeypatch.setattr(bench.evaluation, "resolve_weights_path", lambda path: path)
    listed = cli("list", "--plugin", plugin).output
    assert "pixel-std-gap" in listed and "columns: pixel_std_gap" in listed
    cli("run", "--plugin", plugin, "--models", "gan", *SYNTH, "--set", "gan.width=8",
        "--set", "gan.latent=16", "--eval-samples", "16", "--seeds", "2")
    run = only_run(results_dir)
    rows = read_jsonl(run / "metrics.jsonl")
    assert all(r["pixel_std_gap"] > 0 for r in rows)
    manifest = read_json(run / "manifest.json")
    assert {"key": "pixel_std_gap", "label": "pixel std gap", "better": "lower", "unit": "a.u."}.items() <= \
        next(c for c in manifest["columns"] if c["key"] == "pixel_std_gap").items()
    summary = (run / "summary.csv").read_text()
    assert "pixel_std_gap" in summary
    report = (run / "report.md").read_text()
    assert "pixel std gap (a.u.)" in report.replace("\\", "")
    assert "pixel_std_gap" in (run / "results.csv").read_text().splitlines()[0]
