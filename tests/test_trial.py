"""A trial is (model, options, seed): two settings of one model share a run folder."""

from __future__ import annotations

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
