"""The local executor: every trial in this process, one after another."""

from __future__ import annotations

from bench.executors.base import Executor
from bench.store import record_trial
from bench.store.rows import read_rows
from bench.trial import RunContext, TrialSpec, finished_status, run_trial


class LocalExecutor(Executor):
    name = "local"

    def execute(self, ctx: RunContext, trials: list[TrialSpec]) -> dict[str, str]:
        statuses = {}
        for spec in trials:
            done = finished_status(ctx, spec, read_rows(ctx.directory))
            if done is not None:
                statuses[spec.name] = done
                continue
            result = run_trial(ctx, spec)
            record_trial(ctx.directory, spec.name, result.entry)
            statuses[spec.name] = result.status
        return statuses
