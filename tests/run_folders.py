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


# the search FIDs of make_sweep's variants (K = 4), and the FIDs of each one's final seeds (S = 3)
SWEEP_SEARCH = {"gan": [80.0, 60.0, 120.0, None], "vae": [150.0, 140.0, 160.0, 155.0]}
SWEEP_FINAL = {"gan": [62.0, 65.0, 59.0], "vae": [141.0, 139.0, 143.0]}
SWEEP_FAMILY = {"gan": "gan", "vae": "vae", "wgan-gp": "gan", "vaegan": "hybrid"}


def make_sweep(root: Path, name: str = "00001-synthetic-100steps-sweep", *, search=None, final=None,
               seconds=None, samples_each=None, eval_every=False, recon=True, dataset="synthetic") -> Path:
    """A finished sweep folder as ``bench sweep`` writes it, with known values and no training.

    ``search``/``final``: model -> FID per search sample / per final seed (None: a diverged sample);
    ``seconds``: model -> training seconds per trial (default 10); ``eval_every``: also rows during
    training (at steps 50 and 100; the one at 50 is 0.9x the final FID)."""
    from bench.store.sweep import write_sweep

    search, final = search or SWEEP_SEARCH, final or SWEEP_FINAL
    seconds = seconds or {}
    run = make_columns_run(root, name, trials=())
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["models"] = list(search)
    manifest["config"]["dataset"] = manifest["dataset"]["name"] = dataset
    manifest["models"] = {m: {"family": SWEEP_FAMILY.get(m, "gan"), "source": "built-in"} for m in search}
    spaces = {m: {"lr": "loguniform(1e-05,0.01)", "beta1": "uniform(0,0.9)"} for m in search}
    k, s = len(next(iter(search.values()))), len(next(iter(final.values())))
    state = {"protocol": {"samples": k, "final_seeds": s, "seed": 0, "sampler": "random", "metric": "fid",
                          "trial_seed": 0, "spaces": spaces},
             "slots": [], "chosen": {}, "compute": {}}
    rows, rng = [], np.random.default_rng(0)

    def trial(model, phase, index, seed, options, fid):
        name_ = trial_name(model, seed, options)
        state["slots"].append({"model": model, "phase": phase, "index": index, "options": options,
                               "seed": seed, "trial": name_, "backbone": None,
                               **({"optuna_number": index, "told": fid if fid is not None else "diverged"}
                                  if phase == "search" else {})})
        family = SWEEP_FAMILY.get(model, "gan")
        spent = seconds.get(model, 10.0)
        base = {"run_id": run.name, "trial": name_, "model": model, "options": options, "family": family,
                "seed": seed, "eval_samples": 1000, "eval_ref": "test", "ref_samples": 1000}
        if eval_every and fid is not None:
            rows.append({**base, "eval_point": "interval", "status": "training", "step": 50,
                         "train_seconds": spent / 2, "fid": 0.9 * fid})
        completed = fid is not None
        rows.append({**base, "eval_point": "final", "status": "completed" if completed else "diverged",
                     "step": 100 if completed else 40, "train_seconds": spent, "images_seen": 6400,
                     "train_flops": spent * 1e11, "fid": fid, "coverage": 0.0 if fid and fid > 155 else 0.4,
                     "recall": 0.3, "recon_mse": 0.02 if recon and family != "gan" else None})
        return name_

    for model, fids in search.items():
        options = [{"beta1": round(float(rng.uniform(0, 0.9)), 12), "lr": float(10 ** rng.uniform(-5, -2))}
                   for _ in fids]
        names = [trial(model, "search", i, 0, options[i], fid) for i, fid in enumerate(fids)]
        best = min((i for i, f in enumerate(fids) if f is not None), key=lambda i: fids[i])
        state["chosen"][model] = {"trial": names[best], "options": options[best], "value": fids[best]}
        for i, fid in enumerate(final[model]):
            trial(model, "final", i, 1 + i, options[best], fid)
        state["compute"][model] = {"trials": len(fids) + len(final[model]),
                                   "seconds": seconds.get(model, 10.0) * (len(fids) + len(final[model])),
                                   "images": 6400.0 * (len(fids) + len(final[model])), "flops": 0.0}
    write_sweep(run, state)
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run
