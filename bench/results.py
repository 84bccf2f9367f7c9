"""The results store: run folders, manifests and append-only JSON-lines files.

Layout::

    results/<NNNNN>-<dataset>-<budget>/
        manifest.json          command line, config, versions, device, dataset, budget, trials
        metrics.jsonl          one row per variant x seed x evaluation point
        trials/<model>-s<seed>/
            log.jsonl          one row per logging interval
            checkpoint.pt      latest checkpoint (atomic)
            status.json        running | completed | diverged | failed, with the message
            samples.png        8x8 grid of samples
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

RESULTS_DIR_ENV = "BENCH_RESULTS_DIR"


def default_results_root() -> Path:
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


def new_run_dir(root: Path, description: str) -> Path:
    """``root/<NNNNN>-<description>``, numbered one past the highest existing run."""
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


def trial_dir(run_dir: Path, model: str, seed: int) -> Path:
    return run_dir / "trials" / f"{model}-s{seed}"


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    save_text(path, json.dumps(obj, indent=2, default=str))


def save_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def _json_safe(value):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_jsonl(path: Path, row: dict) -> None:
    """Append one row as a whole line and flush it to disk, so a killed run keeps it."""
    line = json.dumps({k: _json_safe(v) for k, v in row.items()}, default=str)
    with open(path, "a+b") as f:
        # A run killed mid-append leaves a line without its newline: end it first, so
        # that only the broken row is lost when the file is read.
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """All complete rows; a half-written line (a run killed mid-append) is skipped with a warning."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number}: skipping a half-written row", stacklevel=2)
    return rows


def versions() -> dict:
    import torchvision

    import bench

    out = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "bench": bench.__version__,
    }
    try:
        import torch_fidelity

        out["torch_fidelity"] = torch_fidelity.__version__
    except ImportError:
        out["torch_fidelity"] = None
    return out


def git_commit() -> str | None:
    """The commit of the bench source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
