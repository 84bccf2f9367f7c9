"""The tracker contract: what a live view of a run (TensorBoard, MLflow, W&B...) is sent.

A tracker is a ``Tracker`` subclass registered through ``bench_register_trackers`` and chosen
with ``bench run --tracker NAME[,NAME]``. bench calls, in each process that trains (the driver,
and every Ray worker for its own trials):

    start_run(run)            the driver, once per ``bench run`` (again on ``--resume``)
    start_trial(trial)        a trial begins or resumes (``TrialInfo``)
    log_train(step, values)   each logging interval: its mean losses and ``images_per_s``
    log_eval(step, row)       each evaluation row (untrained, interval, final)
    log_images(step, name, image)   each evaluation's sample grid and reconstructions: a PNG
                              path or an ``[H, W, 3]`` uint8 array
    end_trial(status, final_row)    completed | diverged | failed | interrupted
    end_run(status, report_dir)     the driver, after the report: completed | incomplete |
                              interrupted | failed

Every method is a no-op here: a tracker overrides what it uses. What ``start_run`` puts in
``self.state`` (JSON values) is saved in the run's config, so that ``--resume`` and the Ray
workers construct their trackers with it. A resumed trial repeats the steps after its last
checkpoint: a tracker logs each training step once (``log_train`` again at a step it already
holds is its own to skip). ``SafeTrackers`` is what bench calls: a tracker that raises costs
one warning, never the trial.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, ClassVar

from bench.store.rows import IDENTITY

TRAIN = "train/"  # tag and key prefixes: train/loss_d, eval/fid, images/samples
EVAL = "eval/"
IMAGES = "images/"


@dataclasses.dataclass
class RunInfo:
    run_id: str  # the run folder's name
    directory: Path  # the run folder (the driver's)
    config: dict  # the run config (RunConfig.as_dict())
    resumed: bool = False


@dataclasses.dataclass
class TrialInfo:
    run_id: str
    trial: str  # its name: gan-s0, gan@resnet-1a2b3c4d-s1
    model: str
    family: str
    backbone: str | None
    seed: int
    config: dict  # the variant's resolved config: every field, defaults and overrides
    run_config: dict
    directory: Path  # its trial folder (a scratch copy on a Ray worker, shipped to the run folder)
    options: dict = dataclasses.field(default_factory=dict)  # its own overrides (a sweep's setting)
    sweep_phase: str | None = None  # search | final, in a sweep
    sweep_slot: int | None = None

    @property
    def group(self) -> str:
        """The trials that differ only in their seed: the trial name without ``-s<seed>``."""
        return self.trial.rsplit("-s", 1)[0]

    def hparams(self) -> dict[str, bool | int | float | str]:
        """Its hyperparameters as flat scalars: who it is, the variant's config, the run's settings."""
        own = {"model": self.model, "family": self.family, "backbone": self.backbone, "seed": self.seed,
               "sweep_phase": self.sweep_phase, "sweep_slot": self.sweep_slot}
        run = {k: self.run_config.get(k) for k in RUN_HPARAMS}
        return {**flat(own), **flat(self.config), **flat(run, "run.")}


# the run settings a trial's hyperparameters include (the rest is in the run's own record)
RUN_HPARAMS = ("dataset", "budget", "batch_size", "resolution", "subset", "ema", "amp")


def flat(values: dict, prefix: str = "") -> dict[str, bool | int | float | str]:
    """``{"a": {"b": 1}, "c": None}`` -> ``{"a.b": 1, "c": "None"}``: scalars every tracker takes."""
    out: dict = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str) if value is not None else "None"
    return out


def row_metrics(row: dict) -> dict[str, float]:
    """The numeric columns of a metrics row that are not where it comes from (metrics, cost)."""
    return {k: float(v) for k, v in row.items()
            if k not in IDENTITY and k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def image_array(image):
    """A PNG path or an array, as an ``[H, W, 3]`` uint8 array."""
    import numpy as np

    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as picture:
            return np.asarray(picture.convert("RGB"))
    return np.asarray(image)


class Tracker:
    """Base class of trackers; every method a no-op (see the module docstring)."""

    install_hint: ClassVar[str | None] = None  # the pip command that installs what it needs

    def __init__(self, uri: str | None = None, state: dict | None = None):
        self.uri = uri  # --tracker-uri, for the trackers that take one
        self.state = dict(state or {})  # what start_run recorded, back from the run's config

    @classmethod
    def check(cls, uri: str | None) -> None:
        """Raise ValueError if it cannot be used here (a missing package, a malformed URI), before
        any training. An unreachable server is not a reason: that is a warning when it logs."""

    def start_run(self, run: RunInfo) -> None:
        pass

    def start_trial(self, trial: TrialInfo) -> None:
        pass

    def log_train(self, step: int, values: dict[str, float]) -> None:
        pass

    def log_eval(self, step: int, row: dict) -> None:
        pass

    def log_images(self, step: int, name: str, image: Any) -> None:
        pass

    def end_trial(self, status: str, final_row: dict | None) -> None:
        pass

    def end_run(self, status: str, report_dir: Path | None) -> None:
        pass


def check_tracker_class(obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Tracker)):
        raise ValueError(f"{obj!r} is not a subclass of bench.Tracker")


def warn(message: str) -> None:
    print(f"bench: warning: {message}", file=sys.stderr, flush=True)


class SafeTrackers:
    """The chosen trackers, each call made to every one of them and guarded: a tracker that raises
    costs one warning naming it and the error, and logs nothing more until the next trial starts
    (nothing more in the run if it failed at the run's start: its trials have nowhere to go); the
    trial, its rows and the run's exit status are as they would have been without it."""

    def __init__(self, trackers: dict[str, Tracker] | None = None):
        self.trackers = dict(trackers or {})
        self._dead: set[str] = set()  # failed at the run's start
        self._off: set[str] = set()  # failed since the current trial started (or dead)
        self._where = "the run"

    @property
    def active(self) -> bool:
        """Whether any tracker is listening (pictures for them are drawn only then)."""
        return any(name not in self._off for name in self.trackers)

    def state(self) -> dict:
        return {name: t.state for name, t in self.trackers.items() if t.state}

    def _call(self, method: str, *args) -> None:
        for name, tracker in self.trackers.items():
            if name in self._off:
                continue
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # a tracker never costs a trial
                self._off.add(name)
                warn(f"tracker {name!r} failed ({method}: {type(exc).__name__}: {exc}); it logs nothing "
                     f"more for {self._where}, which goes on")

    def start_run(self, run: RunInfo) -> None:
        self._off, self._where = set(), "the run"
        self._call("start_run", run)
        self._dead = set(self._off)

    def start_trial(self, trial: TrialInfo) -> None:
        self._off, self._where = set(self._dead), f"trial {trial.trial}"  # a server down then may be back
        self._call("start_trial", trial)

    def log_train(self, step: int, values: dict[str, float]) -> None:
        self._call("log_train", step, values)

    def log_eval(self, step: int, row: dict) -> None:
        self._call("log_eval", step, row)

    def log_images(self, step: int, name: str, image) -> None:
        self._call("log_images", step, name, image)

    def end_trial(self, status: str, final_row: dict | None) -> None:
        self._call("end_trial", status, final_row)

    def end_run(self, status: str, report_dir: Path | None) -> None:
        self._off, self._where = set(self._dead), "the run"
        self._call("end_run", status, report_dir)
