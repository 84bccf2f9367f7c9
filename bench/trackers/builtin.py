"""The built-in trackers, registered through the plugin hook like a third party's."""

from bench.hookspecs import hookimpl
from bench.trackers.mlflow import MLflowTracker
from bench.trackers.tensorboard import TensorBoardTracker

BUILTIN_TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker}


@hookimpl
def bench_register_trackers(register):
    for name, tracker in BUILTIN_TRACKERS.items():
        register(name, tracker)
