"""Executors: how a run's trials (variant x seed) are scheduled.

- ``local`` (default): one trial after another in this process (``bench.executors.local``);
- ``ray``: each trial is one Ray task on a Ray cluster (``bench.executors.ray_executor``);
  Ray is an optional extra, ``pip install 'bench-gen[ray]'``.

Every executor writes the same run folder in the same format, so ``bench report`` cannot
tell which one produced it.
"""

from __future__ import annotations

import importlib

import torch

from bench.device import DeviceError, resolve_device

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'bench-gen[ray]' (or pip install ray)"


def check_executor(config) -> None:
    """Fail before anything is written if the run's executor cannot be used here."""
    from bench.runner import RunError

    if config.executor not in EXECUTORS:
        raise RunError(f"unknown executor {config.executor!r}; use {' or '.join(EXECUTORS)}")
    if config.executor != "ray":
        return
    try:
        importlib.import_module("ray")
    except ImportError:
        raise RunError(f"--executor ray needs Ray, which is not installed here: {RAY_INSTALL_HINT}") from None
    if not config.cpus_per_trial > 0:
        raise RunError("--cpus-per-trial must be more than 0")
    if config.gpus_per_trial < 0:
        raise RunError("--gpus-per-trial must be 0 or more")
    if config.max_retries < 0:
        raise RunError("--max-retries must be 0 or more")


def driver_device(config) -> torch.device:
    """The device of the process that runs ``bench run``.

    With the local executor it trains every trial, so it must exist. With Ray the trials
    train on the workers (which check ``--device`` themselves); a driver without CUDA can
    still schedule a CUDA run, and describes itself as the CPU in the manifest.
    """
    try:
        return resolve_device(config.device)
    except DeviceError:
        if config.executor == "local" or not str(config.device).strip().lower().startswith("cuda"):
            raise
        return torch.device("cpu")


def execute_with(run) -> dict[str, str]:
    """Run every unfinished trial of ``run`` with its configured executor."""
    if run.config.executor == "ray":
        from bench.executors.ray_executor import execute_ray

        return execute_ray(run)
    from bench.executors.local import execute_local

    return execute_local(run)
