"""The tracker contract: a tracker that raises costs one warning, never a trial."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SYNTH_RUN, TINY, write_plugin

from bench.store import read_jsonl
from bench.trackers import SafeTrackers, Tracker, TrialInfo
from bench.trackers.base import flat, row_metrics


class Recording(Tracker):
    def __init__(self, uri=None, state=None):
        super().__init__(uri, state)
        self.calls = []

    def log_train(self, step, values):
        self.calls.append(("log_train", step))

    def end_trial(self, status, final_row):
        self.calls.append(("end_trial", status))


class Raising(Recording):
    def log_train(self, step, values):
        super().log_train(step, values)
        raise ConnectionError("tracking server down")


def info(name: str) -> TrialInfo:
    return TrialInfo(run_id="r", trial=name, model="gan", family="gan", backbone=None, seed=0, config={},
                     run_config={}, directory=Path("."))


def test_a_raising_tracker_warns_once_and_is_off_for_the_rest_of_the_trial(capsys):
    good, bad = Recording(), Raising()
    trackers = SafeTrackers({"good": good, "bad": bad})
    trackers.start_trial(info("gan-s0"))
    for step in (1, 2, 3):
        trackers.log_train(step, {"loss": 1.0})
    trackers.end_trial("completed", {})
    assert good.calls == [("log_train", 1), ("log_train", 2), ("log_train", 3), ("end_trial", "completed")]
    assert bad.calls == [("log_train", 1)]
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["bench: warning: tracker 'bad' failed (log_train: ConnectionError: tracking server "
                     "down); it logs nothing more for trial gan-s0, which goes on"]
    trackers.start_trial(info("gan-s1"))  # the next trial tries it again
    trackers.log_train(1, {})
    assert bad.calls[-1] == ("log_train", 1) and "trial gan-s1" in capsys.readouterr().err


def test_a_tracker_that_fails_at_the_run_start_is_off_for_the_run(capsys):
    class DownAtStart(Recording):
        def start_run(self, run):
            raise OSError("no route to host")

    down = DownAtStart()
    trackers = SafeTrackers({"down": down})
    trackers.start_run(None)
    trackers.start_trial(info("gan-s0"))
    trackers.log_train(1, {})
    trackers.end_run("completed", None)
    assert down.calls == [] and not trackers.active
    assert capsys.readouterr().err.count("warning") == 1


def test_what_every_tracker_is_given_is_flat_scalars():
    assert flat({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": {}, "f": True}) == {
        "a.b": 1, "a.c": "[1, 2]", "d": "None", "e": "{}", "f": True}
    row = {"trial": "gan-s0", "seed": 3, "step": 8, "fid": 12.5, "small_n": True, "eval_ref": "train",
           "mfu": 0}
    assert row_metrics(row) == {"fid": 12.5, "mfu": 0.0}


RAISING_PLUGIN = """
    from bench import Tracker, hookimpl


    @hookimpl
    def bench_register_trackers(register):
        register("flaky", Flaky)


    class Flaky(Tracker):
        \"\"\"A tracker whose server is gone by the first logging interval.\"\"\"

        def log_train(self, step, values):
            raise RuntimeError("flaky tracker")
"""


@pytest.mark.slow
def test_a_raising_plugin_tracker_leaves_the_trial_completed(cli, results_dir, tmp_path):
    """A third party's tracker (``--plugin``) that raises: one warning, the run as without it."""
    plugin = write_plugin(tmp_path, "flaky.py", RAISING_PLUGIN)
    out = cli("run", "--models", "gan", *SYNTH_RUN, *TINY, "--plugin", plugin, "--tracker", "flaky").output
    assert out.count("warning") == 1
    assert "tracker 'flaky' failed (log_train: RuntimeError: flaky tracker)" in out
    assert "gan-s0: completed" in out
    (row,) = read_jsonl(next(results_dir.iterdir()) / "metrics.jsonl")
    assert row["status"] == "completed" and row["step"] == 4
