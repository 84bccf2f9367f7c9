"""Setting a trial's attempt aside (``bench run --resume RUN --retry-failed``).

The trial's folder moves to ``retired/<trial>-<k>/`` with its rows (taken out of
``metrics.jsonl``, kept in that folder's own ``metrics.jsonl``) and its manifest entry, so
the trial starts again from step 0 and nothing it wrote before is lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.store.files import read_json, read_jsonl, write_json, write_text
from bench.store.layout import MANIFEST_FILE, METRICS_FILE, retired_dir, trial_dir
from bench.store.rows import row_trial


def retire_trial(run_dir: Path, name: str) -> Path:
    """Move trial ``name``'s folder, rows and manifest entry aside; returns where they went."""
    run_dir = Path(run_dir)
    destination = retired_dir(run_dir, name)
    destination.mkdir(parents=True)
    source = trial_dir(run_dir, name)
    if source.is_dir():
        for item in source.iterdir():
            shutil.move(str(item), destination / item.name)
        source.rmdir()
    rows = read_jsonl(run_dir / METRICS_FILE)
    theirs = [r for r in rows if row_trial(r) == name]
    write_text(destination / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in theirs))
    write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows if row_trial(r) != name))
    manifest = read_json(run_dir / MANIFEST_FILE, "run manifest")
    entry = manifest.get("trials", {}).pop(name, None)
    manifest.setdefault("retired", []).append({"trial": name, "folder": str(destination.relative_to(run_dir)),
                                               "entry": entry})
    write_json(run_dir / MANIFEST_FILE, manifest)
    return destination
