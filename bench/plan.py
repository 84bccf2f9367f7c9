"""A run's plan, said before it trains: its trials, budget, evaluation sizes and an estimated
duration from this device's measured rates.

Training: each variant's images/s is measured here (one FLOP-counted step, then one timed step
at the run's batch size, on the run's device), so a steps, images or FLOPs budget becomes
seconds; a wall-clock budget is its own estimate. Evaluation: the Inception images each
evaluation and the run's references need (cached reference features cost nothing), at this
machine's Inception images/s, timed on a short batch once per machine and cached like the peak.
Sampling, FID arithmetic and checkpoints are not counted: on a CPU they are small beside the
Inception passes. The plan goes into the manifest; the report compares it with what the run took.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from bench.config import RunConfig
from bench.device import cached_measurement, synchronize
from bench.flops import CountFlops
from bench.store.layout import default_cache_dir
from bench.trainer import apply_settings, make_batches
from bench.variant_config import config_from_dict

LONG_CPU_RUN = 3600.0  # seconds: a CPU plan above this says how to shrink it
INCEPTION_BATCH = 32  # images timed through Inception once per machine


@dataclasses.dataclass
class Plan:
    trials: int
    budget: str
    train_seconds: float  # all trials
    eval_seconds: float | None  # None: Inception's rate is not known (no sample metrics)
    inception_images: int  # through Inception over the whole run
    inception_images_per_s: float | None
    evaluations_per_trial: float
    train_images_per_s: dict[str, float]
    device: str
    notes: list[str] = dataclasses.field(default_factory=list)
    inception_backend: str | None = None  # torch or openvino, when Inception runs
    # the other --extractors: name -> {"images": through it over the run, "images_per_s": here}
    extractors: dict = dataclasses.field(default_factory=dict)

    @property
    def estimated_seconds(self) -> float:
        return self.train_seconds + (self.eval_seconds or 0.0)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "estimated_seconds": self.estimated_seconds}

    def lines(self) -> list[str]:
        out = [f"plan: {self.trials} trial(s), budget {self.budget} each: training about "
               f"{duration(self.train_seconds)}"]
        if self.train_images_per_s:
            rates = ", ".join(f"{m} {r:,.0f}" for m, r in self.train_images_per_s.items())
            out.append(f"  training images/s measured here: {rates}")
        if self.inception_images:
            rate = (f"at {self.inception_images_per_s:,.1f} images/s here" if self.inception_images_per_s
                    else "at an unknown rate")
            out.append(f"  evaluation: {self.evaluations_per_trial:g} per trial, {self.inception_images:,} "
                       f"images through Inception ({self.inception_backend}) {rate}: "
                       f"about {duration(self.eval_seconds or 0)}"
                       + (" with the other extractors" if self.extractors else ""))
        for name, used in self.extractors.items():
            out.append(f"    and {used['images']:,} images through {name} at {used['images_per_s']:,.1f} "
                       f"images/s here: about {duration(used['images'] / used['images_per_s'])}")
        out.append(f"  estimated total: about {duration(self.estimated_seconds)} on {self.device}")
        out += [f"  {note}" for note in self.notes]
        return out


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def train_rate(cls, config: RunConfig, options: dict | None, images: torch.Tensor,
               device: torch.device) -> tuple[float, float]:
    """``(images/s, FLOPs per step)`` of one variant: a FLOP-counted step, then a timed one."""
    settings = config.train_settings()
    variant = cls(tuple(images.shape[1:]), config_from_dict(cls, options), device, 0)
    apply_settings(variant, settings)
    batches = make_batches(images, settings, device, 0)
    variant.train()
    with CountFlops() as counter:
        variant.train_step(next(batches))
    batch = next(batches)
    synchronize(device)
    started = time.perf_counter()
    variant.train_step(batch)
    synchronize(device)
    return batch.shape[0] / (time.perf_counter() - started), float(counter.total)


def cached_train_rate(cls, model: str, config: RunConfig, images: torch.Tensor,
                      device: torch.device) -> tuple[float, float]:
    """``train_rate``, measured once per machine for a variant's resolved config, image shape,
    batch size and layout (cached like the peak; ``--remeasure-peak`` measures again)."""
    import json

    from bench.variant_config import resolved_config

    key = json.dumps({"model": model, "config": resolved_config(cls, config.options.get(model)),
                      "shape": list(images.shape[1:]), "batch": config.batch_size, "amp": bool(config.amp),
                      "channels_last": config.channels_last}, sort_keys=True, default=str)

    def measure(device, dtype):
        rate, flops = train_rate(cls, config, config.options.get(model), images, device)
        return {"images_per_s": rate, "flops_per_step": flops}

    values, _ = cached_measurement(f"train {key}", device, torch.float32, measure,
                                   remeasure=config.remeasure_peak)
    return values["images_per_s"], values["flops_per_step"]


def _train_seconds(config: RunConfig, rate: float, flops_per_step: float) -> float:
    """One trial's training seconds under the run's budget at ``rate`` images/s."""
    budget = config.train_settings().budget
    per_image = flops_per_step / config.batch_size
    return {"seconds": budget.amount,
            "steps": budget.amount * config.batch_size / rate,
            "images": budget.amount / rate,
            "flops": budget.amount / (per_image * rate) if per_image else math.nan}[budget.kind]


def _evaluations(config: RunConfig, train_seconds: float, rate: float) -> float:
    """Evaluations per trial: the final one, the untrained one, one per --eval-every interval."""
    count = 1.0 + (1.0 if config.eval_untrained else 0.0)
    if config.eval_every:
        every = config.train_settings().eval_every
        seconds_per_unit = {"seconds": 1.0, "steps": config.batch_size / rate, "images": 1.0 / rate,
                            "flops": math.nan}[every.kind]
        intervals = train_seconds / (every.amount * seconds_per_unit)
        if math.isfinite(intervals):
            count += max(0, math.ceil(intervals - 1e-9) - 1)
    return count


def _reference_images(config: RunConfig, prepared, metrics: dict) -> int:
    """Images of the references a run extracts once (not cached yet): the --eval-ref split and,
    with the data-copying metric, subsets of the train and test splits."""
    from bench.metrics.inception import EXTRACTOR_NAME, POOL3, resolve_weights_path, weights_sha256
    from bench.metrics.reference_cache import ReferenceKey

    dataset = prepared.dataset
    try:
        sha = weights_sha256(resolve_weights_path(config.fid_weights))
    except Exception:  # the weights are checked before; a download happens at the first evaluation
        sha = None

    def uncached(split: str, n: int | None) -> int:
        if split not in dataset.splits:
            return 0
        images = dataset.split(split)
        n = len(images.images) if n is None else min(n, len(images.images))
        if sha is not None:
            key = ReferenceKey(images.content_hash, f"{dataset.name}/{split}", n, 0,
                               f"{EXTRACTOR_NAME}/{POOL3}", sha)
            if (default_cache_dir() / key.filename()).is_file():
                return 0
        return n

    total = uncached(config.eval_ref, config.ref_samples) if config.eval_ref in dataset.splits else 0
    if "data-copying" in metrics:
        whole_ref = config.eval_ref if config.ref_samples is None else None
        total += sum(uncached(split, config.eval_samples) for split in ("train", "test")
                     if split != whole_ref)
    return total


def inception_rate(config: RunConfig, device: torch.device, extractor_loader) -> tuple[float, str]:
    """Inception images/s on this machine and the backend that runs it ("torch" or "openvino"):
    a short timed batch, once per machine and backend (cached)."""
    from bench.metrics.inception import resolve_backend

    backend = resolve_backend(config.inception_backend, device)

    def measure(device, dtype):
        return {"inception_images_per_s": images_per_s(extractor_loader(), INCEPTION_BATCH, device)}

    name = "inception" if backend == "torch" else f"inception {backend}"
    rates, _ = cached_measurement(name, device, torch.float32, measure,
                                  remeasure=config.remeasure_peak)
    return rates["inception_images_per_s"], backend


def images_per_s(extractor, batch: int, device: torch.device) -> float:
    """A feature extractor's images/s on one timed batch of 32 x 32 images, after a warm-up."""
    from bench.metrics.features import extract_features

    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    extract_features(images[:4], extractor)  # warm-up: oneDNN/cuDNN kernel choice
    synchronize(device)
    started = time.perf_counter()
    extract_features(images, extractor)
    synchronize(device)
    return batch / (time.perf_counter() - started)


def extractor_rates(config: RunConfig, prepared, generated: float, notes: list[str]) -> dict:
    """The other ``--extractors``' share of the evaluation: the generated images and the reference
    through each, at its rate measured here once per machine (cached, as Inception's)."""
    from bench.evaluation import select_extractors
    from bench.metrics.extractors import DEFAULT

    settings, dataset = config.eval_settings(), prepared.dataset
    chosen = select_extractors(prepared.plugins.extractors, settings, check_weights=False)
    reference = (min(config.ref_samples or math.inf, len(dataset.split(config.eval_ref).images))
                 if config.eval_ref in dataset.splits else 0)
    out = {}
    for name, extractor in chosen.items():
        if name == DEFAULT:
            continue

        def measure(device, dtype, name=name, extractor=extractor):
            network = extractor.load(settings.extractor_weights.get(name), device)
            return {"images_per_s": images_per_s(network, INCEPTION_BATCH // 4, device)}

        try:
            rates, _ = cached_measurement(f"extractor {name}", prepared.device, torch.float32, measure,
                                          remeasure=config.remeasure_peak)
        except Exception as exc:  # its evaluation will fail on its own; the plan must not
            notes.append(f"{name}: its rate could not be measured ({type(exc).__name__}: {exc})")
            continue
        out[name] = {"images": int(generated + reference), "images_per_s": rates["images_per_s"]}
    return out


def estimate(config: RunConfig, prepared, extractor_loader, trials_per_model: int | None = None) -> Plan:
    """The plan of a run whose options passed ``bench.run.prepare_run``: ``trials_per_model``
    trials of each model (default: one per seed; a sweep gives its search + final count)."""
    from bench.device import device_name

    device, dataset, plugins = prepared.device, prepared.dataset, prepared.plugins
    notes = []
    images = dataset.train.images[: max(2 * config.batch_size, 1)]
    rates, train_seconds, evaluations, encoders = {}, 0.0, {}, 0
    remote = config.executor != "local"
    per_model = trials_per_model or len(config.seeds)
    for model in config.models:
        cls = plugins.models.get(model).obj
        if remote:  # trials train on the workers' devices, whose rates are unknown here
            rate, flops = math.nan, math.nan
        else:
            try:
                rate, flops = cached_train_rate(cls, model, config, images, device)
                rates[model] = rate
            except Exception as exc:  # the trial will fail on its own; the others must not
                rate, flops = math.nan, math.nan
                notes.append(f"{model}: its training rate could not be measured ({type(exc).__name__}: "
                             f"{exc}); its trials are not in the estimate")
        seconds = _train_seconds(config, rate, flops)
        if math.isfinite(seconds):
            train_seconds += seconds * per_model
        evaluations[model] = _evaluations(config, seconds, rate)
        encoders += cls.has_encoder() * per_model
    if remote:
        notes.append(f"trials train on {config.executor} workers: training time is not estimated here "
                     "unless the budget is wall-clock")
    per_trial = max(evaluations.values()) if evaluations else 1.0
    from bench.evaluation import select_metrics

    metrics = select_metrics(plugins.metric_objects(), config.eval_settings())
    generated = config.eval_samples * per_trial * len(config.models) * per_model
    recon = config.eval_settings().recon_images * per_trial * encoders if config.eval_samples else 0
    inception = int(generated + recon + (_reference_images(config, prepared, metrics)
                                         if config.eval_samples else 0))
    rate, backend = inception_rate(config, device, extractor_loader) if inception else (None, None)
    others = extractor_rates(config, prepared, generated, notes) if config.eval_samples else {}
    others_seconds = sum(used["images"] / used["images_per_s"] for used in others.values())
    plan = Plan(len(config.models) * per_model, config.budget, train_seconds,
                inception / rate + others_seconds if rate else None, inception, rate, per_trial, rates,
                device_name(device), notes, inception_backend=backend, extractors=others)
    if device.type == "cpu" and plan.estimated_seconds > LONG_CPU_RUN:
        plan.notes.append("over an hour on the CPU: shrink it with --eval-samples (e.g. 1000), "
                          "--ref-samples, --budget or fewer --seeds/--models")
    return plan
