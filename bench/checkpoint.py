"""Checkpoints: torch files written atomically and read back with ``weights_only=True``.

``weights_only`` loading runs no code from the file: a damaged checkpoint, or a pickle that
tries to run code, is refused, and ``CheckpointError`` says which file and what to do.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.store import atomic_write


class CheckpointError(Exception):
    """A checkpoint cannot be loaded safely; the message names it and what to do."""


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"the checkpoint {path} cannot be loaded safely (damaged, or not written by bench: "
            f"{type(exc).__name__}: {reason[:200]}); move it away to restart that trial from step 0, "
            "or restore it") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint {path} is not a bench checkpoint (it holds a "
                              f"{type(state).__name__}); move it away to restart that trial from step 0")
    return state
