"""The one atomic writer and the one tolerant JSON-lines reader (and JSON on top of them)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class StoreError(Exception):
    """A file of a run folder cannot be read or written; the message names it and what to do."""


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], object], mode: int = 0o644) -> None:
    """Write ``data`` (bytes, or a function that writes to a binary file) to a temporary file in
    the same folder, fsync it, then rename it over ``path``: a reader, or a run killed mid-write,
    sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes files private; results are for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode())


def _json_safe(value):
    """NaN and infinity are not JSON: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(_json_safe(obj), indent=2, default=str))


def read_json(path: Path, what: str = "file"):
    """A JSON file; a damaged one raises StoreError naming it (``what`` says what it is)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"the {what} {path} is damaged (not valid JSON: {exc}); restore it from a "
                         "copy, or move it away") from None


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


def read_jsonl(path: Path, notes: list[str] | None = None, growing: bool = False) -> list[dict]:
    """Every complete JSON-object row of a JSON-lines file ([] if there is none).

    A half-written line (a run killed mid-append) is skipped with a warning naming the file and
    line, also added to ``notes``. ``growing=True`` is for a file another process may be
    appending to right now: its unfinished last line is left out silently.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    if growing:
        lines = lines[:-1]  # after the last newline: empty, or a line still being written
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            message = f"{path}:{number}: skipping a half-written row"
            warnings.warn(message, stacklevel=2)
            if notes is not None:
                notes.append(message)
            continue
        rows.append(row)
    return rows
