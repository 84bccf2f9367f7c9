"""Tracking overhead, side by side: the same variant, steps and logging interval (the trainer's
default, ``--log-every`` 25) trained with no tracker and with each tracker alone, alternating in
one process. Per tracker: the ratio of the training throughputs (images over the wall-clock of
the whole training loop, the tracker calls and their background threads included) and the share
of that wall-clock spent inside the tracker calls. ``python -m bench.perf --trackers
tensorboard,mlflow`` prints them; no timing is asserted anywhere.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.trackers import SafeTrackers


def measure_trackers(names: list[str], model: str, dataset_spec: str, device: torch.device, *,
                     batch_size: int = 32, steps: int = 50, repeats: int = 2, data_dir: Path | None = None,
                     options: dict | None = None, log=print) -> dict:
    """Returns ``{"sides": {side: {"images_per_s": [...], "tracker_share": [...]}}, "ratios":
    {tracker: throughput with it / without}, ...}``; ``side`` is ``none`` or a tracker's name.
    ``options``: the model's config fields as ``--set`` gives them (None: its defaults)."""
    from bench.config import RunConfig
    from bench.run import prepare_run, start_run

    config = RunConfig(models=[model], dataset=dataset_spec, budget=f"{steps}steps", batch_size=batch_size,
                       device=str(device), amp=device.type == "cuda", eval_samples=0, download=False,
                       data_dir=str(data_dir) if data_dir else None, trackers=list(names),
                       options={model: dict(options)} if options else {})
    prepared = prepare_run(config)
    out: dict = {"model": model, "device": str(device), "batch_size": batch_size, "steps": steps,
                 "log_every": config.log_every, "threads": torch.get_num_threads(), "sides": {}}
    with tempfile.TemporaryDirectory() as tmp:
        run = start_run(config, Path(tmp), "bench perf (trackers)", progress=False, prepared=prepared)
        sides = {"none": SafeTrackers(), **{n: SafeTrackers({n: run.trackers.trackers[n]}) for n in names}}
        measured = {side: {"images_per_s": [], "tracker_share": []} for side in sides}
        for seed in range(repeats):  # alternating, so drift in the machine's state hits every side alike
            for side, trackers in sides.items():
                folder = Path(tmp) / "perf" / f"{side}-{seed}"
                rate, share = _timed_training(run, model, seed, trackers, folder)
                measured[side]["images_per_s"].append(rate)
                measured[side]["tracker_share"].append(share)
                log(f"{side} seed {seed}: {rate:.1f} img/s, {share:.3%} of the loop in tracker calls")
        run.trackers.end_run("completed", None)
    baseline = statistics.median(measured["none"]["images_per_s"])
    out["sides"] = measured
    out["ratios"] = {n: statistics.median(measured[n]["images_per_s"]) / baseline for n in names}
    out["tracker_share"] = {n: statistics.median(measured[n]["tracker_share"]) for n in names}
    return out


def _timed_training(run, model: str, seed: int, trackers: SafeTrackers,
                    directory: Path) -> tuple[float, float]:
    """Images/s of one trial's training loop (wall-clock), and the share of it inside ``log_train``."""
    from bench.trainer import Trainer, make_batches
    from bench.trial import TrialSpec, build_variant, trial_info

    spec = TrialSpec(model, seed)
    settings = run.config.train_settings()
    variant = build_variant(run, spec)
    batches = make_batches(run.dataset.train.images, settings, run.device, seed)
    directory.mkdir(parents=True)
    trackers.start_trial(dataclasses.replace(trial_info(run, spec, directory), trial=directory.name))
    inside = [0.0]

    def on_log(step, values):
        start = time.perf_counter()
        trackers.log_train(step, values)
        inside[0] += time.perf_counter() - start

    trainer = Trainer(variant, batches, settings, directory, progress=False,
                      on_log=on_log if trackers.trackers else None)  # none: the trainer as without --tracker
    start = time.perf_counter()
    usage = trainer.run()
    wall = time.perf_counter() - start
    trackers.end_trial("completed", None)
    return usage.images / wall, inside[0] / wall


def markdown(result: dict) -> str:
    lines = [f"Tracking overhead: {result['model']}, batch {result['batch_size']}, {result['steps']} steps, "
             f"a logging interval every {result['log_every']} steps, {result['device']} "
             f"({result['threads']} threads); {len(result['sides']['none']['images_per_s'])} alternating "
             "repeats.",
             "", "| tracker | training img/s (median) | ratio to no tracker | time inside tracker calls |",
             "|---|---:|---:|---:|"]
    for side, m in result["sides"].items():
        rate = statistics.median(m["images_per_s"])
        ratio = result["ratios"].get(side, 1.0)
        share = result["tracker_share"].get(side, 0.0)
        lines.append(f"| {side} | {rate:.1f} | {ratio:.3f} | {share:.3%} |")
    return "\n".join(lines) + "\n"
