"""The built-in trackers register through the hook a third party's uses; `bench list` shows them."""

from __future__ import annotations

import sys

import pytest
from helpers import SYNTH_RUN, TINY, one_line_error

from bench.trackers.builtin import BUILTIN_TRACKERS


def test_the_built_in_trackers_are_registered_as_a_plugin_is(cli):
    from helpers import plugins

    registered = plugins().trackers
    assert registered.names()[:2] == ["tensorboard", "mlflow"]
    for name, cls in BUILTIN_TRACKERS.items():
        entry = registered.get(name)
        assert entry.obj is cls and entry.source == "built-in" and entry.plugin == "bench.trackers.builtin"
    out = cli("list").output
    assert "trackers:" in out and "  tensorboard" in out and "  mlflow" in out


@pytest.mark.parametrize("tracker, module, needle", [("mlflow", "mlflow", "needs MLflow"),
                                                     ("tensorboard", "tensorboard", "needs the tensorboard")])
def test_a_tracker_not_installed_names_its_extra_before_anything_runs(cli, results_dir, monkeypatch, tracker,
                                                                      module, needle):
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` raises ImportError
    out = cli("run", "--models", "gan", *SYNTH_RUN, *TINY, "--tracker", tracker, expect_exit=1).output
    one_line_error(out, f"--tracker {tracker}: {needle}", f"pip install 'bench-gen[{tracker}]'")
    assert not results_dir.exists()
