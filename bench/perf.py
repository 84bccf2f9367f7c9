"""Side-by-side speed measurements: is the harness ever the bottleneck?

Three comparisons, each against a baseline measured in the same process (issue 7):

* data path - bench's on-device batching (uint8 tensor, index, flip, scale) against the
  obvious pipeline: a torchvision ``ImageFolder`` through a ``DataLoader`` with per-image
  transforms, as in the official PyTorch DCGAN example;
* harness overhead - a full trial (``bench.trial.run_trial``: trainer, loss accumulation,
  logging, checkpoints, FLOP counting) against the bare ``train_step`` loop of the same variant,
  same batch size and steps, and, for ``gan``, against a plain PyTorch loop that drives the same
  two networks with its own Adam and the same losses (no bench code in the step at all);
* MFU - each variant's achieved training FLOP/s over the matrix-product peak, per backbone.

Every comparison runs on each backbone given (``--backbones dcgan,resnet``); a backbone whose
step costs k times dcgan's runs 1/k of the steps (at least 5), so each measurement takes about
as long.

``python -m bench.perf --help`` runs them and writes JSON plus a Markdown table. Ratios, not
absolute times, are the point: both sides of each ratio share the machine's state.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.data.batches import DeviceBatches
from bench.device import resolve_device, synchronize
from bench.flops import CountFlops
from bench.store import read_json, read_jsonl
from bench.store.layout import MANIFEST_FILE, METRICS_FILE
from bench.trainer import TrainSettings, apply_settings, make_batches
from bench.variant import Variant

# -- data path ----------------------------------------------------------------------------


def device_batches_rate(images: torch.Tensor, batch_size: int, batches: int, device,
                        channels_last: bool = True) -> float:
    """Images per second delivered by ``DeviceBatches`` (flip on), ready for the model."""
    source = DeviceBatches(images, batch_size, device, flip=True, channels_last=channels_last)
    next(source)  # first epoch's permutation, allocator warm-up
    synchronize(torch.device(device))
    start = time.perf_counter()
    for _ in range(batches):
        x = next(source)
    synchronize(x.device)
    return batches * batch_size / (time.perf_counter() - start)


def dataloader_rate(folder: Path, batch_size: int, batches: int, device, workers: int = 2,
                    resolution: int = 32) -> float:
    """Images per second from the PyTorch DCGAN example's pipeline over an image folder.

    ``ImageFolder`` + ``Resize``/``CenterCrop``/``ToTensor``/``Normalize`` per image (plus the
    random flip bench also applies), ``DataLoader(shuffle=True, num_workers=workers)``, then the
    copy to ``device``. Worker start-up (the first batch) is not counted.
    """
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose([
        transforms.Resize(resolution),
        transforms.CenterCrop(resolution),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    device = torch.device(device)
    loader = DataLoader(datasets.ImageFolder(str(folder), transform=transform), batch_size=batch_size,
                        shuffle=True, num_workers=workers, drop_last=True,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        x, _ = next(it)
        x = x.to(device, non_blocking=True)
    synchronize(device)
    return batches * batch_size / (time.perf_counter() - start)


# -- train steps --------------------------------------------------------------------------


def make_variant(cls: type[Variant], image_shape, device, settings: TrainSettings, seed: int = 0,
                 backbone: str | None = None, values: dict | None = None) -> Variant:
    """``cls`` at its defaults (on ``backbone``, with that backbone's defaults, if given)."""
    from bench.variant_config import config_from_dict

    config = config_from_dict(cls, {**(values or {}), **({"backbone": backbone} if backbone else {})})
    return apply_settings(cls(image_shape, config, device, seed), settings)


def bare_loop_rate(variant: Variant, batches, steps: int) -> float:
    """Images per second of ``train_step`` called back to back: no logging, no checks."""
    device = variant.device
    variant.train()
    variant.train_step(next(batches))  # warm-up: allocations, oneDNN/cuDNN kernel choice
    synchronize(device)
    start = time.perf_counter()
    images = 0
    for _ in range(steps):
        batch = next(batches)
        variant.train_step(batch)
        images += batch.shape[0]
    synchronize(device)
    return images / (time.perf_counter() - start)


def plain_gan_rate(variant: Variant, batches, steps: int) -> float:
    """Images per second of the loop one would write by hand for ``gan`` (DCGAN, non-saturating),
    on the variant's own two networks: fresh Adam optimizers with its settings, torch's global
    random generator, the ``n_dis`` D steps then the G step as ``bench.adversarial.AlternatingGAN``
    takes them; no bench code between the batches and the optimizers."""
    import torch.nn.functional as F

    G, D = variant.networks["generator"], variant.networks["discriminator"]
    cfg = variant.config
    adam = {"fused": True} if variant.device.type == "cuda" else {}
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2), **adam)
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2), **adam)
    autocast = torch.autocast(variant.device.type, torch.bfloat16, enabled=variant.amp)

    n_dis = getattr(cfg, "n_dis", 1)

    def step(x):
        for i in range(n_dis):
            z = torch.randn(x.shape[0], cfg.latent, device=x.device)
            with autocast, torch.set_grad_enabled(i == n_dis - 1):
                fake = G(z)
            with autocast:
                loss_d = F.softplus(-D(x)).mean() + F.softplus(D(fake.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        with autocast:
            loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_g.step()

    G.train(), D.train()
    step(next(batches))  # warm-up, as bare_loop_rate's
    synchronize(variant.device)
    start, images = time.perf_counter(), 0
    for _ in range(steps):
        batch = next(batches)
        step(batch)
        images += batch.shape[0]
    synchronize(variant.device)
    return images / (time.perf_counter() - start)


def flops_per_image(variant: Variant, batch: torch.Tensor) -> float:
    with CountFlops() as counter:
        variant.train_step(batch)
    return counter.total / batch.shape[0]


def profile_steps(variant: Variant, batches, steps: int = 3, top: int = 15) -> tuple[str, dict]:
    """torch.profiler over a few train steps: (table of the top operators, op -> time share)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if variant.device.type == "cuda" else [])
    variant.train_step(next(batches))
    with profile(activities=activities) as prof:
        for _ in range(steps):
            variant.train_step(next(batches))
        synchronize(variant.device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    shares = {e.key: e.self_cpu_time_total / total for e in events}
    shares = dict(sorted(shares.items(), key=lambda kv: -kv[1]))
    return events.table(sort_by="self_cpu_time_total", row_limit=top), shares


# -- the whole report ---------------------------------------------------------------------


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def measure(models: list[str], dataset_spec: str, device: torch.device, *, data_dir: Path | None = None,
            loader_folder: Path | None = None, batch_size: int = 128,
            steps: int = 50, repeats: int = 3, data_batches: int = 100, mfu_steps: int = 20,
            overhead_models: list[str] | None = None, profile_below: float = 0.60,
            backbones: tuple[str, ...] = ("dcgan",), config_values: dict | None = None,
            log=print) -> dict:
    """Run every comparison; returns a JSON-ready dict (see ``markdown``).

    ``config_values``: config fields every variant takes (e.g. ``{"width": 16}``), in the bare
    loop, the plain loop and the trial alike; None: the defaults.

    ``dataset_spec`` is what ``bench run --dataset`` takes; ``loader_folder``, an image folder
    (``<class>/*.jpg``) for the DataLoader baseline (skipped without one). ``steps`` and
    ``mfu_steps`` are dcgan's; another backbone runs fewer (``_steps_on``).
    """
    from bench.config import RunConfig, RunError
    from bench.run import prepare_run, start_run
    from bench.trial import TrialSpec, run_trial

    out: dict = {"device": str(device), "batch_size": batch_size, "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "backbones": list(backbones)}
    config = RunConfig(models=list(overhead_models or models[:1]), dataset=dataset_spec,
                       budget=f"{steps}steps",
                       seeds=list(range(repeats)), data_dir=str(data_dir) if data_dir else None,
                       batch_size=batch_size, device=str(device), amp=device.type == "cuda",
                       eval_samples=0, download=False)
    settings = config.train_settings()
    log(f"loading {dataset_spec} ...")
    start = time.perf_counter()
    prepared = prepare_run(config)
    plugins, dataset = prepared.plugins, prepared.dataset
    classes = {m: plugins.models.get(m).obj for m in models}  # unknown names fail here, not minutes in
    unknown = [b for b in backbones if b not in plugins.backbones]
    if unknown:
        raise RunError(f"unknown backbone(s) {', '.join(unknown)}; registered: "
                       f"{', '.join(plugins.backbones.names())}")
    # each backbone's cost relative to dcgan's, from the first model's FLOPs per image
    probe = next(iter(classes))  # its FLOPs per image are also its MFU row's (not counted twice)
    cost = {b: _flops_per_image(classes[probe], dataset, device, settings, b, config_values)
            for b in backbones}
    scale = {b: cost[b] / cost.get("dcgan", cost[backbones[0]]) for b in backbones}
    out["steps"] = {b: {"overhead": _steps_on(steps, scale[b]), "mfu": _steps_on(mfu_steps, scale[b])}
                    for b in backbones}
    images = dataset.train.images
    out["dataset"] = {"spec": dataset_spec, "images": int(images.shape[0]),
                      "load_seconds": time.perf_counter() - start}

    # Data path: alternate the two, so drift in the machine's state hits both alike.
    bench_rates, loader_rates = [], []
    for _ in range(repeats):
        bench_rates.append(device_batches_rate(images, batch_size, data_batches, device))
        if loader_folder is not None:
            loader_rates.append(dataloader_rate(loader_folder, batch_size, max(data_batches // 4, 3), device))
    out["data_path"] = {"bench_images_per_s": _median(bench_rates),
                        "dataloader_images_per_s": _median(loader_rates),
                        "ratio": _median(bench_rates) / _median(loader_rates) if loader_rates else None,
                        "bench_runs": bench_rates, "dataloader_runs": loader_rates}
    log(f"data path: {out['data_path']}")

    # Harness overhead: bare loop and full trial alternate; both on the same dataset tensor.
    out["overhead"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # The trials' run folder; its manifest holds the peaks start_run measured for MFU.
        run = start_run(config, Path(tmp), "bench perf (harness overhead)", progress=False,
                        prepared=prepared)
        peaks = read_json(run.directory / MANIFEST_FILE)["device"]["peak_flops_by_kernel"]
        out["peaks"] = peaks
        peak = max(peaks.values())
        log("peaks (GFLOP/s): " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks.items()))
        for model, backbone in ((m, b) for b in backbones for m in config.models):
            cls = plugins.models.get(model).obj
            n = out["steps"][backbone]["overhead"]
            # the trial's steps: its own budget, on the backbone (its own options name it)
            run.config = dataclasses.replace(run.config, budget=f"{n}steps")
            options = {**(config_values or {}), **({} if backbone == "dcgan" else {"backbone": backbone})}
            plain_loop = model == "gan" and cls.Config().loss == "nonsaturating"
            bare, trial, trial_whole, plain = [], [], [], []
            for seed in config.seeds:
                variant = make_variant(cls, dataset.image_shape, device, settings, seed, backbone,
                                       config_values)
                bare.append(bare_loop_rate(variant, make_batches(images, settings, device, seed), n))
                if plain_loop:
                    plain.append(plain_gan_rate(variant, make_batches(images, settings, device, seed), n))
                del variant
                run_trial(run, TrialSpec(model, seed, options))
                row = read_jsonl(run.directory / METRICS_FILE)[-1]
                if row.get("status") != "completed":
                    raise RuntimeError(f"{model} trial did not complete: {row.get('message')}")
                trial.append(row["train_images_per_s"])
                trial_whole.append(row["images_seen"] / row["train_seconds"])
                log(f"overhead {model}@{backbone} seed {seed}: bare {bare[-1]:.1f} img/s, "
                    f"trial {trial[-1]:.1f} "
                    f"(whole trial incl. first FLOP-counted step {trial_whole[-1]:.1f})"
                    + (f", plain PyTorch loop {plain[-1]:.1f}" if plain else ""))
            out["overhead"][f"{model}@{backbone}"] = {
                "model": model, "backbone": backbone,
                "bare_images_per_s": _median(bare), "trial_images_per_s": _median(trial),
                "trial_whole_images_per_s": _median(trial_whole),
                "plain_images_per_s": _median(plain) if plain else None,
                "overhead": 1 - _median(trial) / _median(bare),
                "overhead_whole": 1 - _median(trial_whole) / _median(bare),
                "overhead_vs_plain": 1 - _median(trial) / _median(plain) if plain else None,
                "bare_runs": bare, "trial_runs": trial, "trial_whole_runs": trial_whole, "plain_runs": plain,
                "steps": n,
            }

    # MFU per backbone and variant, from the bare loop at the trainer's settings.
    out["mfu"], out["profiles"] = {b: {} for b in backbones}, {}
    for backbone in backbones:
        for model, cls in classes.items():
            variant = make_variant(cls, dataset.image_shape, device, settings, backbone=backbone,
                                   values=config_values)
            batches = make_batches(images, settings, device, 0)
            fpi = cost[backbone] if model == probe else flops_per_image(variant, next(batches))
            n = out["steps"][backbone]["mfu"]
            rate = _median([bare_loop_rate(variant, batches, n) for _ in range(repeats)])
            achieved = fpi * rate
            out["mfu"][backbone][model] = {
                "flops_per_image": fpi, "images_per_s": rate, "flops_per_s": achieved, "mfu": achieved / peak,
                **{f"mfu_vs_{k}": achieved / v for k, v in peaks.items()}}
            log(f"mfu {model}@{backbone}: {fpi / 1e9:.2f} GFLOP/img, {rate:.1f} img/s, "
                f"{achieved / 1e9:.0f} GFLOP/s, MFU {achieved / peak:.0%}")
            if achieved / peak < profile_below:
                table, shares = profile_steps(variant, batches)
                out["profiles"][f"{model}@{backbone}"] = {"table": table,
                                                          "top": dict(list(shares.items())[:15])}
    return out


def _flops_per_image(cls, dataset, device, settings, backbone: str, values: dict | None = None) -> float:
    variant = make_variant(cls, dataset.image_shape, device, settings, backbone=backbone, values=values)
    return flops_per_image(variant, next(make_batches(dataset.train.images, settings, device, 0)))


def _steps_on(steps: int, cost: float) -> int:
    """Steps on a backbone whose step costs ``cost`` times dcgan's: about the same time, at least 5
    (``steps`` itself when that is fewer)."""
    return steps if cost <= 1 else max(min(steps, 5), math.ceil(steps / cost))


def markdown(result: dict) -> str:
    """The benchmark table, as written to results/benchmarks/README.md."""
    lines = []
    peaks = result["peaks"]
    peak = max(peaks.values())
    lines.append(f"Device {result['device']} ({result['threads']} threads), torch {result['torch']}, "
                 f"batch {result['batch_size']}. Matrix-product peaks measured in this run: "
                 + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items())
                 + f"; MFU is against the highest, {peak / 1e9:.0f} GFLOP/s.")
    d = result["data_path"]
    lines += ["", "| data path | images/s |", "|---|---:|",
              "| bench `DeviceBatches` (uint8 on device, index, flip, scale) | "
              f"{d['bench_images_per_s']:,.0f} |"]
    if d.get("ratio"):
        lines.append(f"| torchvision `ImageFolder` + `DataLoader` (2 workers, per-image transforms) | "
                     f"{d['dataloader_images_per_s']:,.0f} |")
        lines.append(f"| **ratio** | **{d['ratio']:,.0f}x** |")
    lines.append(f"\nbench decodes the dataset once, up front: {result['dataset']['load_seconds']:.1f} s for "
                 f"{result['dataset']['images']:,} images.")
    lines += ["", "| harness overhead | plain PyTorch loop img/s | bare `train_step` loop img/s | "
              "full trial img/s (steady) | overhead vs plain | overhead vs bare | whole trial img/s "
              "(incl. FLOP-counted first step) | overhead |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, o in result["overhead"].items():
        plain = o.get("plain_images_per_s")
        lines.append(f"| {name} ({o['steps']} steps, {len(o['bare_runs'])} alternating repeats) | "
                     + (f"{plain:.1f}" if plain else "-") + f" | {o['bare_images_per_s']:.1f} | "
                     f"{o['trial_images_per_s']:.1f} | "
                     + (f"{o['overhead_vs_plain']:+.1%}" if plain else "-") + f" | {o['overhead']:+.1%} | "
                     f"{o['trial_whole_images_per_s']:.1f} | {o['overhead_whole']:+.1%} |")
    backbones = list(result["mfu"])
    lines += ["", "| variant | " + " | ".join(f"{b}: GFLOP / image | {b}: train img/s | {b}: MFU"
                                             for b in backbones) + " |",
              "|---|" + "---:|---:|---:|" * len(backbones)]
    for model in dict.fromkeys(m for b in backbones for m in result["mfu"][b]):
        cells = []
        for b in backbones:
            m = result["mfu"][b].get(model)
            cells.append(f"{m['flops_per_image'] / 1e9:.2f} | {m['images_per_s']:.1f} | {m['mfu']:.0%}"
                         if m else "- | - | -")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def measure_evaluation(data_dir: Path | None, weights: str | None, *, images: int = 1000,
                       inception: bool = True, extractors: tuple[str, ...] = ("inception",),
                       extractor_weights: dict | None = None, log=print) -> dict:
    """The evaluation-cost comparisons of ``bench.perf_evaluation``, in one process."""
    from bench import perf_evaluation as pe
    from bench.device import cached_peaks
    from bench.metrics.features import extract_features
    from bench.metrics.inception import load_feature_extractor

    out: dict = {"device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__}
    out["startup"] = pe.startup()
    log(f"startup: {out['startup']}")
    out["smoke_run"] = pe.smoke_run(weights, log=log)
    if data_dir is None or weights is None:
        log("no --data-dir / --fid-weights: the FID and Inception comparisons need real CIFAR-10")
        return out
    from bench.data import open_dataset
    from bench.metrics.reference_cache import subset_indices
    from bench.plugins import load_plugins

    dataset = open_dataset(load_plugins().datasets, "cifar10", data_dir=str(data_dir), download=False)
    train, test = (dataset.split(s).images for s in ("train", "test"))
    train = train[subset_indices(len(train), images, 0)]
    test = test[subset_indices(len(test), images, 0)]
    peaks, _ = cached_peaks(torch.device("cpu"))
    out["peak_flops"] = max(peaks.values())
    if inception:
        out["inception"] = pe.inception_speed(train, test, weights, out["peak_flops"], log=log)
        log(f"inception: {out['inception']}")
    extractor = load_feature_extractor(weights)
    out["extractors"] = pe.extractor_speeds(test, _extractor_networks(extractors, extractor,
                                                                      extractor_weights or {}), log=log)
    real = extract_features(test, extractor)
    generated = extract_features(train, extractor)
    out["fid_statistics"] = [pe.fid_statistics_speed(generated, real),
                             pe.fid_statistics_speed(generated[:32], real),
                             pe.fid_statistics_speed(generated, real, full_rank="reference"),
                             pe.fid_statistics_speed(generated, real, full_rank="both")]
    log(f"fid statistics: {out['fid_statistics']}")
    return out


def _extractor_networks(names, inception, weights: dict) -> dict:
    """name -> loaded network of each ``--extractors`` extractor (Inception: the one given)."""
    from bench.metrics.extractors import selected
    from bench.plugins import load_plugins

    chosen = selected(load_plugins().extractors, names)
    return {name: inception if name == "inception" else e.load(weights.get(name), "cpu")
            for name, e in chosen.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gan,vae,vaegan,arvae")
    parser.add_argument("--backbones", default="dcgan",
                        help="comma-separated backbones to measure every comparison on, e.g. dcgan,resnet")
    parser.add_argument("--overhead-models", default="gan",
                        help="variants for the harness-overhead comparison")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding cifar10/ (an image-folder export); without it: synthetic "
                             "images and no DataLoader baseline")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="steps per harness-overhead measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="write JSON here and the table beside it (.md)")
    parser.add_argument("--evaluation", action="store_true",
                        help="measure what evaluation costs instead (bench.perf_evaluation): FID from "
                             "statistics, the Inception path vs calculate_metrics, a smoke run, start-up")
    parser.add_argument("--fid-weights", default=os.environ.get("BENCH_FID_WEIGHTS"),
                        help="with --evaluation: FID Inception weights (env BENCH_FID_WEIGHTS)")
    parser.add_argument("--images", type=int, default=1000,
                        help="with --evaluation: CIFAR-10 images per split for the FID comparisons")
    parser.add_argument("--extractors", default="inception", metavar="NAMES",
                        help="with --evaluation: time each of these feature extractors' pass (e.g. "
                             "inception,dinov2-vit-s-14)")
    parser.add_argument("--extractor-weights", action="append", default=[], metavar="NAME=PATH",
                        help="with --evaluation: an extractor's weights file (repeatable)")
    parser.add_argument("--no-inception", action="store_true",
                        help="with --evaluation: skip the Inception comparison (minutes on a CPU)")
    parser.add_argument("--trackers", default=None, metavar="NAMES",
                        help="measure tracking overhead instead (bench.perf_trackers): the first of --models "
                             "trained with no tracker and with each of these (e.g. tensorboard,mlflow), "
                             "same steps, side by side")
    args = parser.parse_args(argv)
    from bench.config import RunError
    from bench.data.dataset import DatasetError
    from bench.device import DeviceError
    from bench.metrics.errors import MetricsError

    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.trackers:
            from bench import perf_trackers

            result = perf_trackers.measure_trackers(
                [n for n in args.trackers.split(",") if n], args.models.split(",")[0],
                "cifar10" if args.data_dir else "synthetic:4096", resolve_device(args.device),
                batch_size=args.batch_size, steps=args.steps, repeats=args.repeats, data_dir=args.data_dir,
                log=log)
            table = perf_trackers.markdown(result)
        elif args.evaluation:
            from bench import perf_evaluation
            from bench.metrics.extractors import parse_weights

            result = measure_evaluation(args.data_dir, args.fid_weights, images=args.images,
                                        inception=not args.no_inception,
                                        extractors=tuple(n for n in args.extractors.split(",") if n),
                                        extractor_weights=parse_weights(args.extractor_weights), log=log)
            table = perf_evaluation.markdown(result)
        else:
            device = resolve_device(args.device)
            folder = args.data_dir / "cifar10" / "train" if args.data_dir else None
            result = measure([m for m in args.models.split(",") if m],
                             "cifar10" if args.data_dir else "synthetic:4096", device, data_dir=args.data_dir,
                             loader_folder=folder if folder and folder.is_dir() else None,
                             batch_size=args.batch_size, steps=args.steps, repeats=args.repeats,
                             overhead_models=[m for m in args.overhead_models.split(",") if m],
                             backbones=tuple(b for b in args.backbones.split(",") if b), log=log)
            table = markdown(result)
    except (DatasetError, DeviceError, RunError, KeyError, MetricsError, ValueError) as exc:
        parser.error(str(exc.args[0]))  # the message says what to fix; a traceback would bury it
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
