"""Run folders as ``bench run`` writes them, with known values, for the report's tests (and
the tests of what the report shows: latents, copying pictures): no training.

    make_run            the format of bench 0.1 (no ``columns`` in the manifest), FID per model
    make_columns_run    today's format, a manifest's ``columns`` table and a plugin's column
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from bench.metrics.builtin import BUILTIN_METRICS
from bench.store.columns import TRIAL_COLUMNS, Column
from bench.store.layout import trial_name

FID = {"gan": [40.0, 42.5, 41.0], "vae": [90.0, 95.0, 93.0]}


def make_run(root: Path, name: str = "00001-synthetic-10m", models=None, seeds=(0, 1, 2), *,
             budget=("10m", "seconds", 600.0), content_hash="abc123", eval_samples=2000, eval_ref="test",
             ref_samples=2000, device="cpu (test)", options=None, untrained=True, images=True,
             extra_rows=(), fid=None, columns=None) -> Path:
    """A run folder as ``bench run`` writes it, with known metric values."""
    models = models or {"gan": "gan", "vae": "vae"}
    fid = fid or FID
    run = root / name
    run.mkdir(parents=True)
    manifest = {
        "run_id": name, "command_line": f"bench run --budget {budget[0]}",
        "config": {"models": list(models), "dataset": "synthetic", "budget": budget[0], "seeds": list(seeds),
                   "batch_size": 64, "amp": False, "compile": False, "flip": True, "resolution": None,
                   "subset": None, "options": options or {}, "eval_samples": eval_samples,
                   "eval_ref": eval_ref, "ref_samples": ref_samples},
        "versions": {"python": "3.11", "torch": "2.5", "torchvision": "0.20", "bench": "0.1.0",
                     "torch_fidelity": "0.4.0"},
        "git_commit": "deadbeef",
        "device": {"type": "cpu", "name": device, "machine": "Test CPU 9000, 2 logical CPUs; no GPU"},
        "dataset": {"name": "synthetic", "source": "procedural images", "num_images": 256,
                    "image_shape": [3, 16, 16], "content_hash": content_hash},
        "budget": {"text": budget[0], "kind": budget[1], "amount": budget[2]},
        "models": {m: {"family": f, "source": "built-in"} for m, f in models.items()},
        "trials": {},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    lines = []
    for model, family in models.items():
        for i, seed in enumerate(seeds):
            base = {"run_id": name, "model": model, "family": family, "seed": seed, "dataset": "synthetic",
                    "dataset_source": "procedural images", "budget": budget[0], "device": device,
                    "batch_size": 64}
            evaluation = {"eval_samples": eval_samples, "eval_ref": eval_ref, "ref_samples": ref_samples,
                          "small_n": eval_samples < 10_000}
            if untrained:
                lines.append({**base, "eval_point": "untrained", "status": "untrained", "step": 0,
                              **evaluation, "fid": 400.0 + seed, "fid_infinity": 390.0})
            values = fid[model] if model in fid else [50.0 + s for s in range(len(seeds))]
            row = {**base, "eval_point": "final", "status": "completed", "message": "", "step": 100,
                   "images_seen": 6400, "train_seconds": 600.0 + seed, "train_flops": 1e12,
                   "flops_per_image": 1e8, "train_images_per_s": 1000.0 + 10 * i, "final_loss_g": 1.0,
                   **evaluation, "fid": values[i % len(values)], "fid_infinity": values[i % len(values)] - 2,
                   "kid_mean": 0.01, "kid_std": 0.001, "precision": 0.5, "recall": 0.4,
                   "sample_images_per_s": 5000.0, "recon_mse": None if family == "gan" else 0.02,
                   "recon_psnr": None if family == "gan" else 17.0, "eval_seconds": 3.0, **(columns or {})}
            lines.append(row)
            trial = run / "trials" / f"{model}-s{seed}"
            trial.mkdir(parents=True)
            (trial / "log.jsonl").write_text("".join(
                json.dumps({"step": s, "images": 64 * s, "seconds": 6.0 * s, "flops": 1e10 * s,
                            "budget_used": s / 100, "loss_g": 2.0 / s, "loss_d": 1.0 + 0.1 / s}) + "\n"
                for s in range(10, 101, 10)))
            if images:
                grid = np.random.default_rng(seed).integers(0, 255, (34, 34, 3), dtype=np.uint8)
                Image.fromarray(grid).save(trial / "samples.png")
    lines += list(extra_rows)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run


def read_md(run: Path) -> str:
    """report.md with markdown's backslash escapes removed, as it reads when rendered."""
    return re.sub(r"\\(.)", r"\1", (run / "report.md").read_text())


def column_table(*extra: Column) -> list[dict]:
    """A manifest's ``columns`` as ``bench run`` writes it, with a plugin's columns after the built-in."""
    builtin = [c for metric in BUILTIN_METRICS.values() for c in metric.columns]
    return [c.as_dict() for c in (*builtin, *extra, *TRIAL_COLUMNS)]


def make_columns_run(root: Path, name: str = "00001-toy-100steps", *, columns: list[dict] | None = None,
             trials=(("gan", {}, [1.0, 2.0, 4.0]),), run_options=None) -> Path:
    """A run folder of today's format; ``trials``: (model, the trial's own options, sharpness per seed)."""
    run = root / name
    run.mkdir(parents=True)
    manifest = {
        "format": 2, "run_id": name, "command_line": "bench run --budget 100steps",
        "config": {"models": sorted({m for m, _, _ in trials}), "dataset": "synthetic", "budget": "100steps",
                   "options": run_options or {}, "eval_samples": 1000, "eval_ref": "test",
                   "ref_samples": 1000, "executor": "local", "executor_options": {}},
        "versions": {"python": "3.11", "torch": "2.5", "bench": "0.2.0"},
        "device": {"type": "cpu", "name": "cpu (test)", "machine": "Test CPU"},
        "dataset": {"name": "synthetic", "source": "procedural", "num_images": 64, "content_hash": "h"},
        "budget": {"text": "100steps", "kind": "steps", "amount": 100.0},
        "trials": {},
    }
    if columns is not None:
        manifest["columns"] = columns
    (run / "manifest.json").write_text(json.dumps(manifest))
    rows = []
    for model, options, values in trials:
        for seed, value in enumerate(values):
            trial = trial_name(model, seed, options)
            rows.append({"run_id": name, "trial": trial, "model": model, "options": options, "family": "gan",
                         "seed": seed, "eval_point": "final", "status": "completed", "step": 100,
                         "train_seconds": 10.0, "eval_samples": 1000, "eval_ref": "test", "ref_samples": 1000,
                         "fid": 50.0 + seed, "kid_mean": 0.02, "train_images_per_s": 800.0,
                         "sharpness": value, "sharpness_spread": value / 10})
            folder = run / "trials" / trial
            folder.mkdir(parents=True)
            (folder / "log.jsonl").write_text("".join(
                json.dumps({"step": s, "seconds": s / 10, "loss_g": 1.0 / s}) + "\n" for s in (10, 50, 100)))
            Image.fromarray(np.full((18, 18, 3), 40 * seed, np.uint8)).save(folder / "samples.png")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run
