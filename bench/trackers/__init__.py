"""Trackers: a live view of a run in TensorBoard, MLflow or a plugin's tool.

The contract is ``base.Tracker``; the built-ins (``tensorboard``, ``mlflow``) register through
``bench_register_trackers`` in ``builtin`` as a third party's would. ``make_trackers`` builds
the ones a run chose (``--tracker``), each guarded by ``SafeTrackers``. Nothing here imports
torch, TensorBoard or MLflow until a tracker is used.
"""

from __future__ import annotations

from bench.trackers.base import RunInfo, SafeTrackers, Tracker, TrialInfo, check_tracker_class, row_metrics


def make_trackers(registry, names, uri: str | None = None, state: dict | None = None) -> SafeTrackers:
    """The trackers ``names`` from ``registry`` (``Plugins.trackers``), each given the run's
    ``--tracker-uri`` and what its ``start_run`` recorded (``state``: name -> dict)."""
    state = state or {}
    return SafeTrackers({name: registry.get(name).obj(uri, state.get(name)) for name in names})


__all__ = ["RunInfo", "SafeTrackers", "Tracker", "TrialInfo", "check_tracker_class", "make_trackers",
           "row_metrics"]
