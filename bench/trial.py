"""One trial: a (model, options, seed) triple trained under the run's budget and evaluated.

``run_trial`` owns a trial's whole life: build the variant, train it (resuming from its
checkpoint), evaluate it (before, during and after training as the run asks), and write its
status, metrics rows, sample and reconstruction grids, latent interpolation pictures
(``bench.latents``, for variants with ``decode``) and, if it fails, its traceback. A
variant that diverges or raises is recorded as such and the caller goes on with the next
trial. What the trial used is returned as a manifest entry, which the executor records:
a trial never touches the manifest, so it runs the same in a Ray worker's scratch folder.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import traceback
from pathlib import Path

import torch

from bench.backbones import DEFAULT_BACKBONE, takes_backbone
from bench.checkpoint import load_checkpoint
from bench.config import RunConfig
from bench.data import Dataset, open_dataset
from bench.device import device_name, peak_memory_bytes, reset_peak_memory, resolve_device
from bench.ema import applied
from bench.evaluation import Evaluator, select_extractors, select_metrics
from bench.images import grid_array, save_grid
from bench.latents import save_latent_pictures
from bench.plugins import Plugins, load_plugins
from bench.store import (
    CHECKPOINT_FILE,
    ERROR_FILE,
    FINISHED,
    LOG_FILE,
    RECONSTRUCTIONS_FILE,
    SAMPLES_FILE,
    read_jsonl,
    read_manifest,
    read_status,
    record_trial,
    trial_dir,
    trial_name,
    write_status,
)
from bench.store.rows import append_row, has_row, read_rows, trial_rows
from bench.store.status import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING
from bench.trackers import SafeTrackers, TrialInfo, make_trackers
from bench.trainer import Diverged, Trainer, Usage, make_batches
from bench.variant import Variant
from bench.variant_config import config_from_dict, resolved_config


@dataclasses.dataclass
class TrialSpec:
    """What identifies a trial. ``options`` are the trial's own config overrides, applied over
    the run's ``--set`` (a sweep gives each sampled setting its own); ``backbone`` is the one
    the model builds on where it is not the default (``trial_spec`` fills it in); ``sweep``, a
    sweep's slot of it (``{"phase": "search", "slot": 3}``), for the trackers (not in its name)."""

    model: str
    seed: int
    options: dict = dataclasses.field(default_factory=dict)
    backbone: str | None = None
    sweep: dict | None = None

    @property
    def name(self) -> str:
        return trial_name(self.model, self.seed, self.options, self.backbone)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RunContext:
    """What every trial of a run shares (``run_context``: built once per run by ``bench.run``,
    and once per worker process by the Ray executor)."""

    directory: Path  # the run folder (a scratch copy on a Ray worker)
    config: RunConfig
    plugins: Plugins
    dataset: Dataset
    device: torch.device
    evaluator: Evaluator
    peak_flops: float = math.nan  # matrix-product FLOP/s of this device, the denominator of MFU
    progress: bool = True
    trackers: SafeTrackers = dataclasses.field(default_factory=SafeTrackers)  # --tracker's, guarded

    def trial_dir(self, spec: TrialSpec) -> Path:
        return trial_dir(self.directory, spec.name)

    def variant_options(self, spec: TrialSpec) -> dict:
        """The trial's config overrides: the run's ``--set`` for its model, then its own."""
        return {**self.config.options.get(spec.model, {}), **spec.options}


def trial_spec(config: RunConfig, model: str, seed: int, options: dict | None = None) -> TrialSpec:
    """The spec of a trial of ``model`` in a run of ``config``: its backbone is the one the run's
    options give the model (``bench.run`` writes ``--backbone`` into them), if not the default."""
    return TrialSpec(model, seed, dict(options or {}), config.options.get(model, {}).get("backbone"))


def open_run_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    """The dataset the run's config names, resized and subset as it asks."""
    return open_dataset(plugins.datasets, config.dataset, data_dir=config.data_dir,
                        resolution=config.resolution, subset=config.subset, download=config.download)


def run_context(directory: Path, config: RunConfig, *, plugins: Plugins | None = None,
                dataset: Dataset | None = None, device: torch.device | None = None, extractor=None,
                peak_flops: float = math.nan, progress: bool = True,
                trackers: SafeTrackers | None = None) -> RunContext:
    """The context of a run's trials, for every executor. What the caller has loaded already
    (``bench.run.prepare_run``: plugins, dataset, device, the FID Inception network, the started
    trackers) is passed in, so nothing is loaded twice; the rest comes from the config (a Ray
    worker loads it all, and makes its trackers from the state the driver's recorded)."""
    plugins = plugins if plugins is not None else load_plugins(config.plugin_files)
    dataset = dataset if dataset is not None else open_run_dataset(plugins, config)
    device = device if device is not None else resolve_device(config.device)
    settings = config.eval_settings()
    evaluator = Evaluator(settings, dataset, device, select_metrics(plugins.metric_objects(), settings),
                          select_extractors(plugins.extractors, settings, check_weights=False))
    if extractor is not None:
        evaluator.extractor = extractor
    if trackers is None:
        trackers = make_trackers(plugins.trackers, config.trackers, config.tracker_uri, config.tracker_state)
    return RunContext(directory, config, plugins, dataset, device, evaluator, peak_flops, progress, trackers)


@dataclasses.dataclass
class TrialResult:
    spec: TrialSpec
    status: str  # completed | diverged | failed
    message: str
    entry: dict  # for the manifest's trials.<name>: what the trial used


@dataclasses.dataclass
class _Outcome:
    """What training and evaluating one trial produced, whether or not it finished."""

    status: str = COMPLETED
    message: str = ""
    usage: Usage | None = None
    diverged_at: int | None = None
    params: dict = dataclasses.field(default_factory=dict)
    peak_memory: int | None = None
    evaluation: dict = dataclasses.field(default_factory=dict)


def finished_status(ctx: RunContext, spec: TrialSpec, rows: list[dict] | None = None) -> str | None:
    """The status of a trial that is already finished (kept as it is by ``--resume``), else None.

    A trial killed after writing its final row but before its status file or its manifest
    entry (which the executor writes last) is finished: what is missing is repaired from the
    row, so that what the trial used still counts (a sweep's compute per variant sums them).
    """
    directory = ctx.trial_dir(spec)
    status = read_status(directory)
    finished = status["status"] if status is not None and status["status"] in FINISHED else None
    final = None
    if finished is None:
        final = _written_final_row(ctx, spec, rows)
        if final is None:
            return None
        finished = final["status"] if final.get("status") in FINISHED else COMPLETED
        write_status(directory, finished, final.get("message", ""))
    if spec.name not in read_manifest(ctx.directory).get("trials", {}):
        final = final or _written_final_row(ctx, spec, rows)
        if final is not None:
            record_trial(ctx.directory, spec.name, _entry_from_row(ctx, spec, final))
    return finished


def _written_final_row(ctx: RunContext, spec: TrialSpec, rows: list[dict] | None) -> dict | None:
    """The trial's final row in metrics.jsonl, if it was written."""
    rows = read_rows(ctx.directory) if rows is None else rows
    return next((r for r in reversed(trial_rows(rows, spec.name)) if r.get("eval_point") == "final"), None)


def _entry_from_row(ctx: RunContext, spec: TrialSpec, row: dict) -> dict:
    """``_entry`` as the trial's final row gives it back (the row holds what the trial used)."""
    usage = Usage(steps=int(row.get("step") or 0), images=int(row.get("images_seen") or 0),
                  seconds=float(row.get("train_seconds") or 0.0), flops=float(row.get("train_flops") or 0.0))
    outcome = _Outcome(status=row.get("status", COMPLETED), message=row.get("message", ""), usage=usage)
    return {**_entry(ctx, spec, outcome), "repaired_from": "its final row (killed before recording it)"}


def run_trial(ctx: RunContext, spec: TrialSpec) -> TrialResult:
    """Train, evaluate and record one trial (continuing from its checkpoint if it has one)."""
    directory = ctx.trial_dir(spec)
    directory.mkdir(parents=True, exist_ok=True)
    write_status(directory, RUNNING)
    ctx.trackers.start_trial(trial_info(ctx, spec, directory))
    try:
        outcome = _train_and_evaluate(ctx, spec, directory)
    except KeyboardInterrupt:
        write_status(directory, INTERRUPTED, "interrupted; resume with --resume")
        ctx.trackers.end_trial(INTERRUPTED, None)
        raise
    final = _final_row(ctx, spec, outcome, directory)
    append_row(ctx.directory, final)
    write_status(directory, outcome.status, outcome.message)
    if outcome.status == COMPLETED:
        ctx.trackers.log_eval(final["step"], final)
    ctx.trackers.end_trial(outcome.status, final)
    return TrialResult(spec, outcome.status, outcome.message, _entry(ctx, spec, outcome))


def trial_info(ctx: RunContext, spec: TrialSpec, directory: Path) -> TrialInfo:
    """Who a trial is, for the trackers."""
    cls = ctx.plugins.models.get(spec.model).obj
    try:
        config = resolved_config(cls, ctx.variant_options(spec))
    except Exception:  # its build fails the same way, and says so; the trackers get what was asked
        config = ctx.variant_options(spec)
    sweep = spec.sweep or {}
    return TrialInfo(run_id=ctx.directory.name, trial=spec.name, model=spec.model, family=cls.family,
                     backbone=_backbone(ctx, spec), seed=spec.seed, config=config,
                     run_config=ctx.config.as_dict(), directory=directory, options=spec.options,
                     sweep_phase=sweep.get("phase"), sweep_slot=sweep.get("slot"))


def record_failure(ctx: RunContext, spec: TrialSpec, message: str, details: str) -> TrialResult:
    """A trial that failed outside ``run_trial`` (its Ray worker was lost for good): its final
    row, status and error record, with how far its last checkpoint got."""
    directory = ctx.trial_dir(spec)
    directory.mkdir(parents=True, exist_ok=True)
    outcome = _Outcome(status=FAILED, message=message)
    if (directory / CHECKPOINT_FILE).exists():
        try:
            outcome.usage = Usage(**load_checkpoint(directory / CHECKPOINT_FILE)["usage"])
        except Exception:  # how far it got is a nicety; the failure is recorded either way
            pass
    (directory / ERROR_FILE).write_text(details)
    print(f"bench: trial {spec.name} failed: {message}", file=sys.stderr)
    final = _final_row(ctx, spec, outcome, directory)
    append_row(ctx.directory, final)
    write_status(directory, FAILED, message)
    ctx.trackers.start_trial(trial_info(ctx, spec, directory))  # its tracked run ends as failed too
    ctx.trackers.end_trial(FAILED, final)
    return TrialResult(spec, FAILED, message, _entry(ctx, spec, outcome))


def build_variant(ctx: RunContext, spec: TrialSpec) -> Variant:
    cls = ctx.plugins.models.get(spec.model).obj
    return cls(ctx.dataset.image_shape, config_from_dict(cls, ctx.variant_options(spec)), ctx.device,
               spec.seed)


def _train_and_evaluate(ctx: RunContext, spec: TrialSpec, directory: Path) -> _Outcome:
    """Train under the budget, then evaluate; a diverging or raising variant is recorded."""
    outcome = _Outcome()
    settings = ctx.config.train_settings()
    trainer = variant = None
    try:
        variant = build_variant(ctx, spec)
        outcome.params = variant.parameter_counts()
        reset_peak_memory(ctx.device)
        batches = make_batches(ctx.dataset.train.images, settings, ctx.device, spec.seed)
        rows = read_rows(ctx.directory)

        def evaluate_during(usage, point="interval"):
            if has_row(rows, spec.name, point, usage.steps):  # resumed past it already
                return
            with applied(trainer.ema, variant):
                metrics = ctx.evaluator.evaluate(variant, _noise_seed(spec.seed, usage.steps))
                row = {**_row_base(ctx, spec, point), "status": "training", "step": usage.steps,
                       "images_seen": usage.images, "train_seconds": usage.seconds, **metrics}
                append_row(ctx.directory, row)
                ctx.trackers.log_eval(usage.steps, row)
                _track_pictures(ctx, variant, spec, usage.steps)

        meta = {"run_config": ctx.config.as_dict(), "trial": spec.as_dict(),
                "variant_config": dataclasses.asdict(variant.config)}
        trainer = Trainer(variant, batches, settings, directory, f"{spec.model} s{spec.seed}", ctx.progress,
                          on_eval=evaluate_during, checkpoint_meta=meta, on_log=ctx.trackers.log_train)
        trainer.load_checkpoint()
        if ctx.config.eval_untrained and trainer.usage.steps == 0:
            evaluate_during(trainer.usage, "untrained")
        trainer.run()
        outcome.peak_memory = peak_memory_bytes(ctx.device)  # of training, before evaluation
        with applied(trainer.ema, variant):  # every picture and metric from the averages, if kept
            _save_samples(variant, directory, spec.seed)
            _save_latent_pictures(ctx, variant, directory, spec)
            ctx.evaluator.save_reconstruction_grid(variant, directory / RECONSTRUCTIONS_FILE)
            outcome.evaluation = ctx.evaluator.evaluate(variant, _noise_seed(spec.seed, trainer.usage.steps),
                                                        output_dir=directory)
        for name in (SAMPLES_FILE, RECONSTRUCTIONS_FILE):  # the final evaluation's pictures, as saved
            if (directory / name).exists():
                ctx.trackers.log_images(trainer.usage.steps, Path(name).stem, directory / name)
    except Diverged as exc:
        outcome.status, outcome.message, outcome.diverged_at = DIVERGED, str(exc), exc.step
        print(f"bench: trial {spec.name} diverged: {exc}", file=sys.stderr)
        outcome.message += _samples_from_last_checkpoint(variant, trainer, directory, spec.seed)
    except Exception as exc:  # a failing variant must not sink the others
        outcome.status, outcome.message = FAILED, f"{type(exc).__name__}: {exc}"
        (directory / ERROR_FILE).write_text(traceback.format_exc())
        print(f"bench: trial {spec.name} failed: {outcome.message} (traceback in {directory / ERROR_FILE})",
              file=sys.stderr)
    outcome.usage = trainer.usage if trainer is not None else None
    return outcome


def _samples(variant: Variant, seed: int) -> torch.Tensor:
    """The 64 samples of a trial's grid: the same latents at every evaluation of the trial."""
    return variant.sample(64, torch.Generator(variant.device).manual_seed(seed))


def _save_samples(variant: Variant, directory: Path, seed: int) -> None:
    save_grid(_samples(variant, seed), directory / SAMPLES_FILE, nrow=8, value_range=(-1, 1))


def _track_pictures(ctx: RunContext, variant: Variant, spec: TrialSpec, step: int) -> None:
    """A during-training evaluation's sample grid and reconstructions, for the trackers only (drawn
    only when one listens; the final evaluation's are the saved files)."""
    if not ctx.trackers.active:
        return
    ctx.trackers.log_images(step, "samples", grid_array(_samples(variant, spec.seed), value_range=(-1, 1)))
    pairs = ctx.evaluator.reconstruction_pairs(variant)
    if pairs is not None:
        ctx.trackers.log_images(step, "reconstructions", grid_array(pairs, value_range=(-1, 1)))


def _save_latent_pictures(ctx: RunContext, variant: Variant, directory: Path, spec: TrialSpec) -> None:
    """The latent interpolation pictures (``bench.latents``) of a variant that has ``decode``; one
    that cannot be drawn costs a warning, never the trial."""
    try:
        test = ctx.dataset.split("test").images if "test" in ctx.dataset.splits else None
        save_latent_pictures(variant, directory, spec.seed, test)
    except Exception as exc:
        print(f"bench: trial {spec.name}: no latent pictures ({type(exc).__name__}: {exc})", file=sys.stderr)


def _samples_from_last_checkpoint(variant: Variant | None, trainer: Trainer | None, directory: Path,
                                  seed: int) -> str:
    """A diverged trial's samples grid, drawn from its last checkpoint, which the trainer only
    writes at logging intervals whose losses were all finite. Returns a note for the message."""
    path = directory / CHECKPOINT_FILE
    if variant is None or not path.exists():
        return ""
    try:
        state = load_checkpoint(path)
        variant.load_state_dict(state["variant"])
        ema = trainer.ema if trainer is not None else None
        if ema is not None:
            ema.load_state_dict(state["ema"])
        with applied(ema, variant):
            _save_samples(variant, directory, seed)
    except Exception as exc:
        print(f"bench: no samples from {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ""
    return f"; {SAMPLES_FILE} and {CHECKPOINT_FILE} are from its last finite step, {state['usage']['steps']}"


def _final_row(ctx: RunContext, spec: TrialSpec, outcome: _Outcome, directory: Path) -> dict:
    usage, batch_size = outcome.usage or Usage(), ctx.config.batch_size
    row = {
        **_row_base(ctx, spec, "final"),
        "status": outcome.status,
        "message": outcome.message,
        "step": outcome.diverged_at if outcome.diverged_at is not None else usage.steps,
        "images_seen": usage.images,
        "train_seconds": usage.seconds,
        "train_flops": usage.flops,
        "flops_per_image": (usage.flops_per_step or math.nan) / batch_size,
        "train_images_per_s": usage.steady_images_per_second(),
        "peak_memory_bytes": outcome.peak_memory,
        **{f"params_{name}": count for name, count in outcome.params.items()},
        "params_total": sum(outcome.params.values()) if outcome.params else None,
    }
    if usage.flops_per_step:
        row["train_flops_per_s"] = row["train_images_per_s"] * usage.flops_per_step / batch_size
        row["mfu"] = row["train_flops_per_s"] / ctx.peak_flops
        if row["mfu"] > 1:
            print(f"bench: trial {spec.name} ran at {row['mfu']:.0%} of the device's peak: the peak in the "
                  "cache is too low (measured while the machine was busy?); measure it again with "
                  "--remeasure-peak", file=sys.stderr)
    if outcome.status == COMPLETED:
        row.update(_final_losses(directory))
        row.update(outcome.evaluation)
    return row


def _final_losses(directory: Path) -> dict:
    rows = read_jsonl(directory / LOG_FILE)
    if not rows:
        return {}
    return {f"final_{k}": v for k, v in rows[-1].items() if k.startswith("loss")}


def _row_base(ctx: RunContext, spec: TrialSpec, point: str) -> dict:
    """The columns that say where a metrics row comes from (``bench.store.rows.IDENTITY``)."""
    return {
        "run_id": ctx.directory.name,
        "trial": spec.name,
        "model": spec.model,
        "backbone": _backbone(ctx, spec),
        "options": spec.options,
        "family": ctx.plugins.models.get(spec.model).obj.family,
        "seed": spec.seed,
        "eval_point": point,
        "dataset": ctx.dataset.name,
        "dataset_source": ctx.dataset.train.source,
        "budget": ctx.config.budget,
        "device": device_name(ctx.device),
        "batch_size": ctx.config.batch_size,
        "ema": ctx.config.ema,  # the decay of the averaged image networks evaluated, or None
    }


def _backbone(ctx: RunContext, spec: TrialSpec) -> str | None:
    """The backbone a trial builds on; None for a variant that builds networks of its own."""
    return ctx.variant_options(spec).get("backbone", DEFAULT_BACKBONE if takes_backbone(
        ctx.plugins.models.get(spec.model).obj) else None)


def _noise_seed(seed: int, step: int) -> int:
    """Each training seed and evaluation step draws its own latent noise."""
    return 1_000_003 * (seed + 1) + step


def _entry(ctx: RunContext, spec: TrialSpec, outcome: _Outcome) -> dict:
    """What the trial actually used, for the manifest."""
    return {
        "model": spec.model, "seed": spec.seed, "options": spec.options,
        "status": outcome.status, "message": outcome.message, "device": device_name(ctx.device),
        **(outcome.usage or Usage()).as_budget_usage(),
    }
