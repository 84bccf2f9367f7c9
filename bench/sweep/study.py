"""A sweep's Optuna studies, one per variant, in the sweep folder's SQLite database.

Optuna is the sampler and the record, not the scheduler: bench's executors run the trials.
The random sampler's settings are drawn by ``bench.space.sample_settings`` (a pure function
of the sweep seed, the variant and K) and entered into the study with ``enqueue_trial``, so the
database holds exactly the settings the sweep trains; TPE asks the study itself, from the
results told so far. Every finished search trial is told its FID (or FAIL), so tools that read
Optuna storages (``optuna-dashboard sqlite:///optuna.db``) show the study.

The database is derived state: ``sweep.json``'s search slots (setting, Optuna trial number, FID
told) hold all it holds, so ``study_problem`` checks it against them and ``rebuild_studies``
makes it again from them (``bench.sweep.resume`` sets a damaged one aside first).
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.space import Distribution, sample_settings, sampler_seed
from bench.store.layout import OPTUNA_FILE
from bench.store.sweep import SEARCH, slots


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(directory: Path) -> str:
    return f"sqlite:///{Path(directory).resolve() / OPTUNA_FILE}"


def open_study(directory: Path, model: str, sampler: str, seed: int):
    optuna = _optuna()
    storage = _storage(directory)
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


def study_problem(directory: Path, state: dict) -> str | None:
    """Why ``optuna.db`` does not hold what sweep.json's search slots say it does (missing, not
    a database, a study or trial missing, a setting or FID that differs), or None. The database may
    be ahead of sweep.json (a FID told just before a kill), never behind it."""
    if not any(True for _ in slots(state, phase=SEARCH)):
        return None  # nothing drawn yet: the first draw creates the studies
    if not (Path(directory) / OPTUNA_FILE).is_file():
        return "is missing"
    optuna = _optuna()
    try:
        for model in state["protocol"]["spaces"]:
            search = slots(state, model, SEARCH)
            if not search:
                continue
            study = optuna.load_study(study_name=model, storage=_storage(directory))
            trials = {t.number: t for t in study.get_trials(deepcopy=False)}
            for slot in search:
                problem = _trial_problem(trials.get(slot["optuna_number"]), slot)
                if problem:
                    return f"does not match sweep.json: study {model}, {problem}"
    except Exception as exc:  # sqlalchemy's "file is not a database", optuna's missing study, ...
        return f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def _trial_problem(trial, slot: dict) -> str | None:
    number = slot["optuna_number"]
    if trial is None:
        return f"trial {number} is missing"
    if set(trial.params) != set(slot["options"]) or any(
            not _same(trial.params[k], v) for k, v in slot["options"].items()):
        return f"trial {number} has another setting than slot {slot['trial']}"
    told = slot.get("told")
    if told is None:
        return None
    if not trial.state.is_finished():
        return f"trial {number} was never told its result"
    if isinstance(told, (int, float)) and not (trial.value is not None and _same(trial.value, told)):
        return f"trial {number} holds another FID than slot {slot['trial']}"
    return None


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):  # JSON and SQLite may round a float differently
        numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
        return numbers and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def rebuild_studies(directory: Path, state: dict, spaces: dict[str, dict[str, Distribution]]) -> None:
    """Make ``optuna.db`` (absent: the caller set the old one aside) from sweep.json's search slots:
    each model's trials with the slots' Optuna numbers, settings and told FIDs (or FAIL); a slot
    not told yet stays running and is told when its trial finishes, from its rows."""
    optuna = _optuna()
    for model, space in spaces.items():
        by_number = {s["optuna_number"]: s for s in slots(state, model, SEARCH)}
        if not by_number:
            continue
        # Every setting is enqueued, so the sampler draws nothing; the protocol's one is reopened later.
        study = open_study(directory, model, "random", state["protocol"]["seed"])
        for number in range(max(by_number) + 1):
            slot = by_number.get(number)
            if slot is not None:
                study.enqueue_trial(slot["options"])
            trial = study.ask()
            if slot is None:  # a number asked before a kill, its slot never saved: kept as a failure
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            for field in sorted(space):
                space[field].suggest(trial, field)
            told = slot.get("told")
            if isinstance(told, (int, float)) and math.isfinite(told):
                study.tell(trial, told)
            elif told is not None:  # failed, diverged or without a FID
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
