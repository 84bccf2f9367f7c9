"""``manifest.json``: what a run is (command line, config, versions, device, dataset, budget,
models, metric columns) and what each trial used. Older formats are upgraded on reading.

Format history:

* 1 (bench 0.1.0, no ``format`` key): Ray's options at the top level of ``config``.
* 2: ``format``; executor options nested in ``config.executor_options``; ``models`` holds each
  variant's resolved config and its package's version; ``columns`` declares every metric column
  (label, direction, unit) so that reports need no plugin code; trial entries name their
  model, seed and options.
"""

from __future__ import annotations

from pathlib import Path

from bench.store.files import StoreError, read_json, write_json
from bench.store.layout import MANIFEST_FILE

FORMAT_VERSION = 2
# format 1 kept the Ray executor's options at the top level of the run config
_FORMAT_1_RAY_FIELDS = ("ray_address", "cpus_per_trial", "gpus_per_trial", "max_retries")


def upgrade_config(config: dict) -> dict:
    """A run config dict of any format, in today's format (a new dict)."""
    config = dict(config)
    moved = {k: config.pop(k) for k in _FORMAT_1_RAY_FIELDS if k in config}
    options = dict(config.get("executor_options") or {})
    if config.get("executor", "local") == "ray":
        options = {**{k: v for k, v in moved.items() if v is not None}, **options}
    config["executor_options"] = options
    return config


def read_manifest(run_dir: Path) -> dict:
    """The manifest of a run folder, upgraded to today's format.

    Raises StoreError when there is none or it is damaged, saying what to do."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise StoreError(f"{run_dir} is not a run folder (no {MANIFEST_FILE}); give a folder under results/")
    manifest = read_json(path, "run manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise StoreError(f"the run manifest {path} is damaged (no run config in it); restore it from a "
                         "copy, or start a new run")
    manifest = dict(manifest)
    manifest["config"] = upgrade_config(manifest["config"])
    manifest.setdefault("trials", {})
    manifest.setdefault("format", 1)
    return manifest


def write_manifest(run_dir: Path, manifest: dict) -> None:
    write_json(Path(run_dir) / MANIFEST_FILE, {"format": FORMAT_VERSION, **manifest})


def update_manifest(run_dir: Path, **fields) -> None:
    """Set top-level fields of a run's manifest (e.g. ``finished``)."""
    path = Path(run_dir) / MANIFEST_FILE
    manifest = read_json(path, "run manifest")
    manifest.update(fields)
    write_json(path, manifest)


def record_trial(run_dir: Path, name: str, entry: dict) -> None:
    """Record what a trial used (status, budget used, device...) under ``trials.<name>``."""
    path = Path(run_dir) / MANIFEST_FILE
    manifest = read_json(path, "run manifest")
    manifest.setdefault("trials", {})[name] = entry
    write_json(path, manifest)
