"""The ``bench`` command line.

    bench list                                          models, datasets and metrics
    bench run --models all --dataset cifar10 --budget 10m --seeds 2
    bench run --resume results/00003-cifar10-10m        continue an interrupted run
    bench report results/00003-cifar10-10m              tables and plots of run folders

Exit status of ``bench run``: 0 every trial completed; 1 an error stopped it (one line says
what); 2 a bad command line; 3 every trial ran but some failed or diverged (the report is
written); 130 interrupted (Ctrl-C; ``--resume`` continues).

The command line only parses: heavy modules (torch, the metrics, pandas) are imported by the
command that needs them, so ``bench --help`` and ``bench list`` start fast.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from bench.budget import ACCEPTED_FORMS, BudgetError, parse_budget
from bench.config import RunConfig, RunError
from bench.executors import EXECUTORS
from bench.store import StoreError, default_results_root

EXIT_NOT_COMPLETED = 3  # some trials failed or diverged; the others and the report are done
EXIT_INTERRUPTED = 130

# What a failure of these says is the whole message: one line, no traceback.
def _clean_errors():
    from bench.checkpoint import CheckpointError
    from bench.data import DatasetError
    from bench.device import DeviceError
    from bench.metrics.errors import MetricsError

    return (RunError, StoreError, DatasetError, DeviceError, BudgetError, MetricsError, CheckpointError)


def _default(name: str):
    return RunConfig.default(name)


def _budget(ctx, param, value):
    if value is None:
        return None
    try:
        parse_budget(value)
    except BudgetError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _options(ctx, param, values) -> dict:
    """``--set gan.loss=hinge`` -> ``{"gan": {"loss": "hinge"}}``; values stay text until they
    are converted to their fields' types, when the models are known."""
    out: dict = {}
    for item in values:
        key, eq, raw = item.partition("=")
        model, dot, field = key.partition(".")
        if not eq or not dot or not model or not field:
            raise click.BadParameter(f"{item!r}: expected MODEL.FIELD=VALUE, e.g. gan.loss=hinge")
        out.setdefault(model, {})[field] = raw
    return out


def _report_plugin_problems(plugins) -> None:
    for failure in plugins.failures:
        click.echo(f"warning: {failure}", err=True)
    for warning in plugins.warnings:
        click.echo(f"warning: {warning}", err=True)


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), envvar="BENCH_DATA_DIR",
    help="Folder holding cifar10/ (env BENCH_DATA_DIR; default ./data).")


def reference_options(command):
    """The FID reference and weights, shared by `run` and `eval`."""
    options = [
        click.option("--eval-ref", default=_default("eval_ref"), show_default=True,
                     help="Reference: a split of the dataset (train, test) or a folder / .npz of images."),
        click.option("--ref-samples", type=click.IntRange(min=2), default=_default("ref_samples"),
                     help="Reference images (a fixed random subset; default: all of them)."),
        click.option("--fid-weights", type=click.Path(dir_okay=False), envvar="BENCH_FID_WEIGHTS",
                     help="FID Inception weights (env BENCH_FID_WEIGHTS; default: torch-fidelity's "
                          "own download)."),
        click.option("--inception-backend", type=click.Choice(["auto", "torch", "openvino"]),
                     envvar="BENCH_INCEPTION_BACKEND", default="auto", show_default=True,
                     help="Who runs the Inception network: openvino (CPU only, about 1.5x PyTorch "
                          "there), torch, or auto: openvino on the CPU, torch on a GPU. Features "
                          "agree to 1e-5 (env BENCH_INCEPTION_BACKEND)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench-gen", prog_name="bench")
def main():
    """Train GAN, VAE and hybrid variants under one fixed budget and compare them."""


@main.command("list")
@click.option("--plugin", "plugin_files", multiple=True, type=click.Path(),
              help="Also load this plugin file (repeatable).")
@click.option("--search-space", "search_model", metavar="MODEL", default=None,
              help="Print MODEL's search space (what `bench sweep` draws from) instead.")
def list_command(plugin_files, search_model):
    """List every registered model (name, family, source), dataset and metric."""
    from bench.plugins import check_plugin_files, load_plugins

    try:
        check_plugin_files(plugin_files)
    except RunError as exc:
        raise click.ClickException(str(exc)) from None
    plugins = load_plugins(plugin_files)
    if search_model is not None:
        _print_search_space(plugins, search_model)
        return
    click.echo("models:")
    for entry in plugins.models:
        click.echo(f"  {entry.name:<16} {entry.obj.family:<8} {entry.source}")
    click.echo("datasets:")
    for entry in plugins.datasets:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}")
    click.echo("metrics:")
    for entry in plugins.metrics:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}  columns: {', '.join(entry.obj.keys)}")
    _report_plugin_problems(plugins)


def _print_search_space(plugins, model: str) -> None:
    from bench.sweep.space import describe, space_of

    if model not in plugins.models.names():
        raise click.ClickException(f"unknown model {model!r}; known: {', '.join(plugins.models.names())}")
    cls = plugins.models.get(model).obj
    try:
        lines = describe(space_of(cls), cls)
    except ValueError as exc:
        raise click.ClickException(f"the search space of {model} is invalid: {exc}") from None
    click.echo(f"{model}: " + ("searched fields (the others stay at their defaults):" if lines else
                               "no search space declared (give one with --space-override)"))
    for line in lines:
        click.echo(f"  {line}")


def _ray_defaults() -> dict:
    import dataclasses

    from bench.executors.ray_options import RayOptions

    return {f.name: f.default for f in dataclasses.fields(RayOptions)}


RAY_FLAGS = ("ray_address", "cpus_per_trial", "gpus_per_trial", "max_retries")
# What `--resume` takes: everything else comes from the run's manifest.
RESUME_TAKES = ("resume_dir", "retry_failed", "progress", "results_dir")


# The options of the trials a run or a sweep trains (``RunConfig``'s fields).
TRIAL_OPTIONS = [
    click.option("--models", default=",".join(_default("models")), show_default=True,
              help="Comma-separated model names, or 'all'."),
    click.option("--dataset", default=_default("dataset"), show_default=True,
              help="cifar10, synthetic[:N] or imagefolder:PATH."),
    data_dir_option,
    click.option("--download/--no-download", default=_default("download"), show_default=True,
              help="Download the official CIFAR-10 archive into --data-dir if it is missing."),
    click.option("--budget", default=_default("budget"), show_default=True, callback=_budget,
              help=f"Per-trial training budget: {ACCEPTED_FORMS}."),
    click.option("--batch-size", type=click.IntRange(min=1), default=_default("batch_size"),
                 show_default=True),
    click.option("--resolution", type=click.IntRange(min=8), default=_default("resolution"),
              help="Resize images to this square size (default: the dataset's own)."),
    click.option("--subset", type=click.IntRange(min=1), default=_default("subset"),
              help="Train on a fixed random subset of N training images."),
    click.option("--device", default=_default("device"), show_default=True,
                 help="auto, cpu, cuda or cuda:N."),
    click.option("--amp/--no-amp", default=_default("amp"), help="bf16 autocast (default: on for CUDA)."),
    click.option("--compile/--no-compile", "compile_", default=_default("compile"), show_default=True,
              help="torch.compile the networks (after the first step)."),
    click.option("--compile-mode", type=click.Choice(["default", "reduce-overhead", "max-autotune"]),
              default=_default("compile_mode"), show_default=True,
              help="torch.compile mode; reduce-overhead also captures CUDA graphs on a GPU."),
    click.option("--channels-last/--no-channels-last", default=_default("channels_last"), show_default=True,
              help="NHWC networks and batches (faster convolutions on tensor cores and oneDNN)."),
    click.option("--flip/--no-flip", default=_default("flip"), show_default=True,
              help="Random horizontal flips."),
    click.option("--log-every", type=click.IntRange(min=1), default=_default("log_every"), show_default=True,
              help="Steps between loss reads and log lines."),
    click.option("--checkpoint-every", default=_default("checkpoint_every"), show_default=True,
              callback=_budget, help="Checkpoint interval, in any budget unit."),
    click.option("--eval-samples", type=click.IntRange(min=0), default=_default("eval_samples"),
              show_default=True, help="Generated images for FID, KID and precision/recall (0: skip them)."),
    click.option("--eval-every", default=_default("eval_every"), callback=_budget,
              help="Also evaluate during training at this interval (any budget unit, e.g. 2m)."),
    click.option("--eval-untrained", is_flag=True, default=_default("eval_untrained"),
              help="Also evaluate every variant before its first step."),
    click.option("--ema", type=float, default=_default("ema"), metavar="DECAY",
              help="Keep exponential moving averages of each variant's image networks (generator/decoder "
                   "and the encoder reconstruct uses) with this decay, e.g. 0.999, and evaluate those. "
                   "Default: off."),
    click.option("--recon-samples", type=click.IntRange(min=2), default=_default("recon_samples"),
              help="Held-out test images the encoder variants reconstruct for the reconstruction "
                   "columns (default: --eval-samples, or 2,000 when that is 0)."),
    click.option("--set", "options", multiple=True, callback=_options, metavar="MODEL.FIELD=VALUE",
              help="Override a variant's config field (repeatable)."),
    click.option("--plugin", "plugin_files", multiple=True, type=click.Path(),
              help="Load a local plugin file (repeatable)."),
    click.option("--remeasure-peak", is_flag=True, default=_default("remeasure_peak"),
              help="Measure the device's matrix-product peak (MFU's denominator) again instead of "
                   "reading it from the cache ($BENCH_CACHE_DIR/peaks.json)."),
    click.option("--executor", type=click.Choice(list(EXECUTORS)), default=_default("executor"),
              show_default=True,
              help="local: trials one after another here; ray: each trial is a Ray task "
                   "(pip install 'bench-gen[ray]')."),
    click.option("--ray-address", default=None,
              help="Ray cluster: auto (a running `ray start`), ray://HOST:PORT (Ray Client); "
                   "default: RAY_ADDRESS or a new local Ray."),
    click.option("--cpus-per-trial", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"CPUs each trial's Ray task asks for, and its torch threads "
                   f"(default {_ray_defaults()['cpus_per_trial']:g})."),
    click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=None,
              help=f"GPUs each trial's Ray task asks for (default {_ray_defaults()['gpus_per_trial']:g}; "
                   "Ray hides GPUs from tasks that ask for none)."),
    click.option("--max-retries", type=click.IntRange(min=0), default=None,
              help=f"Ray retries of a trial whose worker died, from its last checkpoint "
                   f"(default {_ray_defaults()['max_retries']})."),
]


def trial_options(command):
    command = reference_options(command)
    for option in reversed(TRIAL_OPTIONS):
        command = option(command)
    return command


def _run_config(kw: dict, seeds: list[int]) -> RunConfig:
    """The run config of ``bench run`` / ``bench sweep`` from their trial options."""
    ray_options = {k: kw[k] for k in RAY_FLAGS if kw.get(k) is not None}
    if ray_options and kw["executor"] != "ray":
        raise click.UsageError(f"--{next(iter(ray_options)).replace('_', '-')} needs --executor ray")
    return RunConfig(
        models=[m.strip() for m in kw["models"].split(",") if m.strip()],
        dataset=kw["dataset"], budget=kw["budget"], seeds=seeds, data_dir=kw["data_dir"],
        resolution=kw["resolution"], subset=kw["subset"], batch_size=kw["batch_size"], device=kw["device"],
        amp=kw["amp"], compile=kw["compile_"], compile_mode=kw["compile_mode"],
        channels_last=kw["channels_last"], flip=kw["flip"], log_every=kw["log_every"],
        checkpoint_every=kw["checkpoint_every"], options=kw["options"],
        plugin_files=[str(Path(p).resolve()) for p in kw["plugin_files"]],
        download=kw["download"], eval_samples=kw["eval_samples"], eval_ref=kw["eval_ref"],
        ref_samples=kw["ref_samples"], fid_weights=kw["fid_weights"], eval_untrained=kw["eval_untrained"],
        inception_backend=kw["inception_backend"],
        recon_samples=kw["recon_samples"], ema=kw["ema"], eval_every=kw["eval_every"],
        remeasure_peak=kw["remeasure_peak"], executor=kw["executor"], executor_options=ray_options,
    )


@main.command("run")
@trial_options
@click.option("--seeds", type=click.IntRange(min=1), default=len(_default("seeds")), show_default=True,
              help="Number of seeds per model.")
@click.option("--seed", type=int, default=_default("seeds")[0], show_default=True, help="First seed.")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go (env BENCH_RESULTS_DIR; default ./results).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue a run folder; its other options come from its manifest.")
@click.option("--retry-failed", is_flag=True,
              help="With --resume: set failed and diverged trials aside (retired/) and train them again.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def run_command(click_ctx, seeds, seed, results_dir, resume_dir, retry_failed, progress, **kw):
    """Train every requested variant x seed under one budget and record the results."""
    from bench.run import execute, not_completed, open_run, start_run

    command_line = shlex.join(["bench", *sys.argv[1:]])

    def open_folder():
        if resume_dir:
            _refuse_options_resume_ignores(click_ctx)
            run = open_run(Path(resume_dir), progress, retry_failed=retry_failed)
            for name, status, message in not_completed(run):
                click.echo(f"{name}: kept as {status} ({message}); to train it again: "
                           f"bench run --resume {run.directory} --retry-failed", err=True)
        else:
            if retry_failed:
                raise click.UsageError("--retry-failed needs --resume RUN_DIR")
            config = _run_config(kw, list(range(seed, seed + seeds)))
            run = start_run(config, Path(results_dir) if results_dir else default_results_root(),
                            command_line, progress,
                            announce=lambda lines: click.echo("\n".join(lines), err=True))
        _report_plugin_problems(run.plugins)
        click.echo(f"run folder: {run.directory}", err=True)
        return run

    def summarize(statuses):
        for trial, status in statuses.items():
            click.echo(f"{trial}: {status}")

    directory, statuses = _execute_and_report("run", open_folder, execute, summarize)
    bad = [t for t, s in statuses.items() if s != "completed"]
    if bad:
        click.echo(f"{len(bad)} of {len(statuses)} trial(s) did not complete ({', '.join(bad)}); "
                   f"their messages are in {directory}/metrics.jsonl and tracebacks in "
                   f"trials/<trial>/error.txt; to train them again: "
                   f"bench run --resume {directory} --retry-failed", err=True)
        sys.exit(EXIT_NOT_COMPLETED)


def _execute_and_report(command: str, open_folder, execute, summarize) -> tuple[Path, dict]:
    """The tail ``bench run`` and ``bench sweep`` share. ``open_folder()`` starts or resumes the
    run or sweep (an object with ``.directory``), ``execute(it)`` trains it and returns its
    trials' statuses, ``summarize(statuses)`` prints them. A clean error is one line; Ctrl-C names
    the ``bench COMMAND --resume`` that continues and exits 130; the report is built after, and a
    failing one only warns. Returns the folder and the statuses."""
    opened = None
    try:
        opened = open_folder()
        statuses = execute(opened)
    except _clean_errors() as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        if opened is not None:
            click.echo(f"\ninterrupted; continue with: bench {command} --resume {opened.directory}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    summarize(statuses)
    click.echo(f"results: {opened.directory}")
    try:  # the results are written: a failing report must not fail the run
        _build_report([opened.directory])
    except Exception as exc:
        click.echo(f"warning: the report could not be built ({type(exc).__name__}: {exc}); the results "
                   f"are kept; build it with: bench report {opened.directory}", err=True)
    return opened.directory, statuses


def _refuse_options_resume_ignores(click_ctx) -> None:
    """A resumed run takes its options from its manifest: an option given beside --resume would
    be ignored, so it is refused (naming it) instead."""
    given = [p for p in click_ctx.command.params
             if p.name not in RESUME_TAKES
             and click_ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        raise click.UsageError(f"--resume continues a run with the options in its manifest; it does not "
                               f"take {names} (it takes only --retry-failed and --progress/--no-progress); "
                               "start a new run to change them")


def _space_overrides(ctx, param, values) -> dict:
    """``--space-override gan.lr=loguniform(1e-4,1e-3)`` -> ``{"gan": {"lr": "loguniform(1e-4,1e-3)"}}``."""
    from bench.sweep.space import parse_override

    out: dict = {}
    for item in values:
        try:
            model, field, text = parse_override(item)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        out.setdefault(model, {})[field] = text
    return out


@main.command("sweep")
@trial_options
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Search: hyperparameter settings drawn per variant (K), each trained once.")
@click.option("--final-seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Final: seeds each variant's best setting is retrained with (S).")
@click.option("--sweep-seed", type=int, default=0, show_default=True,
              help="Seed of the draws: the same command draws the same settings.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Training seed of the search trials (the final ones use the next S).")
@click.option("--sampler", type=click.Choice(["random", "tpe"]), default="random", show_default=True,
              help="random: the protocol (Lucic et al. 2018); tpe: Optuna's TPE, which draws from the "
                   "results so far.")
@click.option("--space-override", "space_overrides", multiple=True, callback=_space_overrides,
              metavar="MODEL.FIELD=DIST",
              help="Replace or add a field's distribution, e.g. gan.lr=loguniform(1e-4,1e-3); "
                   "=default keeps the field at its default (repeatable).")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where sweep folders go (env BENCH_RESULTS_DIR; default ./results).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Finish a sweep folder; its other options come from its sweep.json and manifest.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def sweep_command(click_ctx, samples, final_seeds, sweep_seed, seed, sampler, space_overrides, results_dir,
                  resume_dir, progress, **kw):
    """Equal hyperparameter-search compute for every variant: K settings each, then the best
    setting over S seeds (the protocol of Lucic et al. 2018)."""
    from bench.sweep.run import SweepProtocol, open_sweep, run_sweep, start_sweep

    command_line = shlex.join(["bench", *sys.argv[1:]])

    def open_folder():
        if resume_dir:
            _refuse_options_resume_ignores(click_ctx)
            sweep = open_sweep(Path(resume_dir), progress)
        else:
            config = _run_config(kw, [seed])
            protocol = SweepProtocol(samples, final_seeds, sweep_seed, sampler, space_overrides)
            root = Path(results_dir) if results_dir else default_results_root()
            sweep = start_sweep(config, protocol, root, command_line, progress,
                                announce=lambda lines: click.echo("\n".join(lines), err=True))
        _report_plugin_problems(sweep.ctx.plugins)
        click.echo(f"sweep folder: {sweep.directory}", err=True)
        return sweep

    def summarize(statuses):
        bad = [t for t, s in statuses.items() if s != "completed"]
        click.echo(f"sweep: {len(statuses) - len(bad)} of {len(statuses)} trials completed "
                   f"({len(bad)} failed or diverged: kept as data)")

    _execute_and_report("sweep", open_folder, run_sweep, summarize)


@main.command("eval")
@click.argument("images", type=click.Path(exists=True))
@click.option("--dataset", default="cifar10", show_default=True,
              help="Dataset whose split is the reference (ignored when --eval-ref is a path).")
@data_dir_option
@reference_options
@click.option("--device", default="auto", show_default=True)
@click.option("--name", default=None, help="Label for the row (default: the file or folder name).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="JSON-lines file the row is appended to (default: <results-dir>/eval.jsonl).")
def eval_command(images, dataset, data_dir, eval_ref, ref_samples, fid_weights, inception_backend, device,
                 name, out):
    """FID, FID-infinity, KID and precision/recall of IMAGES (a folder, or an .npz of uint8)."""
    import math

    from bench.data import open_dataset
    from bench.data.image_source import load_image_source
    from bench.device import resolve_device
    from bench.evaluation import EvalSettings, Evaluator
    from bench.plugins import load_plugins
    from bench.store import append_jsonl

    try:
        samples = load_image_source(Path(images))
        settings = EvalSettings(len(samples), eval_ref, ref_samples, fid_weights, untrained=False,
                                inception_backend=inception_backend)
        plugins = load_plugins()
        data = None
        if not Path(eval_ref).exists():  # a split name: load the dataset it belongs to
            data = open_dataset(plugins.datasets, dataset, data_dir=data_dir)
            settings.check(data)
        evaluator = Evaluator(settings, data, resolve_device(device), plugins.metric_objects())
        row = {
            "model": name or Path(images).name,
            "eval_point": "external",
            "images": str(Path(images).resolve()),
            "dataset": data.name if data else None,
            **evaluator.evaluate_images(samples),
        }
    except _clean_errors() as exc:
        raise click.ClickException(str(exc)) from None
    out_path = Path(out) if out else default_results_root() / "eval.jsonl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    append_jsonl(out_path, row)
    for key, value in row.items():
        if isinstance(value, float) and math.isnan(value):
            continue  # a metric that does not apply to images alone (reconstruction)
        click.echo(f"{key:<14} {value:.6g}" if isinstance(value, float) else f"{key:<14} {value}")
    click.echo(f"appended to {out_path}")


@main.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the report goes (default: the first RUN_DIR).")
def report_command(run_dirs, out_dir):
    """Tables and plots of run folders: report.md, report.html, results.csv and results.parquet."""
    from bench.report import ReportError

    try:
        _build_report(run_dirs, out_dir)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None


def _build_report(run_dirs, out_dir=None) -> None:
    import warnings

    import bench.report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = bench.report.build_report(list(run_dirs), out_dir)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(f"report: {paths['markdown']} and {paths['html'].name}, rows in {paths['csv'].name} "
               f"and {paths['parquet'].name}")


if __name__ == "__main__":
    main()
