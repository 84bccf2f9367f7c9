"""What evaluation costs, side by side in one process (``python -m bench.perf --evaluation``):

* FID from statistics: torch-fidelity's ``fid_statistics_to_metric`` (a general eigenvalue
  problem of Sigma_g Sigma_r) against bench's symmetric one with sqrt(Sigma_r) computed once per
  reference, on the same statistics;
* the Inception path: ``torch_fidelity.calculate_metrics(fid=True)`` against bench's
  ``extract_features`` + FID on the same images, PyTorch eager and compiled, and OpenVINO where
  it is installed, with images/s and the share of the measured convolution peak;
* a smoke run (``bench run``, one variant, 5 steps, 32 samples, warm caches): its seconds
  outside training;
* the start-up time of ``bench --help`` and ``bench list``.

Every comparison alternates its sides; medians are reported, and ratios, not absolute times,
are the point (both sides share the machine's state).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

INCEPTION_GFLOP = 5.7  # per 299x299 image, forward (the FID Inception network)


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def extractor_speeds(images: torch.Tensor, networks: dict, log=print) -> dict:
    """Each feature extractor's pass over ``images`` (``networks``: name -> loaded extractor), timed
    after a first batch (kernel choice): seconds and images/s."""
    from bench.metrics.features import extract_features

    out = {}
    for name, network in networks.items():
        extract_features(images[:8], network)
        seconds, features = _timed(lambda network=network: extract_features(images, network))
        out[name] = {"images": len(images), "seconds": seconds, "images_per_s": len(images) / seconds,
                     "features": int(features.shape[1])}
        log(f"extractor {name}: {out[name]}")
    return out


def fid_statistics_speed(generated: torch.Tensor, real: torch.Tensor, repeats: int = 5,
                         full_rank: str = "") -> dict:
    """Seconds per FID from statistics, torch-fidelity's and bench's, on the same statistics, and
    their values. ``full_rank``: "reference" makes the reference covariance full rank (+ 1e-2 I,
    as a reference of more images than feature dimensions has: bench's Cholesky route), and the
    generated side brings its centred features as its factor (bench's evaluation does, N < D;
    made inside bench's timing, as every evaluation makes it); "both" also makes the generated
    covariance full rank (N > D on both sides: the D x D eigenproblem, no smaller route)."""
    import numpy as np

    from bench.metrics.fidelity import (
        covariance_factor,
        fid_from_statistics,
        fid_from_statistics_torch_fidelity,
        fid_statistics,
        with_factor,
    )

    gen, ref = fid_statistics(generated), fid_statistics(real)
    if full_rank:
        ref["sigma"] = ref["sigma"] + 1e-2 * np.eye(len(ref["sigma"]))
    if full_rank == "both":
        gen["sigma"] = gen["sigma"] + 1e-2 * np.eye(len(gen["sigma"]))
    factor_seconds, ref_factor = _timed(lambda: with_factor(ref, None if full_rank else real))

    def ours():
        if full_rank != "reference":
            return fid_from_statistics(gen, ref_factor)
        factor, kind = covariance_factor(gen["sigma"], generated)
        return fid_from_statistics({**gen, "factor": factor, "factor_kind": kind}, ref_factor)

    old, new = [], []
    for _ in range(repeats):
        seconds, fid_old = _timed(lambda: fid_from_statistics_torch_fidelity(gen, ref))
        old.append(seconds)
        seconds, fid_new = _timed(ours)
        new.append(seconds)
    factor = ref_factor["factor_kind"] + (" + generated features" if full_rank == "reference" else "")
    return {"generated": len(generated), "reference": len(real), "factor": factor,
            "full_rank": full_rank or "neither",
            "torch_fidelity_s": statistics.median(old), "bench_s": statistics.median(new),
            "ratio": statistics.median(old) / statistics.median(new),
            "factor_once_s": factor_seconds, "fid_torch_fidelity": fid_old, "fid_bench": fid_new,
            "relative_difference": abs(fid_new - fid_old) / abs(fid_old),
            "torch_fidelity_runs": old, "bench_runs": new}


def inception_speed(train: torch.Tensor, test: torch.Tensor, weights: str, peak_flops: float,
                    log=print) -> dict:
    """calculate_metrics against bench's feature paths on the same uint8 images, and the FIDs they
    give: calculate_metrics once before bench's paths and once after (each takes minutes on a
    CPU), the speed-ups against the mean of the two."""
    import torch_fidelity

    from bench.metrics.features import extract_features
    from bench.metrics.fidelity import fid_from_features
    from bench.metrics.inception import load_feature_extractor
    from bench.metrics.inception_openvino import openvino_available

    class Images(torch.utils.data.Dataset):
        def __init__(self, images):
            self.images = images

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return self.images[i]

    images = len(train) + len(test)
    out: dict = {"images": images}
    def calculate_metrics():
        log(f"inception: calculate_metrics on {len(train)} + {len(test)} images ...")
        return _timed(lambda: torch_fidelity.calculate_metrics(
            input1=Images(train), input2=Images(test), fid=True, verbose=False, cuda=False,
            feature_extractor_weights_path=weights)["frechet_inception_distance"])

    before, fid_before = calculate_metrics()
    paths = [("bench_eager", "torch", False), ("bench_compiled", "torch", True)]
    if openvino_available():
        paths.append(("bench_openvino", "openvino", False))
    for name, backend, compile_ in paths:
        log(f"inception: bench's path ({name}) ...")
        load_s, extractor = _timed(lambda b=backend, c=compile_: load_feature_extractor(
            weights, compile=c, backend=b, log=log))
        # the first batch: kernel choice, and for the compiled network its compilation
        first_s, _ = _timed(lambda e=extractor: extract_features(train[:64], e))
        seconds, fid = _timed(lambda e=extractor: fid_from_features(extract_features(train, e),
                                                                    extract_features(test, e)))
        out[name] = {"seconds": seconds, "load_seconds": load_s, "first_batch_seconds": first_s,
                     "images_per_s": images / seconds, "fid": fid,
                     "share_of_peak": images / seconds * INCEPTION_GFLOP * 1e9 / peak_flops}
    # calculate_metrics again after bench's paths: this host's speed drifts by about 10% over the
    # half hour, and the mean of a run before and one after puts the drift on both sides alike
    after, fid_after = calculate_metrics()
    baseline = (before + after) / 2
    out["calculate_metrics"] = {"seconds": baseline, "runs": [before, after],
                                "images_per_s": images / baseline, "fid": fid_before, "fid_after": fid_after}
    for name, _, _ in paths:
        out[name]["speedup"] = baseline / out[name]["seconds"]
        out[name]["fid_relative_difference"] = abs(out[name]["fid"] - fid_before) / fid_before
    return out


def smoke_run(weights: str | None = None, repeats: int = 2, log=print) -> dict:
    """``bench run`` of one variant for 5 steps with 32 samples, in a fresh process each time, on
    synthetic data: the first run fills the caches; the rest measure wall time minus training."""
    from bench.store import read_jsonl

    command = ["run", "--models", "gan", "--dataset", "synthetic", "--budget", "5steps",
               "--eval-samples", "32", "--ref-samples", "32", "--no-progress"]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_RESULTS_DIR": str(Path(tmp) / "results")}
        if weights:
            env["BENCH_FID_WEIGHTS"] = str(weights)
        for i in range(repeats + 1):
            seconds, result = _timed(lambda: subprocess.run([sys.executable, "-m", "bench.cli", *command],
                                                            env=env, capture_output=True, text=True))
            if result.returncode != 0:
                raise RuntimeError(f"the smoke run failed: {result.stderr.strip().splitlines()[-1]}")
            run_dir = sorted((Path(tmp) / "results").iterdir())[-1]
            (row,) = read_jsonl(run_dir / "metrics.jsonl")
            entry = {"wall_seconds": seconds, "train_seconds": row["train_seconds"],
                     "eval_seconds": row["eval_seconds"],
                     "outside_training_seconds": seconds - row["train_seconds"], "warm": i > 0}
            log(f"smoke run {i}: {entry}")
            runs.append(entry)
    warm = [r for r in runs if r["warm"]]
    from bench.metrics.inception import resolve_backend

    return {"command": "bench " + " ".join(command), "runs": runs, "inception_backend": resolve_backend(None),
            "outside_training_seconds": statistics.median(r["outside_training_seconds"] for r in warm),
            "eval_seconds": statistics.median(r["eval_seconds"] for r in warm)}


def startup(repeats: int = 3) -> dict:
    """Wall seconds of ``bench --help`` and ``bench list`` in fresh processes (medians)."""
    out = {}
    for name, args in (("bench --help", ["--help"]), ("bench list", ["list"])):
        times = [_timed(lambda a=args: subprocess.run([sys.executable, "-m", "bench.cli", *a],
                                                      capture_output=True, check=True))[0]
                 for _ in range(repeats)]
        out[name] = {"seconds": statistics.median(times), "runs": times}
    return out


def markdown(result: dict) -> str:
    lines = []
    if "fid_statistics" in result:
        lines += ["| FID from statistics (same statistics) | N generated | full-rank covariance | "
                  "factor | seconds per FID | FID |", "|---|---:|---|---|---:|---:|"]
        for f in result["fid_statistics"]:
            full = f.get("full_rank", "")
            lines.append(f"| torch-fidelity `fid_statistics_to_metric` | {f['generated']:,} | {full} | | "
                         f"{f['torch_fidelity_s']:.2f} | {f['fid_torch_fidelity']:.6f} |")
            lines.append(f"| bench, symmetric (factor once per reference: {f['factor_once_s']:.2f} s) | "
                         f"{f['generated']:,} | {full} | {f['factor']} | {f['bench_s']:.2f} | "
                         f"{f['fid_bench']:.6f} |")
            lines.append(f"| **ratio**, relative difference {f['relative_difference']:.1e} | | | | "
                         f"**{f['ratio']:.1f}x** | |")
        lines.append("")
    if "inception" in result:
        i = result["inception"]
        lines += [f"| Inception path, {i['images']:,} CIFAR-10 images (after a first batch: kernel "
                  "choice, compilation) | seconds | images/s | speed-up | share of peak | FID |",
                  "|---|---:|---:|---:|---:|---:|"]
        c = i["calculate_metrics"]
        runs = " and ".join(f"{r:.1f}" for r in c.get("runs", []))
        lines.append(f"| `torch_fidelity.calculate_metrics(fid=True)`"
                     f"{f' (mean of {runs} s, before and after)' if runs else ''} | {c['seconds']:.1f} | "
                     f"{c['images_per_s']:.1f} | 1.00x | | {c['fid']:.6f} |")
        for name in ("bench_eager", "bench_compiled", "bench_openvino"):
            if name not in i:
                continue
            b = i[name]
            lines.append(f"| bench `extract_features` ({name.split('_')[1]}; first batch "
                         f"{b['first_batch_seconds']:.0f} s) | {b['seconds']:.1f} | "
                         f"{b['images_per_s']:.1f} | **{b['speedup']:.2f}x** | {b['share_of_peak']:.0%} | "
                         f"{b['fid']:.6f} |")
        lines.append("")
    if "extractors" in result:
        lines += ["| feature extractor pass (`--extractors`) | images | features | seconds | images/s |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {e['images']:,} | {e['features']:,} | {e['seconds']:.1f} | "
                  f"{e['images_per_s']:.1f} |" for name, e in result["extractors"].items()]
        lines.append("")
    if "smoke_run" in result:
        s = result["smoke_run"]
        lines += [f"Smoke run `{s['command']}`, warm caches: **{s['outside_training_seconds']:.1f} s** "
                  f"outside training (median; evaluation {s['eval_seconds']:.1f} s of it; Inception on "
                  f"{s.get('inception_backend', 'torch')}).", ""]
    if "startup" in result:
        lines += ["| start-up | seconds |", "|---|---:|"]
        lines += [f"| `{k}` | {v['seconds']:.2f} |" for k, v in result["startup"].items()]
    return "\n".join(lines) + "\n"
