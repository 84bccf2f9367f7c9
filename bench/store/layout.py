"""Names and places: run folders, trial names and the files inside a trial folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

RESULTS_DIR_ENV = "BENCH_RESULTS_DIR"
CACHE_ENV = "BENCH_CACHE_DIR"  # reference features, the device's measured peak
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
TRIALS_DIR = "trials"
RETIRED_DIR = "retired"
LOG_FILE = "log.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
STATUS_FILE = "status.json"
SAMPLES_FILE = "samples.png"
RECONSTRUCTIONS_FILE = "reconstructions.png"
COPYING_FILE = "copying.png"  # the samples nearest a training image, beside it (data-copying metric)
LATENTS_FILE = "latents.png"  # prior interpolations: 8 rows of 10 images (bench.latents)
ENCODED_LATENTS_FILE = "latents-encoded.png"  # per row: test image, 10 decodings, test image
ERROR_FILE = "error.txt"
SWEEP_FILE = "sweep.json"  # a sweep's protocol and its trial slots (bench.store.sweep)
OPTUNA_FILE = "optuna.db"  # a sweep's Optuna studies (SQLite), one per variant


def default_results_root() -> Path:
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bench")


def new_run_dir(root: Path, description: str) -> Path:
    """``root/<NNNNN>-<description>``, numbered one past the highest existing run."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", description).strip("_")
    for number in range(max(numbers, default=0) + 1, 100000):
        path = root / f"{number:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another process took this number
            continue
    raise RuntimeError(f"no free run number under {root}")


def options_digest(options: dict) -> str:
    """Eight hex digits that stand for a trial's own options (canonical JSON, SHA-1)."""
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def trial_name(model: str, seed: int, options: dict | None = None, backbone: str | None = None) -> str:
    """The one name of a trial, (model, backbone, options, seed): ``gan-s0``; ``gan@resnet-s0`` on
    a backbone other than the default; ``gan-1a2b3c4d-s0`` when the trial has options of its own
    beyond the run's ``--set`` (so that two settings of one model can share a run folder)."""
    stem = f"{model}@{backbone}" if backbone else model
    if options:
        return f"{stem}-{options_digest(options)}-s{seed}"
    return f"{stem}-s{seed}"


def trial_dir(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / TRIALS_DIR / name


def retired_dir(run_dir: Path, name: str) -> Path:
    """A free ``retired/<name>-<k>`` folder for a trial attempt that is set aside."""
    root = Path(run_dir) / RETIRED_DIR
    k = 1
    while (root / f"{name}-{k}").exists():
        k += 1
    return root / f"{name}-{k}"
