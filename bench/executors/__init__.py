"""Executors: how a run's trials are scheduled, by name.

- ``local`` (default): one trial after another in this process (``local.py``);
- ``ray``: each trial is one Ray task on a Ray cluster (``ray_executor.py``); Ray is an
  optional extra, ``pip install 'bench-gen[ray]'``, imported only when a run uses it.

Every executor writes the same run folder in the same format, so ``bench report`` cannot
tell which one produced it.
"""

from __future__ import annotations

import importlib

from bench.config import RunError

# name -> "module:class", imported when a run uses it (this package loads without torch)
EXECUTORS = {
    "local": "bench.executors.local:LocalExecutor",
    "ray": "bench.executors.ray_executor:RayExecutor",
}
# name -> "module:class" of the executor's options dataclass (its ``Options``), for the command
# line: torch-free, each field declares its flag (``bench.options``)
EXECUTOR_OPTIONS = {
    "ray": "bench.executors.ray_options:RayOptions",
}


def executor_class(name: str):
    if name not in EXECUTORS:
        raise RunError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")
    return _load(EXECUTORS[name])


def options_class(name: str) -> type | None:
    """The options dataclass of executor ``name`` (None: it has none), imported without torch."""
    return _load(EXECUTOR_OPTIONS[name]) if name in EXECUTOR_OPTIONS else None


def _load(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def make_executor(name: str, options: dict | None = None):
    """The executor ``name`` (a ``bench.executors.base.Executor``) with its options, checked
    to be usable here."""
    executor = executor_class(name)(options)
    executor.check()
    return executor


__all__ = ["EXECUTORS", "EXECUTOR_OPTIONS", "executor_class", "make_executor", "options_class"]
