"""The ``bench`` command line.

    bench list                                          models and datasets
    bench run --models all --dataset cifar10 --budget 10m --seeds 2
    bench run --resume results/00003-cifar10-10m        continue an interrupted run
    bench report results/00003-cifar10-10m              tables and plots of run folders
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from bench.budget import ACCEPTED_FORMS, BudgetError, parse_budget
from bench.data import DatasetError
from bench.device import DeviceError
from bench.metrics import MetricsError
from bench.plugins import load_plugins
from bench.results import default_results_root


def _budget(ctx, param, value):
    if value is None:
        return None
    try:
        parse_budget(value)
    except BudgetError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _options(ctx, param, values) -> dict:
    """``--set gan.loss=hinge`` -> ``{"gan": {"loss": "hinge"}}`` (values parsed as JSON if possible)."""
    out: dict = {}
    for item in values:
        key, eq, raw = item.partition("=")
        model, dot, field = key.partition(".")
        if not eq or not dot or not model or not field:
            raise click.BadParameter(f"{item!r}: expected MODEL.FIELD=VALUE, e.g. gan.loss=hinge")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[field] = value
    return out


def _report_plugin_failures(plugins) -> None:
    for failure in plugins.failures:
        click.echo(f"warning: {failure}", err=True)


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), envvar="BENCH_DATA_DIR",
    help="Folder holding cifar10/ (env BENCH_DATA_DIR; default ./data).")


def reference_options(command):
    """The FID reference and weights, shared by `run` and `eval`."""
    options = [
        click.option("--eval-ref", default="train", show_default=True,
                     help="Reference: a split of the dataset (train, test) or a folder / .npz of images."),
        click.option("--ref-samples", type=click.IntRange(min=2), default=None,
                     help="Reference images (a fixed random subset; default: all of them)."),
        click.option("--fid-weights", type=click.Path(dir_okay=False), envvar="BENCH_FID_WEIGHTS",
                     help="FID Inception weights (env BENCH_FID_WEIGHTS; default: torch-fidelity's "
                          "own download)."),
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
def list_command(plugin_files):
    """List every registered model (name, family, source) and dataset."""
    plugins = load_plugins(plugin_files)
    click.echo("models:")
    for entry in plugins.models:
        click.echo(f"  {entry.name:<16} {entry.obj.family:<8} {entry.source}")
    click.echo("datasets:")
    for entry in plugins.datasets:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}")
    _report_plugin_failures(plugins)


@main.command("run")
@click.option("--models", default="all", show_default=True,
              help="Comma-separated model names, or 'all'.")
@click.option("--dataset", default="cifar10", show_default=True,
              help="cifar10, synthetic[:N] or imagefolder:PATH.")
@data_dir_option
@click.option("--download/--no-download", default=True, show_default=True,
              help="Download the official CIFAR-10 archive into --data-dir if it is missing.")
@click.option("--budget", default="10m", show_default=True, callback=_budget,
              help=f"Per-trial training budget: {ACCEPTED_FORMS}.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of seeds per model.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--resolution", type=click.IntRange(min=8), default=None,
              help="Resize images to this square size (default: the dataset's own).")
@click.option("--subset", type=click.IntRange(min=1), default=None,
              help="Train on a fixed random subset of N training images.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA).")
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True,
              help="torch.compile the networks (after the first step).")
@click.option("--compile-mode", type=click.Choice(["default", "reduce-overhead", "max-autotune"]),
              default="default", show_default=True,
              help="torch.compile mode; reduce-overhead also captures CUDA graphs on a GPU.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="NHWC networks and batches (faster convolutions on tensor cores and oneDNN).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flips.")
@click.option("--log-every", type=click.IntRange(min=1), default=25, show_default=True,
              help="Steps between loss reads and log lines.")
@click.option("--checkpoint-every", default="2m", show_default=True, callback=_budget,
              help="Checkpoint interval, in any budget unit.")
@click.option("--eval-samples", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="Generated images for FID, KID and precision/recall (0: skip them).")
@reference_options
@click.option("--eval-every", default=None, callback=_budget,
              help="Also evaluate during training at this interval (any budget unit, e.g. 2m).")
@click.option("--eval-untrained", is_flag=True,
              help="Also evaluate every variant before its first step.")
@click.option("--set", "options", multiple=True, callback=_options, metavar="MODEL.FIELD=VALUE",
              help="Override a variant's config field (repeatable).")
@click.option("--plugin", "plugin_files", multiple=True, type=click.Path(),
              help="Load a local plugin file (repeatable).")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go (env BENCH_RESULTS_DIR; default ./results).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue an interrupted run folder; other options are taken from its manifest.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: trials one after another here; ray: each trial is a Ray task "
                   "(pip install 'bench-gen[ray]').")
@click.option("--ray-address", default=None,
              help="Ray cluster: auto (a running `ray start`), ray://HOST:PORT (Ray Client); "
                   "default: RAY_ADDRESS or a new local Ray.")
@click.option("--cpus-per-trial", type=click.FloatRange(min=0, min_open=True), default=None,
              help="CPUs each trial's Ray task asks for, and its torch threads (default 1).")
@click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=None,
              help="GPUs each trial's Ray task asks for (default 0; Ray hides GPUs from tasks "
                   "that ask for none).")
@click.option("--max-retries", type=click.IntRange(min=0), default=None,
              help="Ray retries of a trial whose worker died, from its last checkpoint (default 2).")
def run_command(models, dataset, data_dir, download, budget, seeds, seed, batch_size, resolution, subset,
                device, amp, compile_, compile_mode, channels_last, flip, log_every, checkpoint_every,
                eval_samples, eval_ref,
                ref_samples, fid_weights, eval_every, eval_untrained, options, plugin_files, results_dir,
                resume_dir, progress, executor, ray_address, cpus_per_trial, gpus_per_trial, max_retries):
    """Train every requested variant x seed under one budget and record the results."""
    from bench.runner import RunConfig, RunError, execute, open_run, start_run

    command_line = shlex.join(["bench", *sys.argv[1:]])
    run = None
    try:
        if resume_dir:
            run = open_run(Path(resume_dir), progress)
        else:
            ray_options = {"ray_address": ray_address, "cpus_per_trial": cpus_per_trial,
                           "gpus_per_trial": gpus_per_trial, "max_retries": max_retries}
            given = [k for k, v in ray_options.items() if v is not None]
            if given and executor != "ray":
                raise click.UsageError(f"--{given[0].replace('_', '-')} needs --executor ray")
            config = RunConfig(
                models=[m.strip() for m in models.split(",") if m.strip()],
                dataset=dataset, budget=budget, seeds=list(range(seed, seed + seeds)),
                data_dir=data_dir, resolution=resolution, subset=subset, batch_size=batch_size,
                device=device, amp=bool(amp) if amp is not None else _default_amp(device, executor,
                                                                                   gpus_per_trial),
                compile=compile_, compile_mode=compile_mode, channels_last=channels_last, flip=flip,
                log_every=log_every,
                checkpoint_every=checkpoint_every, options=options,
                plugin_files=[str(Path(p).resolve()) for p in plugin_files],
                download=download, eval_samples=eval_samples, eval_ref=eval_ref,
                ref_samples=ref_samples, fid_weights=fid_weights, eval_untrained=eval_untrained,
                eval_every=eval_every, executor=executor,
                **{k: v for k, v in ray_options.items() if v is not None},
            )
            run = start_run(config, Path(results_dir) if results_dir else default_results_root(),
                            command_line, progress)
        _report_plugin_failures(run.plugins)
        click.echo(f"run folder: {run.directory}", err=True)
        statuses = execute(run)
    except (RunError, DatasetError, DeviceError, BudgetError, MetricsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        if run is not None:
            click.echo(f"\ninterrupted; continue with: bench run --resume {run.directory}", err=True)
        sys.exit(130)
    for trial, status in statuses.items():
        click.echo(f"{trial}: {status}")
    click.echo(f"results: {run.directory}")
    try:  # the results are written: a failing report must not fail the run
        _build_report([run.directory])
    except Exception as exc:
        click.echo(f"warning: the report could not be built ({type(exc).__name__}: {exc}); the results "
                   f"are kept; build it with: bench report {run.directory}", err=True)


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
def eval_command(images, dataset, data_dir, eval_ref, ref_samples, fid_weights, device, name, out):
    """FID, FID-infinity, KID and precision/recall of IMAGES (a folder, or an .npz of uint8)."""
    from bench.data.image_source import load_image_source
    from bench.device import resolve_device
    from bench.evaluation import SMALL_N, EvalSettings, Evaluator
    from bench.results import append_jsonl
    from bench.runner import RunConfig, RunError, load_dataset

    try:
        samples = load_image_source(Path(images))
        settings = EvalSettings(len(samples), eval_ref, ref_samples, fid_weights)
        data = None
        if not Path(eval_ref).exists():  # a split name: load the dataset it belongs to
            data = load_dataset(load_plugins(), RunConfig(models=[], dataset=dataset, data_dir=data_dir))
            settings.check(data)
        evaluator = Evaluator(settings, data, resolve_device(device))
        row = {
            "model": name or Path(images).name,
            "eval_point": "external",
            "images": str(Path(images).resolve()),
            "dataset": data.name if data else None,
            "eval_samples": len(samples),
            "eval_ref": eval_ref,
            "small_n": len(samples) < SMALL_N,
            **evaluator.compare(samples),
            "ref_samples": int(evaluator.reference.features.shape[0]),
        }
    except (RunError, DatasetError, DeviceError, MetricsError) as exc:
        raise click.ClickException(str(exc)) from None
    out_path = Path(out) if out else default_results_root() / "eval.jsonl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    append_jsonl(out_path, row)
    for key, value in row.items():
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


def _default_amp(device: str, executor: str, gpus_per_trial: float | None) -> bool:
    """bf16 autocast by default where trials train on CUDA (with Ray: on GPUs they ask for)."""
    if executor == "ray":
        return bool(gpus_per_trial) and device.strip().lower() != "cpu"
    return device_is_cuda(device)


def device_is_cuda(spec: str) -> bool:
    from bench.device import resolve_device

    try:
        return resolve_device(spec).type == "cuda"
    except DeviceError:
        return False


if __name__ == "__main__":
    main()
