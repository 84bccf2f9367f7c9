"""The ``bench`` command line.

    bench list                                          models, backbones, datasets, metrics, trackers
    bench run --models all --dataset cifar10 --budget 10m --seeds 2
    bench run --resume results/00003-cifar10-10m        continue an interrupted run
    bench report results/00003-cifar10-10m              tables and plots of run folders

Exit status of ``bench run``: 0 every trial completed; 1 an error stopped it (one line says
what); 2 a bad command line; 3 every trial ran but some failed or diverged (the report is
written); 130 interrupted (Ctrl-C; ``--resume`` continues).

The command line only parses: heavy modules (torch, the metrics, pandas) are imported by the
command that needs them, so ``bench --help`` and ``bench list`` start fast. The options of
``run``, ``sweep`` and ``eval`` are declared on the dataclass fields they set (``RunConfig``,
each executor's options, ``SweepProtocol``) and made here by ``bench.options``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from bench import options
from bench.budget import BudgetError
from bench.config import RunConfig, RunError
from bench.executors import EXECUTOR_OPTIONS, options_class
from bench.store import StoreError, default_results_root
from bench.sweep.protocol import SweepProtocol

EXIT_NOT_COMPLETED = 3  # some trials failed or diverged; the others and the report are done
EXIT_INTERRUPTED = 130

# What a failure of these says is the whole message: one line, no traceback.
def _clean_errors():
    from bench.checkpoint import CheckpointError
    from bench.data import DatasetError
    from bench.device import DeviceError
    from bench.metrics.errors import MetricsError

    return (RunError, StoreError, DatasetError, DeviceError, BudgetError, MetricsError, CheckpointError)


def _report_plugin_problems(plugins) -> None:
    for failure in plugins.failures:
        click.echo(f"warning: {failure}", err=True)
    for warning in plugins.warnings:
        click.echo(f"warning: {warning}", err=True)


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
    """List every registered model (name, family, source), backbone, dataset, metric and tracker."""
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
    click.echo("backbones:")
    for entry in plugins.backbones:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}  images: {entry.obj.resolutions}")
    click.echo("datasets:")
    for entry in plugins.datasets:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}")
    click.echo("metrics:")
    for entry in plugins.metrics:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}  columns: {', '.join(entry.obj.keys)}")
    click.echo("trackers:")
    for entry in plugins.trackers:
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}")
    click.echo("extractors:")
    for entry in plugins.extractors:
        e = entry.obj
        click.echo(f"  {entry.name:<16} {'':<8} {entry.source}  {e.input_size}px -> {e.feature_size}-d, "
                   f"columns: {('*_' + e.short) if e.short else 'unsuffixed'}; weights: {e.weights}")
    _report_plugin_problems(plugins)


def _print_search_space(plugins, model: str) -> None:
    from bench.space import describe, space_of

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


# What `bench run --resume` and `bench sweep --resume` take: everything else comes from the run's
# manifest (and the sweep's sweep.json). --results-dir is let through (it has nowhere to go).
RUN_RESUME_TAKES = ("resume_dir", "retry_failed", "progress", "results_dir")
SWEEP_RESUME_TAKES = ("resume_dir", "add_samples", "progress", "results_dir")
# Each executor's own options (its flags default to None: a value means it was given).
EXECUTOR_OPTION_CLASSES = {name: options_class(name) for name in EXECUTOR_OPTIONS}
# The options of the trials a run or a sweep trains: RunConfig's fields, then the executors'.
trial_options = options.apply(
    options.click_options(RunConfig),
    *(options.click_options(cls, optional=True) for cls in EXECUTOR_OPTION_CLASSES.values()))


def run_config(params: dict) -> RunConfig:
    """The run config of a ``bench run`` or ``bench sweep`` command line from its parsed parameters
    (``click.Context.params``): RunConfig's flags, the options of ``--executor``'s executor, and
    the seeds S .. S+N-1 of ``--seed S --seeds N`` (a sweep has only ``--seed``)."""
    first = params["seed"]
    seeds = list(range(first, first + params.get("seeds", 1)))
    return RunConfig(**options.values(RunConfig, params), seeds=seeds,
                     executor_options=_executor_options(params))


def _executor_options(params: dict) -> dict:
    """The options given for ``--executor``'s executor; one of another executor is an error."""
    for name, cls in EXECUTOR_OPTION_CLASSES.items():
        given = options.given(cls, params)
        if given and params["executor"] != name:
            raise click.UsageError(f"{options.flag_of(cls, next(iter(given)))} needs --executor {name}")
    cls = EXECUTOR_OPTION_CLASSES.get(params["executor"])
    return options.given(cls, params) if cls else {}


@main.command("run")
@trial_options
@click.option("--seeds", type=click.IntRange(min=1), default=len(RunConfig.default("seeds")),
              show_default=True, help="Number of seeds per model.")
@click.option("--seed", type=int, default=RunConfig.default("seeds")[0], show_default=True,
              help="First seed.")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go (env BENCH_RESULTS_DIR; default ./results).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue a run folder; its other options come from its manifest.")
@click.option("--retry-failed", is_flag=True,
              help="With --resume: set failed and diverged trials aside (retired/) and train them again.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def run_command(click_ctx, results_dir, resume_dir, retry_failed, progress, **_):
    """Train every requested variant x seed under one budget and record the results."""
    command_line = shlex.join(["bench", *sys.argv[1:]])
    if resume_dir:
        _refuse_options_resume_ignores(click_ctx, RUN_RESUME_TAKES, "run", "manifest")
        _refuse_a_sweep_folder(Path(resume_dir))
    elif retry_failed:
        raise click.UsageError("--retry-failed needs --resume RUN_DIR")
    config = None if resume_dir else run_config(click_ctx.params)  # a bad command line: before torch loads

    from bench.run import execute, not_completed, open_run, start_run

    def open_folder():
        if resume_dir:
            run = open_run(Path(resume_dir), progress, retry_failed=retry_failed)
            for name, status, message in not_completed(run):
                click.echo(f"{name}: kept as {status} ({message}); to train it again: "
                           f"bench run --resume {run.directory} --retry-failed", err=True)
        else:
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
        _end_trackers(opened, "failed")
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        if opened is not None:
            click.echo(f"\ninterrupted; continue with: bench {command} --resume {opened.directory}", err=True)
        _end_trackers(opened, "interrupted")
        sys.exit(EXIT_INTERRUPTED)
    summarize(statuses)
    click.echo(f"results: {opened.directory}")
    report = None
    try:  # the results are written: a failing report must not fail the run
        _build_report([opened.directory])
        report = opened.directory
    except Exception as exc:
        click.echo(f"warning: the report could not be built ({type(exc).__name__}: {exc}); the results "
                   f"are kept; build it with: bench report {opened.directory}", err=True)
    completed = all(s == "completed" for s in statuses.values())
    _end_trackers(opened, "completed" if completed else "incomplete", report)
    return opened.directory, statuses


def _end_trackers(opened, status: str, report_dir: Path | None = None) -> None:
    """The run's end, with its report, to its trackers (``--tracker``; guarded: never an error)."""
    trackers = getattr(opened, "trackers", None)  # a run's or a sweep's (None before it opened)
    if trackers is not None:
        trackers.end_run(status, report_dir)


def _refuse_options_resume_ignores(click_ctx, takes: tuple[str, ...], what: str, record: str) -> None:
    """A resumed run or sweep takes its options from its ``record``: an option given beside --resume
    would be ignored, so it is refused (naming it, and what this command does take) instead."""
    params = click_ctx.command.params
    given = [p for p in params
             if p.name not in takes and click_ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        takes_here = " and ".join("/".join(p.opts + p.secondary_opts) for p in params
                                  if p.name in takes and p.name not in ("resume_dir", "results_dir"))
        more = (f"; to draw more settings per variant: bench sweep --resume {click_ctx.params['resume_dir']} "
                "--add-samples N" if any(p.name == "samples" for p in given) else "")
        raise click.UsageError(f"--resume continues a {what} with the options in its {record}; it does not "
                               f"take {names} (beside --resume, bench {what} takes only {takes_here}); "
                               f"start a new {what} to change them{more}")


def _refuse_a_sweep_folder(folder: Path) -> None:
    """``bench run --resume`` on a sweep folder would train the default trials of its manifest into
    it, outside every slot of the sweep."""
    from bench.store.layout import OPTUNA_FILE, SWEEP_FILE

    if (folder / SWEEP_FILE).exists() or (folder / OPTUNA_FILE).exists():
        raise click.ClickException(f"{folder} is a sweep folder (it has {SWEEP_FILE} or {OPTUNA_FILE}), not "
                                   f"a run of `bench run`; continue it with: bench sweep --resume {folder}")


@main.command("sweep")
@trial_options
@options.apply(options.click_options(SweepProtocol))
@click.option("--seed", type=int, default=RunConfig.default("seeds")[0], show_default=True,
              help="Training seed of the search trials (the final ones use the next S).")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where sweep folders go (env BENCH_RESULTS_DIR; default ./results).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Finish a sweep folder; its other options come from its sweep.json and manifest.")
@click.option("--add-samples", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --resume: draw N more settings per variant (as a sweep of K + N would have), "
                   "train them and choose each variant's best again.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def sweep_command(click_ctx, results_dir, resume_dir, add_samples, progress, **_):
    """Equal hyperparameter-search compute for every variant: K settings each, then the best
    setting over S seeds (the protocol of Lucic et al. 2018)."""
    command_line = shlex.join(["bench", *sys.argv[1:]])
    if resume_dir:
        _refuse_options_resume_ignores(click_ctx, SWEEP_RESUME_TAKES, "sweep", "sweep.json and manifest")
    elif add_samples:
        raise click.UsageError("--add-samples needs --resume SWEEP_DIR (a new sweep takes --samples)")
    config = None if resume_dir else run_config(click_ctx.params)  # a bad command line: before torch loads
    protocol = None if resume_dir else SweepProtocol(**options.values(SweepProtocol, click_ctx.params))

    from bench.sweep.resume import open_sweep
    from bench.sweep.run import run_sweep, start_sweep

    def open_folder():
        if resume_dir:
            sweep = open_sweep(Path(resume_dir), progress, add_samples=add_samples or 0,
                               warn=lambda line: click.echo(f"warning: {line}", err=True))
        else:
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
@options.apply(options.click_options(
    RunConfig, ("dataset", "data_dir", "eval_ref", "ref_samples", "fid_weights", "inception_backend",
                "metrics", "extractors", "extractor_weights", "device"),
    help={"dataset": "Dataset whose split is the reference (ignored when --eval-ref is a path)."}))
@click.option("--name", default=None, help="Label for the row (default: the file or folder name).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="JSON-lines file the row is appended to (default: <results-dir>/eval.jsonl).")
def eval_command(images, dataset, data_dir, eval_ref, ref_samples, fid_weights, inception_backend, metrics,
                 extractors, extractor_weights, device, name, out):
    """FID, FID-infinity, KID and precision/recall of IMAGES (a folder, or an .npz of uint8)."""
    import math

    from bench.data import open_dataset
    from bench.data.image_source import load_image_source
    from bench.device import resolve_device
    from bench.evaluation import EvalSettings, Evaluator, select_extractors, select_metrics
    from bench.plugins import load_plugins
    from bench.store import append_jsonl

    try:
        samples = load_image_source(Path(images))
        settings = EvalSettings(len(samples), eval_ref, ref_samples, fid_weights, untrained=False,
                                inception_backend=inception_backend, metrics=tuple(metrics),
                                extractors=tuple(extractors), extractor_weights=extractor_weights)
        plugins = load_plugins()
        data = None
        if not Path(eval_ref).exists():  # a split name: load the dataset it belongs to
            data = open_dataset(plugins.datasets, dataset, data_dir=data_dir)
            settings.check(data)
        evaluator = Evaluator(settings, data, resolve_device(device),
                              select_metrics(plugins.metric_objects(), settings),
                              select_extractors(plugins.extractors, settings))
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
    except (ReportError, StoreError) as exc:  # a damaged file of a run or sweep folder: one line
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
