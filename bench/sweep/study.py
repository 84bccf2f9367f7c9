"""A sweep's Optuna studies, one per variant, in the sweep folder's SQLite database.

Optuna is the sampler and the record, not the scheduler: bench's executors run the trials.
The random sampler's settings are drawn by ``bench.space.sample_settings`` (a pure function
of the sweep seed, the variant and K) and entered into the study with ``enqueue_trial``, so the
database holds exactly the settings the sweep trains; TPE asks the study itself, from the
results told so far. Every finished search trial is told its FID (or FAIL), so tools that read
Optuna storages (``optuna-dashboard sqlite:///optuna.db``) show the study.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.space import Distribution, sample_settings, sampler_seed
from bench.store.layout import OPTUNA_FILE

SAMPLERS = ("random", "tpe")


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(directory: Path, model: str, sampler: str, seed: int):
    optuna = _optuna()
    storage = f"sqlite:///{Path(directory).resolve() / OPTUNA_FILE}"
    sampler_cls = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.RandomSampler
    chosen = sampler_cls(seed=sampler_seed(seed, model))  # random: the enqueued settings are used
    study = optuna.create_study(study_name=model, storage=storage, sampler=chosen, direction="minimize",
                                load_if_exists=True)
    # The study is reopened every round: a sampler seeded alike each time would draw TPE's random
    # start-up settings over again, so its seed moves on with the trials the study holds (still a
    # function of the sweep seed and the history, so a resumed sweep draws what it would have).
    held = len(study.get_trials(deepcopy=False))
    if held:
        study.sampler = sampler_cls(seed=sampler_seed(seed, model) + held)
    return study


def ask_settings(directory: Path, model: str, space: dict[str, Distribution], sampler: str, seed: int,
                 count: int, already: int) -> list[tuple[dict, int]]:
    """``count`` new settings for ``model`` (``already`` slots exist) as (options, Optuna trial
    number). Random: slots ``already .. already+count-1`` of the seed's fixed sequence."""
    study = open_study(directory, model, sampler, seed)
    fields = sorted(space)
    if sampler == "random":
        drawn = sample_settings(space, already + count, sampler_seed(seed, model), study_name=model)[already:]
        for options in drawn:
            study.enqueue_trial(options)
    out = []
    for _ in range(count):
        trial = study.ask()
        options = {field: space[field].suggest(trial, field) for field in fields}
        out.append((options, trial.number))
    return out


def tell(directory: Path, model: str, sampler: str, seed: int,
         results: list[tuple[int, float | None]]) -> None:
    """Record search trials' FIDs, (Optuna trial number, FID) each, in one opening of ``model``'s
    study (an FID of None or not finite: the trial failed or diverged)."""
    if not results:
        return
    optuna = _optuna()
    study = open_study(directory, model, sampler, seed)
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, value in results:
        if frozen[number].state.is_finished():
            continue  # told before a crash: nothing to do
        if value is None or not math.isfinite(value):
            study.tell(number, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(number, value)
