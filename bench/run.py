"""A run: every requested trial trained under one budget, in one run folder.

    prepare_run(config)       check everything a run needs, before anything is written
    start_run(config, ...)    the run folder and its manifest -> a RunContext
    open_run(run_dir)         an existing run folder, for ``--resume``
    plan_trials(config)       the trials: every model x seed
    execute(ctx)              every unfinished trial, through the configured executor

The executor (``bench.executors``) runs each trial with ``bench.trial.run_trial``, which
writes through ``bench.store``; nothing below this module imports it.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path

import torch

from bench.backbones import DEFAULT_BACKBONE, takes_backbone
from bench.checkpoint import CheckpointError, load_checkpoint
from bench.config import RunConfig, RunError
from bench.data import Dataset
from bench.device import cached_peaks, device_name, machine_description, measure_peaks
from bench.evaluation import extractor_weights_entry, metric_columns, select_extractors, select_metrics
from bench.executors import make_executor
from bench.executors.base import Executor
from bench.plan import estimate
from bench.plugins import Plugins, check_plugin_files, load_plugins
from bench.store import (
    CHECKPOINT_FILE,
    StoreError,
    new_run_dir,
    read_manifest,
    read_status,
    update_manifest,
    write_manifest,
)
from bench.store.columns import TRIAL_COLUMNS
from bench.store.provenance import git_commit, versions
from bench.store.retire import retire_trial
from bench.store.rows import read_rows
from bench.store.status import NOT_COMPLETED
from bench.trackers import RunInfo, SafeTrackers, make_trackers
from bench.trial import RunContext, TrialSpec, finished_status, open_run_dataset, run_context, trial_spec
from bench.variant_config import OptionValueError, config_from_dict, resolved_config


@dataclasses.dataclass
class Prepared:
    """What ``prepare_run`` resolved: loaded once, used by ``start_run``."""

    plugins: Plugins
    dataset: Dataset
    device: torch.device
    executor: Executor
    config: RunConfig
    extractor: object | None = None  # the FID Inception network, once something needed it

    def context(self, directory: Path, peak_flops: float, progress: bool, trackers=None) -> RunContext:
        """The run's trial context from what was loaded here (nothing is loaded twice)."""
        return run_context(directory, self.config, plugins=self.plugins, dataset=self.dataset,
                           device=self.device, extractor=self.extractor, peak_flops=peak_flops,
                           progress=progress, trackers=trackers)

    def load_extractor(self):
        if self.extractor is None:
            from bench.metrics.inception import load_feature_extractor

            self.extractor = load_feature_extractor(self.config.fid_weights, self.device,
                                                    backend=self.config.inception_backend)
        return self.extractor


def resolve_models(plugins: Plugins, requested: list[str]) -> list[str]:
    if list(requested) == ["all"]:
        names = plugins.models.names()
        if not names:
            raise RunError("no models are registered; check `bench list` for plugin errors")
        return names
    if not requested:
        raise RunError("--models names no model; give comma-separated names (see `bench list`) or all")
    unknown = [m for m in requested if m not in plugins.models]
    if unknown:
        hint = "".join(f"\n  {failure}" for failure in plugins.failures)
        hint += "".join(f"\n  {warning}" for warning in plugins.warnings)
        raise RunError(
            f"unknown model(s): {', '.join(unknown)}; registered: "
            f"{', '.join(plugins.models.names()) or 'none'} (use --models all or see `bench list`)"
            + (f"\nplugins that failed to load or registered nothing:{hint}" if hint else "")
        )
    return list(dict.fromkeys(requested))


def _check_options(plugins: Plugins, config: RunConfig) -> None:
    """``--set`` values converted to their fields' types (so the manifest holds typed values)."""
    for model, values in config.options.items():
        if model not in config.models:
            raise RunError(
                f"--set names model {model!r}, which is not in this run ({', '.join(config.models)})"
            )
        try:
            parsed = config_from_dict(plugins.models.get(model).obj, values)
        except OptionValueError as exc:
            raise RunError(f"--set {model}.{exc}") from None
        except (TypeError, ValueError) as exc:
            raise RunError(f"--set {model}: {exc}") from None
        config.options[model] = {k: getattr(parsed, k) for k in values}


def _resolve_backbones(plugins: Plugins, config: RunConfig) -> None:
    """``--backbone`` into each model's options, where its own ``--set MODEL.backbone`` does not
    name one, so that the manifest, the rows and the trial names say what each model built on;
    the default is left out, so that a run on it is named and labelled as before backbones."""
    clashes = [f for f in plugins.failures if f.kind == "backbone"]
    if clashes:  # the run would build on the other plugin's backbone of that name, unsaid
        raise RunError(f"{clashes[0]}; rename one of the two backbones")
    for model in config.models:
        own = dict(config.options.get(model, {}))
        if not takes_backbone(plugins.models.get(model).obj):
            if config.backbone != DEFAULT_BACKBONE:
                raise RunError(f"--backbone {config.backbone}: model {model!r} takes no backbone (its Config "
                               "has no backbone field; it builds its own networks); leave it out of --models")
            continue
        name = own.get("backbone", config.backbone)
        if name not in plugins.backbones:
            flag = f"--set {model}.backbone={name}" if "backbone" in own else f"--backbone {name}"
            raise RunError(f"{flag}: unknown backbone; registered: "
                           f"{', '.join(plugins.backbones.names())} (see `bench list`)")
        own.pop("backbone", None)
        if name != DEFAULT_BACKBONE:
            own["backbone"] = name
        if own:
            config.options[model] = own
        else:
            config.options.pop(model, None)


def _check_backbones(plugins: Plugins, config: RunConfig, resolution: int) -> None:
    """Each model's backbone builds these images, and gives ``features(x)`` where the model reads them."""
    for model in config.models:
        cls = plugins.models.get(model).obj
        if not takes_backbone(cls):
            continue
        name = config.options.get(model, {}).get("backbone", DEFAULT_BACKBONE)
        backbone = plugins.backbones.get(name).obj()
        try:
            backbone.check(name, resolution)
        except ValueError as exc:
            raise RunError(str(exc)) from None
        if cls.needs_features and not backbone.has_features:
            raise RunError(f"model {model!r} reads its encoder's features(x), which backbone {name!r} does "
                           f"not give; use one that does ({', '.join(_with_features(plugins))})")


def _check_trackers(plugins: Plugins, config: RunConfig) -> None:
    """Every ``--tracker`` is registered and usable here (its package installed, ``--tracker-uri``
    well formed); a server that cannot be reached is only a warning, when it is used."""
    config.trackers = list(dict.fromkeys(config.trackers))
    for name in config.trackers:
        if name not in plugins.trackers:
            raise RunError(f"--tracker {name}: unknown tracker; registered: "
                           f"{', '.join(plugins.trackers.names()) or 'none'} (see `bench list`)")
        try:
            plugins.trackers.get(name).obj.check(config.tracker_uri)
        except ValueError as exc:
            raise RunError(f"--tracker {name}: {exc}") from None


def start_trackers(plugins: Plugins, config: RunConfig, directory: Path, resumed: bool) -> SafeTrackers:
    """The run's trackers, started (the driver's; ``start_run`` and ``open_run``). What they record
    goes into ``config.tracker_state``, which the caller saves in the manifest."""
    trackers = make_trackers(plugins.trackers, config.trackers, config.tracker_uri, config.tracker_state)
    trackers.start_run(RunInfo(directory.name, directory, config.as_dict(), resumed))
    config.tracker_state = {**config.tracker_state, **trackers.state()}
    return trackers


def _with_features(plugins: Plugins) -> list[str]:
    return [entry.name for entry in plugins.backbones if entry.obj.has_features]


def prepare_run(config: RunConfig) -> Prepared:
    """Check everything a run needs before anything is written; fills in resolved values
    (model names, typed ``--set`` values, the autocast default)."""
    check_plugin_files(config.plugin_files)
    executor = make_executor(config.executor, config.executor_options)
    plugins = load_plugins(config.plugin_files)
    config.models = resolve_models(plugins, config.models)
    _check_options(plugins, config)
    _resolve_backbones(plugins, config)
    _check_trackers(plugins, config)
    if config.amp is None:
        config.amp = executor.trains_on_cuda(config.device)
    config.train_settings()  # validates the budgets
    if config.batch_size < 1:
        raise RunError("--batch-size must be at least 1")
    device = executor.driver_device(config.device)
    dataset = open_run_dataset(plugins, config)
    config.eval_settings().check(dataset)
    select_metrics(plugins.metric_objects(), config.eval_settings())  # --metrics: before any training
    select_extractors(plugins.extractors, config.eval_settings())  # --extractors and their weights
    images = len(dataset.train.images)
    if config.batch_size > images:
        raise RunError(f"--batch-size {config.batch_size}: the training set has only {images} images; "
                       f"use --batch-size {images} or less, or more data")
    _check_backbones(plugins, config, dataset.image_shape[-1])
    _build_each_variant(plugins, config, dataset.image_shape)
    _check_ema(plugins, config)
    return Prepared(plugins, dataset, device, executor, config)


def _build_each_variant(plugins: Plugins, config: RunConfig, image_shape) -> None:
    """Build every model once on the CPU, so that what only its ``build`` can refuse (an image size
    its networks do not support, a config value out of range) is said before any training."""
    for model in config.models:
        cls = plugins.models.get(model).obj
        try:
            cls(image_shape, config_from_dict(cls, config.options.get(model)), "cpu", 0)
        except Exception as exc:
            raise RunError(f"model {model!r} cannot be built for {'x'.join(map(str, image_shape))} images "
                           f"with these settings: {type(exc).__name__}: {exc}") from None


def _check_ema(plugins: Plugins, config: RunConfig) -> None:
    if config.ema is None:
        return
    from bench.ema import EMAError, check_decay, check_variant

    try:
        check_decay(config.ema)
        for model in config.models:
            check_variant(plugins.models.get(model).obj, model)
    except EMAError as exc:
        raise RunError(str(exc)) from None


def plan_trials(config: RunConfig) -> list[TrialSpec]:
    return [trial_spec(config, model, seed) for model in config.models for seed in config.seeds]


def _models_entry(plugins: Plugins, config: RunConfig) -> dict:
    """Each variant's family, where it came from, its package's version and resolved config."""
    out = {}
    for model in config.models:
        entry = plugins.models.get(model)
        out[model] = {"family": entry.obj.family, "source": entry.source, "plugin": entry.plugin,
                      "version": entry.version,
                      "config": resolved_config(entry.obj, config.options.get(model))}
    return out


def _columns(plugins: Plugins, config: RunConfig) -> list[dict]:
    """Every column of the run's metrics (registration order), then the trial's cost columns."""
    settings = config.eval_settings()
    metrics = select_metrics(plugins.metric_objects(), settings)
    extractors = select_extractors(plugins.extractors, settings, check_weights=False)
    columns = [c for _, _, computed in metric_columns(metrics, extractors) for c in computed]
    return [c.as_dict() for c in (*columns, *TRIAL_COLUMNS)]


def start_run(config: RunConfig, results_root: Path, command_line: str, progress: bool = True,
              prepared: Prepared | None = None, announce=None, trials_per_model: int | None = None,
              description: str | None = None) -> RunContext:
    """Check the run, estimate it (``bench.plan``; its lines go to ``announce``), then create
    the run folder and manifest. ``prepared`` is ``prepare_run(config)``'s result when the
    caller already has it (so the dataset is not loaded twice); ``trials_per_model`` and
    ``description`` (the folder name's tail) are a sweep's."""
    prepared = prepared or prepare_run(config)
    device = prepared.device
    try:  # first: a results folder that cannot be written is said before anything else
        directory = new_run_dir(Path(results_root), description or f"{prepared.dataset.name}-{config.budget}")
    except OSError as exc:
        raise RunError(f"cannot create a run folder under {results_root} ({exc.strerror or exc}); "
                       "give a writable folder with --results-dir or BENCH_RESULTS_DIR") from None
    try:
        plan = estimate(config, prepared, prepared.load_extractor, trials_per_model)
        if announce is not None:
            announce(plan.lines())
        # bf16 autocast trains at the bf16 peak; measured once per machine, then cached.
        peak_dtype = torch.bfloat16 if config.amp and device.type == "cuda" else torch.float32
        peaks, peak_source = cached_peaks(device, peak_dtype, remeasure=config.remeasure_peak,
                                          measure=measure_peaks)
    except BaseException:
        directory.rmdir()  # still empty: no run folder is left behind
        raise
    peak_flops = max(peaks.values())
    trackers = start_trackers(prepared.plugins, config, directory, resumed=False)
    write_manifest(directory, {
        "run_id": directory.name,
        "command_line": command_line,
        "config": config.as_dict(),
        "versions": versions(),
        "git_commit": git_commit(),
        "device": {
            "type": device.type,
            "name": device_name(device),
            "peak_flops": peak_flops,
            "peak_flops_by_kernel": peaks,
            "peak_flops_dtype": str(peak_dtype).removeprefix("torch."),
            "peak_flops_source": peak_source,
            "machine": machine_description(),
        },
        "dataset": prepared.dataset.describe(),
        "budget": config.train_settings().budget.as_dict(),
        "models": _models_entry(prepared.plugins, config),
        "columns": _columns(prepared.plugins, config),
        "extractors": extractor_weights_entry(
            select_extractors(prepared.plugins.extractors, config.eval_settings(), check_weights=False),
            config.eval_settings()),
        "plan": plan.as_dict(),
        "started": now(),
        "trials": {},
    })
    return prepared.context(directory, peak_flops, progress, trackers)


def open_run(run_dir: Path, progress: bool = True, retry_failed: bool = False) -> RunContext:
    """Re-open a run from its manifest, for ``--resume``; ``retry_failed`` sets the failed and
    diverged trials aside (``retired/``) so that they train again from step 0."""
    run_dir = Path(run_dir)
    try:
        manifest = read_manifest(run_dir)
    except StoreError as exc:
        raise RunError(str(exc)) from None
    config = RunConfig.from_dict(manifest["config"])
    prepared = prepare_run(config)
    if prepared.dataset.describe()["content_hash"] != manifest["dataset"]["content_hash"]:
        raise RunError(
            f"the dataset changed since this run started (content hash "
            f"{manifest['dataset']['content_hash']} -> {prepared.dataset.describe()['content_hash']}); "
            "resume with the same data or start a new run"
        )
    ctx = prepared.context(run_dir, manifest["device"].get("peak_flops") or math.nan, progress)
    if retry_failed:
        for name, _, _ in not_completed(ctx):
            retire_trial(run_dir, name)
    _check_checkpoints(ctx)
    ctx.trackers = start_trackers(prepared.plugins, config, run_dir, resumed=True)
    tracked = {"config": config.as_dict()} if config.trackers else {}  # their state, as it is now
    update_manifest(run_dir, **tracked, resumed=[*manifest.get("resumed", []), now()])
    return ctx


def _check_checkpoints(ctx: RunContext) -> None:
    """Every checkpoint a resumed trial would start from loads safely, before any training."""
    rows = read_rows(ctx.directory)
    for spec in plan_trials(ctx.config):
        path = ctx.trial_dir(spec) / CHECKPOINT_FILE
        if path.exists() and finished_status(ctx, spec, rows) is None:
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                raise RunError(f"trial {spec.name}: {exc}") from None


def not_completed(ctx: RunContext) -> list[tuple[str, str, str]]:
    """``(trial, status, message)`` of every planned trial that finished without completing."""
    out = []
    for spec in plan_trials(ctx.config):
        status = read_status(ctx.trial_dir(spec))
        if status is not None and status["status"] in NOT_COMPLETED:
            out.append((spec.name, status["status"], status.get("message", "")))
    return out


def execute(ctx: RunContext) -> dict[str, str]:
    """Run every unfinished trial with the run's executor; returns ``{trial: status}``. The
    manifest records when the run (or a resumed part of it) began and ended."""
    executor = make_executor(ctx.config.executor, ctx.config.executor_options)
    statuses = executor.execute(ctx, plan_trials(ctx.config))
    update_manifest(ctx.directory, finished=now())
    return statuses


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
