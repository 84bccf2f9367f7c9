"""``--tracker mlflow``, read back with ``MlflowClient`` from the SQLite database in the run folder."""

from __future__ import annotations

import pytest
from helpers import SYNTH_RUN, TINY
from tracked_run import EVAL_STEPS, LOSS_STEPS, LOSSES, TRIALS

from bench.store import read_jsonl
from bench.trackers.mlflow import check_uri


@pytest.mark.parametrize("uri", ["http://mlflow.lab:5000", "https://mlflow.lab", "sqlite:////tmp/m.db",
                                 "sqlite:///m.db", "postgresql+psycopg2://u:p@db/mlflow", "file:///tmp/mlruns",
                                 "databricks", "databricks://profile"])
def test_tracking_uris_mlflow_takes_pass(uri):
    check_uri(uri)


@pytest.mark.parametrize("uri, problem", [
    ("localhost:5000", "no scheme MLflow knows"), ("mlruns", "no scheme"), ("http://", "no host"),
    ("http://host:port", "port that is not"), ("sqlite://", "no path"),
    ("ftp://host/x", "no scheme MLflow knows")])
def test_a_malformed_tracking_uri_is_said_with_the_forms_that_work(uri, problem):
    with pytest.raises(ValueError, match="is not a tracking URI") as error:
        check_uri(uri)
    assert problem in str(error.value) and "sqlite:///PATH" in str(error.value)


@pytest.mark.slow
def test_one_run_per_bench_run_one_nested_run_per_trial(tracked_run):
    """Params, metrics by step, tags and artifacts; the trial killed in its 4th step and resumed
    is one nested run, each of its steps once."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tracked_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bench").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.info.run_name == tracked_run.name]
    assert parent.info.status == "FINISHED" and parent.data.tags["status"] == "completed"
    params = parent.data.params
    assert params["budget"] == "4steps" and params["trackers"] == '["tensorboard", "mlflow"]'
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/results.csv"} <= report
    children = {r.info.run_name: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == sorted(TRIALS) and len(runs) == 3
    rows = read_jsonl(tracked_run / "metrics.jsonl")
    for name, child in children.items():
        run_id = child.info.run_id
        assert child.info.status == "FINISHED"
        assert {k: child.data.tags[k] for k in ("family", "backbone", "model", "status", "bench.trial")} == {
            "family": "vae", "backbone": "dcgan", "model": "dies", "status": "completed", "bench.trial": name}
        assert child.data.params["width"] == "8" and child.data.params["seed"] == name[-1]
        logged = read_jsonl(tracked_run / "trials" / name / "log.jsonl")
        for loss in LOSSES:
            history = client.get_metric_history(run_id, f"train/{loss}")
            assert sorted(m.step for m in history) == LOSS_STEPS, (name, loss)
            values = [m.value for m in sorted(history, key=lambda m: m.step)]
            assert values == pytest.approx([r[loss] for r in logged])
        assert sorted(m.step for m in client.get_metric_history(run_id, "train/images_per_s")) == LOSS_STEPS
        own = [r for r in rows if r["trial"] == name]
        for column in ("eval_seconds", "recon_mse", "recon_psnr", "train_images_per_s"):
            steps = [r["step"] for r in own if column in r]
            assert sorted(m.step for m in client.get_metric_history(run_id, f"eval/{column}")) == steps
        pictures = {a.path for step in EVAL_STEPS
                    for a in client.list_artifacts(run_id, f"images/step-{step:08d}")}
        assert pictures == {f"images/step-{step:08d}/{p}.png" for step in EVAL_STEPS
                            for p in ("samples", "reconstructions")}


@pytest.mark.slow
def test_a_tracking_server_that_is_down_is_one_warning(cli, results_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    out = cli("run", "--models", "gan", *SYNTH_RUN, *TINY, "--tracker", "mlflow",
              "--tracker-uri", "http://127.0.0.1:9").output
    warnings = [line for line in out.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "tracker 'mlflow' failed" in warnings[0], out
    assert "127.0.0.1" in warnings[0] and "gan-s0: completed" in out
    (row,) = read_jsonl(next(results_dir.iterdir()) / "metrics.jsonl")
    assert row["status"] == "completed"
