"""A trial's ``status.json``: where it stands, with a message."""

from __future__ import annotations

from pathlib import Path

from bench.store.files import StoreError, read_json, write_json
from bench.store.layout import STATUS_FILE

RUNNING, COMPLETED, INTERRUPTED = "running", "completed", "interrupted"
DIVERGED, FAILED = "diverged", "failed"
FINISHED = (COMPLETED, DIVERGED, FAILED)  # a finished trial is never trained again by --resume
NOT_COMPLETED = (DIVERGED, FAILED)


def read_status(trial_folder: Path) -> dict | None:
    """``{"status": ..., "message": ...}``, or None when there is no (readable) status file:
    the status is a cache of the rows and the checkpoint, so a damaged one is simply rebuilt."""
    path = Path(trial_folder) / STATUS_FILE
    if not path.exists():
        return None
    try:
        status = read_json(path, "trial status")
    except StoreError:
        return None
    return status if isinstance(status, dict) and "status" in status else None


def write_status(trial_folder: Path, status: str, message: str = "", **extra) -> None:
    write_json(Path(trial_folder) / STATUS_FILE, {"status": status, "message": message, **extra})
