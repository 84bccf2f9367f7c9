"""The executor contract: how a run's trials are scheduled.

An executor gets the run context and the list of trials, runs every unfinished one through
``bench.trial.run_trial`` (here or elsewhere), records each in the manifest
(``bench.store.record_trial``) and returns ``{trial name: status}``. Its own options are a
dataclass named in ``bench.executors.EXECUTOR_OPTIONS`` (torch-free, so that the command line
makes their flags), filled from ``RunConfig.executor_options``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import torch

from bench.config import RunError
from bench.device import resolve_device
from bench.executors import options_class
from bench.trial import RunContext, TrialSpec


@dataclasses.dataclass
class NoOptions:
    """An executor without options of its own."""


class Executor(abc.ABC):
    name: ClassVar[str] = ""

    def __init__(self, options: dict | None = None):
        cls = options_class(self.name) or NoOptions
        unknown = sorted(set(options or {}) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise RunError(f"executor {self.name!r} has no option(s) {', '.join(unknown)}")
        self.options = cls(**(options or {}))

    def check(self) -> None:  # noqa: B027 (most executors have nothing to check)
        """Fail before anything is written if this executor cannot be used here."""

    def driver_device(self, spec: str) -> torch.device:
        """The device of the process that runs ``bench run`` (it must exist when it trains)."""
        return resolve_device(spec)

    def trains_on_cuda(self, spec: str) -> bool:
        """Whether trials train on CUDA (bf16 autocast is on by default there)."""
        try:
            return resolve_device(spec).type == "cuda"
        except ValueError:
            return False

    @abc.abstractmethod
    def execute(self, ctx: RunContext, trials: list[TrialSpec]) -> dict[str, str]:
        """Run every unfinished trial; returns ``{trial name: status}`` in the order given."""
