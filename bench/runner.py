"""A run: every requested variant x seed trained under one budget, in one run folder.

Trials run one after another in this process, or as Ray tasks with ``executor="ray"``
(``bench.executors``); a trial that diverges or raises is recorded as
such and the others go on. ``resume_run`` continues an interrupted run: finished
trials are kept and the unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import traceback
from pathlib import Path

import torch
from torchvision.utils import save_image

from bench.budget import parse_budget
from bench.data import Dataset, DatasetRequest, parse_dataset_spec
from bench.device import (
    device_name,
    machine_description,
    measure_peaks,
    peak_memory_bytes,
    reset_peak_memory,
)
from bench.evaluation import EvalSettings, Evaluator
from bench.executors import check_executor, driver_device, execute_with
from bench.plugins import Plugins, load_plugins
from bench.results import (
    append_jsonl,
    git_commit,
    new_run_dir,
    read_json,
    read_jsonl,
    trial_dir,
    versions,
    write_json,
)
from bench.trainer import Diverged, Trainer, TrainSettings, Usage, make_batches
from bench.variant import config_from_dict

FINISHED = ("completed", "diverged", "failed")


class RunError(Exception):
    """Bad run configuration; the message says what to change."""


@dataclasses.dataclass
class RunConfig:
    """Every option of a run; saved in the manifest so that ``--resume`` can rebuild it."""

    models: list[str]
    dataset: str = "cifar10"
    budget: str = "10m"
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    data_dir: str | None = None
    resolution: int | None = None
    subset: int | None = None  # train on a fixed random subset of N images
    batch_size: int = 128
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune
    channels_last: bool = True
    flip: bool = True
    log_every: int = 25
    checkpoint_every: str | None = "2m"
    eval_every: str | None = None  # evaluate during training too, e.g. "2m" or "1000steps"
    options: dict = dataclasses.field(default_factory=dict)  # model -> {field: value}
    plugin_files: list[str] = dataclasses.field(default_factory=list)
    download: bool = True
    eval_samples: int = 10_000  # generated images for FID/KID/PR; 0 skips them
    eval_ref: str = "train"
    ref_samples: int | None = None
    fid_weights: str | None = None
    eval_untrained: bool = False
    executor: str = "local"  # local | ray (bench.executors)
    ray_address: str | None = None  # None: RAY_ADDRESS or a new local Ray; "auto"; "ray://HOST:PORT"
    cpus_per_trial: float = 1  # Ray resources of each trial's task
    gpus_per_trial: float = 0
    max_retries: int = 2  # Ray retries of a trial whose worker died

    def eval_settings(self) -> EvalSettings:
        return EvalSettings(self.eval_samples, self.eval_ref, self.ref_samples, self.fid_weights,
                            self.eval_untrained)

    def settings(self) -> TrainSettings:
        return TrainSettings(
            budget=parse_budget(self.budget),
            batch_size=self.batch_size,
            log_every=self.log_every,
            checkpoint_every=parse_budget(self.checkpoint_every) if self.checkpoint_every else None,
            flip=self.flip,
            amp=self.amp,
            compile=self.compile,
            compile_mode=self.compile_mode,
            channels_last=self.channels_last,
            eval_every=parse_budget(self.eval_every) if self.eval_every else None,
        )


@dataclasses.dataclass
class Run:
    """A run being executed: its folder, config and what it was resolved to."""

    directory: Path
    config: RunConfig
    plugins: Plugins
    dataset: Dataset
    device: torch.device
    progress: bool = True
    peak_flops: float = math.nan  # matrix-product FLOP/s of this device, the denominator of MFU

    def __post_init__(self):
        self.evaluator = Evaluator(self.config.eval_settings(), self.dataset, self.device)

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    @property
    def metrics_path(self) -> Path:
        return self.directory / "metrics.jsonl"


def resolve_models(plugins: Plugins, requested: list[str]) -> list[str]:
    if requested in (["all"], ("all",)) or requested == "all":
        names = plugins.models.names()
        if not names:
            raise RunError("no models are registered; check `bench list` for plugin errors")
        return names
    unknown = [m for m in requested if m not in plugins.models]
    if unknown:
        hint = "".join(f"\n  {failure}" for failure in plugins.failures)
        raise RunError(
            f"unknown model(s): {', '.join(unknown)}; registered: "
            f"{', '.join(plugins.models.names()) or 'none'} (use --models all or see `bench list`)"
            + (f"\nplugins that failed to load:{hint}" if hint else "")
        )
    return list(requested)


def load_dataset(plugins: Plugins, config: RunConfig) -> Dataset:
    name, argument = parse_dataset_spec(config.dataset)
    if name not in plugins.datasets:
        raise RunError(
            f"unknown dataset {name!r}; registered: {', '.join(plugins.datasets.names())} "
            "(imagefolder takes a path: imagefolder:/path/to/images)"
        )
    request = DatasetRequest(
        name=name,
        argument=argument,
        data_dir=Path(config.data_dir) if config.data_dir else None,
        resolution=config.resolution,
        limit=config.subset,
        download=config.download,
    )
    dataset = plugins.datasets.get(name).obj(request)
    dataset.split("train")  # load now, so that data errors come before the run folder exists
    return dataset


def prepare_run(config: RunConfig, progress: bool = True) -> tuple[Plugins, Dataset, torch.device]:
    """Check everything a run needs before anything is written."""
    check_executor(config)
    plugins = load_plugins(config.plugin_files)
    config.models = resolve_models(plugins, config.models)
    for model, values in config.options.items():
        if model not in config.models:
            raise RunError(
                f"--set names model {model!r}, which is not in this run ({', '.join(config.models)})"
            )
        try:
            config_from_dict(plugins.models.get(model).obj, values)
        except (TypeError, ValueError) as exc:
            raise RunError(f"--set {model}: {exc}") from None
    config.settings()  # validates budgets
    if config.batch_size < 1:
        raise RunError("--batch-size must be at least 1")
    device = driver_device(config)
    dataset = load_dataset(plugins, config)
    config.eval_settings().check(dataset)
    return plugins, dataset, device


def start_run(config: RunConfig, results_root: Path, command_line: str, progress: bool = True,
              prepared: tuple[Plugins, Dataset, torch.device] | None = None) -> Run:
    """Create the run folder and manifest; ``prepared`` is ``prepare_run(config)``'s result
    when the caller already has it (so the dataset is not loaded twice)."""
    plugins, dataset, device = prepared or prepare_run(config, progress)
    # bf16 autocast trains at the bf16 peak; measured once, before anything else runs.
    peak_dtype = torch.bfloat16 if config.amp and device.type == "cuda" else torch.float32
    peaks = measure_peaks(device, peak_dtype)
    peak_flops = max(peaks.values())
    directory = new_run_dir(Path(results_root), f"{dataset.name}-{config.budget}")
    run = Run(directory, config, plugins, dataset, device, progress, peak_flops)
    write_json(run.manifest_path, {
        "run_id": directory.name,
        "command_line": command_line,
        "config": dataclasses.asdict(config),
        "versions": versions(),
        "git_commit": git_commit(),
        "device": {
            "type": device.type,
            "name": device_name(device),
            "peak_flops": peak_flops,
            "peak_flops_by_kernel": peaks,
            "peak_flops_dtype": str(peak_dtype).removeprefix("torch."),
            "machine": machine_description(),
        },
        "dataset": dataset.describe(),
        "budget": parse_budget(config.budget).as_dict(),
        "models": {
            m: {"family": plugins.models.get(m).obj.family, "source": plugins.models.get(m).source}
            for m in config.models
        },
        "trials": {},
    })
    return run


def open_run(run_dir: Path, progress: bool = True) -> Run:
    """Re-open an interrupted run from its manifest, for ``--resume``."""
    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise RunError(f"{run_dir} is not a run folder (no manifest.json); give a folder under results/")
    manifest = read_json(manifest_path)
    config = RunConfig(**manifest["config"])
    plugins, dataset, device = prepare_run(config, progress)
    if dataset.describe()["content_hash"] != manifest["dataset"]["content_hash"]:
        raise RunError(
            f"the dataset changed since this run started (content hash "
            f"{manifest['dataset']['content_hash']} -> {dataset.describe()['content_hash']}); "
            "resume with the same data or start a new run"
        )
    peak_flops = manifest["device"].get("peak_flops") or math.nan
    return Run(run_dir, config, plugins, dataset, device, progress, peak_flops)


def execute(run: Run) -> dict[str, str]:
    """Run every unfinished trial with the run's executor; returns ``{trial: status}``."""
    return execute_with(run)


@dataclasses.dataclass
class TrialOutcome:
    """What training and evaluating one trial produced, whether or not it finished."""

    status: str = "completed"  # completed | diverged | failed
    message: str = ""
    usage: Usage | None = None
    diverged_at: int | None = None
    params: dict = dataclasses.field(default_factory=dict)
    peak_memory: int | None = None
    evaluation: dict = dataclasses.field(default_factory=dict)


def run_trial(run: Run, model: str, seed: int) -> str:
    directory = trial_dir(run.directory, model, seed)
    status_path = directory / "status.json"
    if status_path.exists():
        previous = read_json(status_path)
        if previous["status"] in FINISHED:
            return previous["status"]
    if _row_exists(run, model, seed, "final"):  # killed between the row and the status file
        write_json(status_path, {"status": "completed", "message": ""})
        return "completed"
    directory.mkdir(parents=True, exist_ok=True)
    write_json(status_path, {"status": "running", "message": ""})
    try:
        outcome = _train_and_evaluate(run, model, seed, directory)
    except KeyboardInterrupt:
        write_json(status_path, {"status": "interrupted", "message": "interrupted; resume with --resume"})
        raise
    append_jsonl(run.metrics_path, _final_row(run, model, seed, outcome, directory))
    write_json(status_path, {"status": outcome.status, "message": outcome.message})
    _record_trial(run, f"{model}-s{seed}", outcome)
    return outcome.status


def _train_and_evaluate(run: Run, model: str, seed: int, directory: Path) -> TrialOutcome:
    """Train under the budget, then evaluate; a diverging or raising variant is recorded."""
    outcome = TrialOutcome()
    settings = run.config.settings()
    trainer = None
    try:
        cls = run.plugins.models.get(model).obj
        variant = cls(run.dataset.image_shape, config_from_dict(cls, run.config.options.get(model)),
                      run.device, seed)
        outcome.params = variant.parameter_counts()
        reset_peak_memory(run.device)
        batches = make_batches(run.dataset.train.images, settings, run.device, seed)

        def evaluate_during(usage, point="interval"):
            if _row_exists(run, model, seed, point, usage.steps):  # resumed past it already
                return
            append_jsonl(run.metrics_path, {
                **_row_base(run, model, seed, point), "status": "training", "step": usage.steps,
                "images_seen": usage.images, "train_seconds": usage.seconds,
                **run.evaluator.evaluate(variant, _noise_seed(seed, usage.steps)),
            })

        trainer = Trainer(variant, batches, settings, directory, f"{model} s{seed}", run.progress,
                          on_eval=evaluate_during)
        trainer.load_checkpoint()
        if run.config.eval_untrained and trainer.usage.steps == 0:
            evaluate_during(trainer.usage, "untrained")
        trainer.run()
        outcome.peak_memory = peak_memory_bytes(run.device)  # of training, before evaluation
        save_image(variant.sample(64, torch.Generator(run.device).manual_seed(seed)),
                   directory / "samples.png", nrow=8, normalize=True, value_range=(-1, 1))
        run.evaluator.save_reconstruction_grid(variant, directory / "reconstructions.png")
        outcome.evaluation = run.evaluator.evaluate(variant, _noise_seed(seed, trainer.usage.steps))
    except Diverged as exc:
        outcome.status, outcome.message, outcome.diverged_at = "diverged", str(exc), exc.step
    except Exception as exc:  # a failing variant must not sink the others
        outcome.status, outcome.message = "failed", f"{type(exc).__name__}: {exc}"
        (directory / "error.txt").write_text(traceback.format_exc())
        print(f"bench: trial {model} seed {seed} failed: {outcome.message}", file=sys.stderr)
    outcome.usage = trainer.usage if trainer is not None else None
    return outcome


def _final_row(run: Run, model: str, seed: int, outcome: TrialOutcome, directory: Path) -> dict:
    usage, batch_size = outcome.usage or Usage(), run.config.batch_size
    row = {
        **_row_base(run, model, seed, "final"),
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
        row["mfu"] = row["train_flops_per_s"] / run.peak_flops
    if outcome.status == "completed":
        row.update(_final_losses(directory))
        row.update(outcome.evaluation)
    return row


def _final_losses(directory: Path) -> dict:
    rows = read_jsonl(directory / "log.jsonl")
    if not rows:
        return {}
    return {f"final_{k}": v for k, v in rows[-1].items() if k.startswith("loss")}


def _row_base(run: Run, model: str, seed: int, point: str) -> dict:
    """The columns that say where a metrics row comes from."""
    return {
        "run_id": run.directory.name,
        "model": model,
        "family": run.plugins.models.get(model).obj.family,
        "seed": seed,
        "eval_point": point,
        "dataset": run.dataset.name,
        "dataset_source": run.dataset.train.source,
        "budget": run.config.budget,
        "device": device_name(run.device),
        "batch_size": run.config.batch_size,
    }


def _noise_seed(seed: int, step: int) -> int:
    """Each training seed and evaluation step draws its own latent noise."""
    return 1_000_003 * (seed + 1) + step


def _row_exists(run: Run, model: str, seed: int, point: str, step: int | None = None) -> bool:
    return any(
        r.get("model") == model and r.get("seed") == seed and r.get("eval_point") == point
        and (step is None or r.get("step") == step)
        for r in read_jsonl(run.metrics_path)
    )


def _record_trial(run: Run, name: str, outcome: TrialOutcome) -> None:
    """What each trial actually used, in the manifest (rewritten atomically)."""
    manifest = read_json(run.manifest_path)
    manifest["trials"][name] = {
        "status": outcome.status,
        "message": outcome.message,
        "device": device_name(run.device),
        **(outcome.usage or Usage()).as_budget_usage(),
    }
    write_json(run.manifest_path, manifest)
