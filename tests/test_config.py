"""Each run option is declared once, on its field (``bench.options``): every field of
``RunConfig`` and of each executor's options has a flag (or a declared way in) and a row in the
README's option tables, and the generated flags give back the config one would build by hand.

Nothing here imports torch: command lines are parsed (``make_context``), never run.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench import options
from bench.cli import main, run_config
from bench.config import RunConfig
from bench.executors import EXECUTOR_OPTIONS, options_class
from bench.sweep.protocol import SweepProtocol

README = Path(__file__).parents[1] / "README.md"
ENV = ("BENCH_DATA_DIR", "BENCH_FID_WEIGHTS", "BENCH_INCEPTION_BACKEND", "MLFLOW_TRACKING_URI")
# The flag's default where it is not the field's: the command line says "auto" itself, a config
# built in code leaves it to $BENCH_INCEPTION_BACKEND.
COMMAND_LINE_DEFAULTS = {"inception_backend": "auto"}


@pytest.fixture(autouse=True)
def _no_option_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def help_flags(command: str) -> set[str]:
    out = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
    return set(re.findall(r"--[a-z][a-z0-9-]*", out))


def readme_flags() -> set[str]:
    """The flags named in the first cell of the README's option rows (``| `--x`, `--y/--no-y` |``)."""
    flags = set()
    for line in README.read_text().splitlines():
        if line.startswith("| `--"):
            for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
                flags.update(token.split()[0].split("/"))
    return flags


def ways_in(cls) -> dict[str, tuple[str, ...]]:
    """field -> the flags that set it: its own, or those it declares (``via``)."""
    return {f.name: (opt.via if opt.via is not None else (options.flag_of(cls, f.name),))
            for f, opt in options.declared(cls)}


def executor_option_classes() -> dict[str, type]:
    return {name: options_class(name) for name in EXECUTOR_OPTIONS}


def parse(command: str, *args: str) -> dict:
    """The parsed parameters of a command line, as the command gets them (nothing runs)."""
    with main.commands[command].make_context(command, list(args)) as ctx:
        return dict(ctx.params)


def test_every_run_option_has_a_flag_and_a_readme_row():
    undeclared = [f.name for f in dataclasses.fields(RunConfig) if "option" not in f.metadata]
    assert undeclared == []
    shown, documented = help_flags("run"), readme_flags()
    ways = ways_in(RunConfig)
    assert ways.pop("executor_options") == ()  # set by the executors' own options: below
    without_flag = [f"{name} ({', '.join(flags) or 'no flag'})" for name, flags in ways.items()
                    if not flags or not set(flags) <= shown]
    without_row = [f"{name} ({', '.join(flags)})" for name, flags in ways.items()
                   if not set(flags) <= documented]
    assert without_flag == [] and without_row == []


def test_every_executor_option_has_a_flag_and_a_readme_row():
    shown, documented = help_flags("run"), readme_flags()
    missing = [f"{name}: {field} ({flags[0]})"
               for name, cls in executor_option_classes().items()
               for field, flags in ways_in(cls).items()
               if flags[0] not in shown or flags[0] not in documented]
    assert missing == []
    assert ways_in(options_class("ray"))  # the walk sees Ray's options


def test_every_sweep_option_has_a_flag():
    shown = help_flags("sweep")
    assert [name for name, flags in ways_in(SweepProtocol).items() if not set(flags) <= shown] == []


def test_the_defaults_give_the_default_config():
    config = run_config(parse("run"))
    assert config == RunConfig(**COMMAND_LINE_DEFAULTS)
    assert run_config(parse("sweep")) == RunConfig(**COMMAND_LINE_DEFAULTS)
    assert SweepProtocol(**options.values(SweepProtocol, parse("sweep"))) == SweepProtocol()


@pytest.mark.parametrize("args, changed", [
    (["--no-flip"], {"flip": False}),
    (["--amp"], {"amp": True}),
    (["--no-amp"], {"amp": False}),
    (["--seeds", "3", "--seed", "7"], {"seeds": [7, 8, 9]}),
    (["--models", "gan, vae,"], {"models": ["gan", "vae"]}),
    (["--executor", "ray"], {"executor": "ray"}),
    (["--executor", "ray", "--gpus-per-trial", "1"],
     {"executor": "ray", "executor_options": {"gpus_per_trial": 1.0}}),
])
def test_a_flag_sets_its_field_and_nothing_else(args, changed):
    assert run_config(parse("run", *args)) == RunConfig(**{**COMMAND_LINE_DEFAULTS, **changed})


def test_every_flag_set_gives_the_config_built_by_hand(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--models", "gan,vae", "--backbone", "resnet", "--dataset", "synthetic:64", "--data-dir", "data",
            "--no-download",
            "--budget", "5steps", "--batch-size", "16", "--resolution", "32", "--subset", "100",
            "--device", "cpu", "--no-amp", "--compile", "--compile-mode", "reduce-overhead",
            "--no-channels-last", "--no-flip", "--log-every", "5", "--checkpoint-every", "1m",
            "--eval-samples", "0", "--eval-every", "2steps", "--eval-untrained", "--ema", "0.999",
            "--recon-samples", "40", "--eval-ref", "test", "--ref-samples", "500", "--fid-weights", "w.pth",
            "--inception-backend", "torch", "--set", "gan.width=8", "--set", "gan.latent=16",
            "--set", "vae.width=4", "--plugin", "p.py", "--remeasure-peak", "--executor", "ray",
            "--ray-address", "auto", "--cpus-per-trial", "2", "--gpus-per-trial", "0.5",
            "--max-retries", "1", "--seeds", "2", "--seed", "5", "--tracker", "tensorboard, mlflow",
            "--tracker-uri", "http://mlflow.lab:5000", "--metrics", "fid, kid",
            "--extractors", "inception,dinov2-vit-s-14",
            "--extractor-weights", "dinov2-vit-s-14=d.pth,x=y.pth",
            "--extractor-weights", "dinov2-vit-l-14=l.pth"]
    by_hand = RunConfig(
        models=["gan", "vae"], backbone="resnet", dataset="synthetic:64", data_dir="data", download=False,
        budget="5steps",
        batch_size=16, resolution=32, subset=100, device="cpu", amp=False, compile=True,
        compile_mode="reduce-overhead", channels_last=False, flip=False, log_every=5, checkpoint_every="1m",
        eval_samples=0, eval_every="2steps", eval_untrained=True, ema=0.999, recon_samples=40,
        eval_ref="test", ref_samples=500, fid_weights="w.pth", inception_backend="torch",
        options={"gan": {"width": "8", "latent": "16"}, "vae": {"width": "4"}},
        plugin_files=[str(tmp_path.resolve() / "p.py")], remeasure_peak=True, executor="ray",
        executor_options={"ray_address": "auto", "cpus_per_trial": 2.0, "gpus_per_trial": 0.5,
                          "max_retries": 1},
        seeds=[5, 6], trackers=["tensorboard", "mlflow"], tracker_uri="http://mlflow.lab:5000",
        metrics=["fid", "kid"], extractors=["inception", "dinov2-vit-s-14"],
        extractor_weights={name: str(tmp_path.resolve() / f) for name, f in
                           (("dinov2-vit-s-14", "d.pth"), ("x", "y.pth"), ("dinov2-vit-l-14", "l.pth"))},
    )
    config = run_config(parse("run", *args))
    assert config == by_hand
    # this command line covers every field: a new one must be added to it
    unchanged = [f.name for f in dataclasses.fields(RunConfig)
                 if getattr(config, f.name) == RunConfig.default(f.name)]
    assert unchanged == ["tracker_state"]  # what the trackers record when the run starts
    ray_defaults = options_class("ray")()
    assert all(getattr(ray_defaults, k) != v for k, v in config.executor_options.items())


def test_the_sweep_flags_give_the_protocol_built_by_hand():
    params = parse("sweep", "--samples", "5", "--final-seeds", "2", "--sweep-seed", "3", "--seed", "4",
                   "--sampler", "tpe", "--space-override", "gan.lr=loguniform(1e-4,1e-3)", "--models", "gan")
    assert SweepProtocol(**options.values(SweepProtocol, params)) == SweepProtocol(
        samples=5, final_seeds=2, seed=3, sampler="tpe", overrides={"gan": {"lr": "loguniform(1e-4,1e-3)"}})
    assert run_config(params) == RunConfig(**COMMAND_LINE_DEFAULTS, models=["gan"], seeds=[4])


def test_eval_shares_run_flags_and_their_defaults():
    run = {p.name: p for p in main.commands["run"].params}
    shared = [p for p in main.commands["eval"].params if p.name in run]
    assert {p.name for p in shared} == {"dataset", "data_dir", "eval_ref", "ref_samples", "fid_weights",
                                        "inception_backend", "metrics", "extractors", "extractor_weights",
                                        "device"}
    for p in shared:
        other = run[p.name]
        assert (p.opts, p.default, p.envvar, p.type.to_info_dict()) == (
            other.opts, other.default, other.envvar, other.type.to_info_dict()), p.name


@pytest.mark.parametrize("args, message", [
    (["--budget", "ten minutes"], "cannot read budget 'ten minutes'"),
    (["--eval-every", "often"], "cannot read budget 'often'"),
    (["--set", "gan.width"], "expected MODEL.FIELD=VALUE"),
    (["--recon-samples", "1"], "--recon-samples"),
    (["--compile-mode", "fast"], "--compile-mode"),
])
def test_a_bad_value_is_a_usage_error(args, message):
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_executor_option_without_its_executor_is_a_usage_error():
    for name, cls in executor_option_classes().items():
        for (flag,) in ways_in(cls).values():
            with pytest.raises(click.UsageError, match=f"^{flag} needs --executor {name}$"):
                run_config(parse("run", flag, "1"))
    result = CliRunner().invoke(main, ["run", "--models", "gan", "--gpus-per-trial", "1"])
    assert result.exit_code == 2 and "Error: --gpus-per-trial needs --executor ray" in result.output
