"""The results store: the one owner of every on-disk format. It imports no torch.

Layout of a run folder::

    results/<NNNNN>-<dataset>-<budget>/
        manifest.json          format version, command line, config, versions, device, dataset,
                               budget, each model's resolved config, metric columns, trials
        metrics.jsonl          one row per trial x evaluation point, appended line by line
        trials/<trial>/        <trial> = trial_name(model, seed, options): "gan-s0", "gan-1a2b3c4d-s0"
            log.jsonl          one row per logging interval
            checkpoint.pt      latest checkpoint (written by bench.checkpoint, atomically)
            status.json        running | completed | diverged | failed | interrupted, with a message
            samples.png        8x8 grid of samples
            reconstructions.png, error.txt
        retired/<trial>-<k>/   a failed trial's earlier attempt, moved away by --retry-failed

``files`` has the one atomic writer and the one JSON-lines reader; ``layout`` the names;
``manifest``, ``status`` and ``rows`` the three formats; ``provenance`` what a run records
about the software it ran.
"""

from bench.store.files import (
    StoreError,
    append_jsonl,
    atomic_write,
    read_json,
    read_jsonl,
    write_json,
    write_text,
)
from bench.store.layout import (
    CHECKPOINT_FILE,
    ERROR_FILE,
    LOG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    RECONSTRUCTIONS_FILE,
    RESULTS_DIR_ENV,
    SAMPLES_FILE,
    default_results_root,
    new_run_dir,
    trial_dir,
    trial_name,
)
from bench.store.manifest import (
    FORMAT_VERSION,
    read_manifest,
    record_trial,
    update_manifest,
    upgrade_config,
    write_manifest,
)
from bench.store.status import (
    FINISHED,
    read_status,
    write_status,
)

__all__ = [
    "CHECKPOINT_FILE", "ERROR_FILE", "FINISHED", "FORMAT_VERSION", "LOG_FILE", "MANIFEST_FILE",
    "METRICS_FILE", "RECONSTRUCTIONS_FILE", "RESULTS_DIR_ENV", "SAMPLES_FILE", "StoreError",
    "append_jsonl", "atomic_write", "default_results_root", "new_run_dir", "read_json", "read_jsonl",
    "read_manifest", "read_status", "record_trial", "trial_dir", "trial_name", "update_manifest",
    "upgrade_config",
    "write_json", "write_manifest", "write_status", "write_text",
]
