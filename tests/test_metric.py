"""bench.metric: a metric plugin's columns reach the rows, the summary and the report."""

from __future__ import annotations

import pytest
from helpers import SYNTH_RUN, only_run, write_plugin

from bench.metric import Metric, check_metric
from bench.store import read_json, read_jsonl
from bench.store.columns import Column

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


@pytest.mark.slow
def test_a_metric_from_a_plugin_reaches_rows_summary_and_report(cli, tmp_path, results_dir, monkeypatch):
    """Adding a metric is one registered function: no harness or report file changes."""
    import bench.evaluation

    plugin = write_plugin(tmp_path, "toy_metric.py", TOY_METRIC)
    # Only the toy metric: the built-in sample metrics would need the Inception weights.
    from bench.plugins import Plugins

    real = Plugins.metric_objects
    monkeypatch.setattr(Plugins, "metric_objects",
                        lambda self: {k: v for k, v in real(self).items() if k == "pixel-std-gap"})
    monkeypatch.setattr(bench.evaluation, "resolve_weights_path", lambda path: path)
    listed = cli("list", "--plugin", plugin).output
    assert "pixel-std-gap" in listed and "columns: pixel_std_gap" in listed
    cli("run", "--plugin", plugin, "--models", "gan", *SYNTH_RUN, "--set", "gan.width=8",
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


@pytest.mark.parametrize("change, message", [
    ({"compute": "not a function"}, "is not callable"),
    ({"columns": ()}, "at least one bench.Column"),
    ({"columns": ("sharpness",)}, "at least one bench.Column"),
    ({"columns": (Column("a", "a"), Column("a", "again"))}, "declares a column twice: a, a"),
    ({"needs": "labels"}, "needs is 'labels'"),
])
def test_check_metric_names_what_is_wrong(change, message):
    good = {"compute": lambda ctx: {"a": 1.0}, "columns": (Column("a", "a"),)}
    check_metric(Metric(**good))  # the unchanged metric passes
    with pytest.raises(ValueError, match=message):
        check_metric(Metric(**{**good, **change}))
    with pytest.raises(ValueError, match="is not a bench.Metric"):
        check_metric(good)


def test_keys_are_the_columns_in_order():
    metric = Metric(lambda ctx: {}, [Column("b", "b"), Column("a", "a")])
    assert metric.columns == (Column("b", "b"), Column("a", "a")) and metric.keys == ("b", "a")
