"""The local executor: every trial in this process, one after another."""

from __future__ import annotations


def execute_local(run) -> dict[str, str]:
    """Run every unfinished trial; returns ``{trial: status}``."""
    from bench.runner import run_trial

    statuses = {}
    for model in run.config.models:
        for seed in run.config.seeds:
            statuses[f"{model}-s{seed}"] = run_trial(run, model, seed)
    return statuses
