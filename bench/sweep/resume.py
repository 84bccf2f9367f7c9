"""``bench sweep --resume``: an existing sweep folder, checked before anything trains.

    open_sweep(directory, ...)   sweep.json read and checked (``bench.store.sweep``), the run
                                 reopened from its manifest, optuna.db checked against sweep.json
                                 (and rebuilt), K raised by ``--add-samples`` -> a Sweep ready
                                 for ``run_sweep``

``sweep.json`` and the trials' rows are the record; ``optuna.db`` is derived from them: a missing
or damaged one is set aside (renamed, never deleted: it may hold what a user wants to look at) and
rebuilt, with a warning, and the sweep goes on. Nothing here retrains a finished trial.
"""

from __future__ import annotations

from pathlib import Path

from bench.config import RunError
from bench.run import open_run
from bench.space import parse_distribution
from bench.store import StoreError
from bench.store.layout import OPTUNA_FILE
from bench.store.sweep import read_sweep
from bench.sweep.run import Sweep, spaces_of
from bench.sweep.study import rebuild_studies, study_problem


def open_sweep(directory: Path, progress: bool = True, warn=None, add_samples: int = 0) -> Sweep:
    """The sweep in ``directory``; RunError (one line) if its sweep.json is missing or damaged.
    ``warn(line)`` hears of a rebuilt optuna.db. ``add_samples`` N raises K by N: ``run_sweep``
    then draws the N more settings per variant (the random sampler's next N, so the same settings
    a sweep of K + N would have drawn), trains them and chooses each variant's best again."""
    directory = Path(directory)
    try:
        state = read_sweep(directory, parse_distribution)
    except StoreError as exc:
        raise RunError(str(exc)) from None
    sweep = Sweep(open_run(directory, progress), state)
    note = repair_study(sweep)
    if note and warn is not None:
        warn(note)
    if add_samples:
        if add_samples < 1:
            raise RunError(f"--add-samples {add_samples}: give a whole number >= 1")
        sweep.protocol["samples"] += add_samples
        sweep.protocol["added_samples"] = [*sweep.protocol.get("added_samples", []), add_samples]
        sweep.save()  # with its new digest: the one change of the protocol bench makes itself
    return sweep


def repair_study(sweep: Sweep) -> str | None:
    """optuna.db made to hold what sweep.json says, before anything trains; what was done, or None."""
    problem = study_problem(sweep.directory, sweep.state)
    if problem is None:
        return None
    path = sweep.directory / OPTUNA_FILE
    aside = None
    if path.exists():
        aside = _free_name(path)
        path.rename(aside)
    rebuild_studies(sweep.directory, sweep.state, spaces_of(sweep))
    kept = f"the old one is kept as {aside.name}; " if aside else ""
    return (f"{path} {problem}; it is derived state, so it was rebuilt from sweep.json and the trials' rows "
            f"({kept}no trial is retrained)")


def _free_name(path: Path) -> Path:
    k = 1
    while path.with_name(f"{path.name}.damaged-{k}").exists():
        k += 1
    return path.with_name(f"{path.name}.damaged-{k}")
