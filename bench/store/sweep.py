"""``sweep.json``: a sweep's protocol and its trial slots, in the sweep's run folder.

A sweep folder is a run folder (manifest, ``metrics.jsonl``, ``trials/``) plus this file and
the Optuna studies (``optuna.db``). The file holds::

    {"format": 1,
     "protocol": {"samples": K, "final_seeds": S, "seed": 0, "sampler": "random", "metric": "fid",
                  "spaces": {model: {field: "loguniform(1e-05,0.01)", ...}}},
     "slots": [{"model", "phase": "search" | "final", "index", "options", "seed", "trial",
                "optuna_number"}, ...],
     "chosen": {model: {"trial", "options", "value"} | {"trial": null, "reason": "..."}}}

A slot is written before its trial runs and never changes, so a resumed sweep trains exactly
the settings it drew first (``bench sweep --resume``).
"""

from __future__ import annotations

from pathlib import Path

from bench.store.files import StoreError, read_json, write_json
from bench.store.layout import SWEEP_FILE

SWEEP_FORMAT = 1
SEARCH, FINAL = "search", "final"


def is_sweep(run_dir: Path) -> bool:
    return (Path(run_dir) / SWEEP_FILE).is_file()


def read_sweep(run_dir: Path) -> dict:
    """The sweep state of a sweep folder; StoreError saying what to do if there is none."""
    path = Path(run_dir) / SWEEP_FILE
    if not path.is_file():
        raise StoreError(f"{run_dir} is not a sweep folder (no {SWEEP_FILE}); give a folder `bench sweep` "
                         "wrote, or resume a run with `bench run --resume`")
    state = read_json(path, "sweep state")
    if not isinstance(state, dict) or "protocol" not in state or "slots" not in state:
        raise StoreError(f"the sweep state {path} is damaged; restore it from a copy, or start a new sweep")
    state.setdefault("chosen", {})
    return state


def write_sweep(run_dir: Path, state: dict) -> None:
    write_json(Path(run_dir) / SWEEP_FILE, {"format": SWEEP_FORMAT, **state})


def slots(state: dict, model: str | None = None, phase: str | None = None) -> list[dict]:
    return [s for s in state["slots"]
            if (model is None or s["model"] == model) and (phase is None or s["phase"] == phase)]
