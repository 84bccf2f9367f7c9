"""``sweep.json``: a sweep's protocol and its trial slots, in the sweep's run folder.

A sweep folder is a run folder (manifest, ``metrics.jsonl``, ``trials/``) plus this file and
the Optuna studies (``optuna.db``). The file holds::

    {"format": 1,
     "protocol": {"samples": K, "final_seeds": S, "seed": 0, "sampler": "random", "metric": "fid",
                  "better": "lower", "trial_seed": 0,
                  "spaces": {model: {field: "loguniform(1e-05,0.01)", ...}}},
     "slots": [{"model", "phase": "search" | "final", "index", "options", "seed", "trial",
                "backbone", "optuna_number", "told"}, ...],
     "chosen": {model: {"trial", "options", "value"} | {"trial": null, "reason": "..."}},
     "compute": {model: {"trials", "seconds", "images", "flops"}},
     "protocol_digest": "..."}

``--add-samples N`` raises K (``protocol.samples``; ``protocol.added_samples`` lists each N) and
may mark a variant's final slots ``"superseded": true`` when its best setting changed. Any other
change of the protocol is a hand edit, refused by its digest.

A slot is written before its trial runs and never changes, so a resumed sweep trains exactly
the settings it drew first (``bench sweep --resume``). This file and the trials' rows are the
record of truth; ``optuna.db`` is derived from them and rebuilt when it is lost.

``read_sweep`` checks the whole file against this format before anyone uses it: damage (a
hand edit, a partial copy) is one ``StoreError`` naming the file and the first thing wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from bench.store.files import StoreError, write_json
from bench.store.layout import MANIFEST_FILE, OPTUNA_FILE, SWEEP_FILE

SWEEP_FORMAT = 1
SEARCH, FINAL = "search", "final"
SAMPLERS = ("random", "tpe")


def is_sweep(run_dir: Path) -> bool:
    return (Path(run_dir) / SWEEP_FILE).is_file()


def read_sweep(run_dir: Path, parse_space: Callable[[str], object]) -> dict:
    """The sweep state of a sweep folder, checked against its format; StoreError saying what to
    do if there is none or it is damaged. ``parse_space`` reads a space text (``bench.space``'s
    ``parse_distribution``; the store imports nothing of bench) and raises ValueError."""
    run_dir = Path(run_dir)
    path = run_dir / SWEEP_FILE
    if not path.is_file():
        raise StoreError(_not_a_sweep(run_dir))
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(damaged(path, f"it is not valid JSON ({exc})")) from None
    problem = first_problem(state, parse_space)
    if problem:
        raise StoreError(damaged(path, problem))
    if state.get("protocol_digest", protocol_digest(state["protocol"])) != protocol_digest(state["protocol"]):
        raise StoreError(f"the protocol in {path} was edited by hand (it no longer matches the digest bench "
                         "wrote beside it): a sweep's K, S, spaces and seeds stay as drawn; put it back "
                         "(restore the file from a copy); to draw more settings: "
                         f"bench sweep --resume {run_dir} --add-samples N; to change anything else, "
                         "start a new sweep")
    state.setdefault("chosen", {})
    return state


def protocol_digest(protocol: dict) -> str:
    """What ``read_sweep`` tells a hand-edited protocol by (sweeps written before it have none)."""
    text = json.dumps(protocol, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def damaged(path: Path, problem: str) -> str:
    """The one line for a damaged sweep.json."""
    return (f"the sweep state {path} is damaged: {problem}; restore it from a copy (the trials' rows in "
            f"metrics.jsonl and their checkpoints are untouched), then run `bench sweep --resume "
            f"{path.parent}` again, or start a new sweep")


def _not_a_sweep(run_dir: Path) -> str:
    if (run_dir / OPTUNA_FILE).exists():  # a sweep whose record is gone
        return (f"{run_dir} has no {SWEEP_FILE} (the sweep's record; {OPTUNA_FILE} alone cannot replace it); "
                "restore it from a copy, or start a new sweep")
    if (run_dir / MANIFEST_FILE).is_file():
        return (f"{run_dir} is a run folder of `bench run`, not a sweep (no {SWEEP_FILE}); continue it with: "
                f"bench run --resume {run_dir}")
    return f"{run_dir} is not a sweep folder (no {SWEEP_FILE}); give a folder `bench sweep` wrote"


def write_sweep(run_dir: Path, state: dict) -> None:
    write_json(Path(run_dir) / SWEEP_FILE, {"format": SWEEP_FORMAT, **state,
                                            "protocol_digest": protocol_digest(state["protocol"])})


def slots(state: dict, model: str | None = None, phase: str | None = None) -> list[dict]:
    return [s for s in state["slots"]
            if (model is None or s["model"] == model) and (phase is None or s["phase"] == phase)]


# -- the format, checked ---------------------------------------------------------------------------

def _kind(value) -> str:
    """A value as a reader of the file would name it: scalars as written, containers by kind."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _wrong(where: str, value, wanted: str) -> str:
    return f"{where} is {_kind(value)}, not {wanted}"


def _field(obj: dict, key: str, where: str, check, wanted: str, optional: bool = False) -> str | None:
    """The problem with ``obj[key]`` (``where``: obj's own path, "" for the file), or None."""
    if key not in obj:
        return None if optional else f"{where or 'it'} has no {key!r}"
    return None if check(obj[key]) else _wrong(f"{where}.{key}" if where else key, obj[key], wanted)


def first_problem(state, parse_space: Callable[[str], object]) -> str | None:
    """The first way ``state`` departs from the format (a sentence), or None."""
    if not isinstance(state, dict):
        return _wrong("its content", state, "an object")
    if "format" not in state:
        return "it has no 'format'"
    if state["format"] != SWEEP_FORMAT:
        return (f"its format is {state['format']!r}, this bench reads format {SWEEP_FORMAT} (a newer bench "
                "wrote it? use that version)")
    for key, check, wanted in (("protocol", _is_object, "an object"), ("slots", _is_list, "a list")):
        problem = _field(state, key, "", check, wanted)
        if problem:
            return problem
    problem = _protocol_problem(state["protocol"], parse_space)
    if problem:
        return problem
    models = state["protocol"]["spaces"]
    for i, slot in enumerate(state["slots"]):
        problem = _slot_problem(slot, f"slot {i}", models)
        if problem:
            return problem
    problem = _field(state, "chosen", "", _is_object, "an object", optional=True)
    if problem:
        return problem
    for model, chosen in state.get("chosen", {}).items():
        problem = _chosen_problem(chosen, f"chosen.{model}", model, models)
        if problem:
            return problem
    return _field(state, "compute", "", _is_object, "an object", optional=True)


def _is_object(value) -> bool:
    return isinstance(value, dict)


def _is_list(value) -> bool:
    return isinstance(value, list)


def _protocol_problem(protocol: dict, parse_space) -> str | None:
    checks = (("samples", lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
              ("final_seeds", lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
              ("seed", _is_int, "a whole number"),
              ("trial_seed", _is_int, "a whole number"),
              ("sampler", lambda v: v in SAMPLERS, " or ".join(SAMPLERS)),
              ("metric", lambda v: isinstance(v, str), "a string"),  # --objective's column
              ("better", lambda v: v in ("lower", "higher"), "lower or higher", True),  # its direction
              ("added_samples", lambda v: isinstance(v, list) and all(_is_int(n) and n >= 1 for n in v),
               "a list of whole numbers >= 1", True),
              ("spaces", lambda v: isinstance(v, dict) and v, "an object naming at least one model"))
    for key, check, wanted, *optional in checks:
        problem = _field(protocol, key, "protocol", check, wanted, optional=bool(optional))
        if problem:
            return problem
    for model, space in protocol["spaces"].items():
        where = f"protocol.spaces.{model}"
        if not isinstance(space, dict) or not space:
            return _wrong(where, space, "an object of at least one field")
        for field, text in space.items():
            if not isinstance(text, str):
                return _wrong(f"{where}.{field}", text, "a distribution text")
            try:
                parse_space(text)
            except ValueError as exc:
                return f"{where}.{field} does not parse ({exc})"
    return None


def _slot_problem(slot, where: str, models: dict) -> str | None:
    if not isinstance(slot, dict):
        return _wrong(where, slot, "an object")
    checks = (("model", lambda v: v in models, f"one of the protocol's models ({', '.join(models)})"),
              ("phase", lambda v: v in (SEARCH, FINAL), f"{SEARCH!r} or {FINAL!r}"),
              ("index", lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
              ("options", _is_object, "an object"),
              ("seed", _is_int, "a whole number"),
              ("trial", lambda v: isinstance(v, str) and v, "a trial name"))
    for key, check, wanted in checks:
        problem = _field(slot, key, where, check, wanted)
        if problem:
            return problem
    optional = (("backbone", lambda v: v is None or isinstance(v, str), "a backbone name or null"),
                ("superseded", lambda v: isinstance(v, bool), "true/false"))
    for key, check, wanted in optional:
        problem = _field(slot, key, where, check, wanted, optional=True)
        if problem:
            return problem
    if slot["phase"] == SEARCH:
        problem = (_field(slot, "optuna_number", where, lambda v: _is_int(v) and v >= 0,
                          "a whole number >= 0")
                   or _field(slot, "told", where, lambda v: v is None or _is_number(v) or isinstance(v, str),
                             "an FID, a status or null", optional=True))
        if problem:
            return problem
    return None


def _chosen_problem(chosen, where: str, model: str, models: dict) -> str | None:
    if model not in models:
        return f"{where} names a model the protocol does not ({', '.join(models)})"
    if not isinstance(chosen, dict):
        return _wrong(where, chosen, "an object")
    problem = _field(chosen, "trial", where, lambda v: v is None or isinstance(v, str),
                     "a trial name or null")
    if problem:
        return problem
    if chosen["trial"] is None:
        return _field(chosen, "reason", where, lambda v: isinstance(v, str), "a string")
    return (_field(chosen, "options", where, _is_object, "an object")
            or _field(chosen, "value", where, _is_number, "a number"))
