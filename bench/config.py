"""The run configuration: every option of a run, and every default, in one place.

Each ``RunConfig`` field declares its flag too (``bench.options.option``: help, choices,
minimum, envvar, how the text is parsed), and the command line makes its options from them;
the trainer's and evaluator's settings are derived from it (``train_settings``,
``eval_settings``) and have no defaults of their own. An executor's own options (Ray's) are a
dict in ``executor_options``, validated by that executor's options dataclass (named in
``bench.executors.EXECUTOR_OPTIONS``). The config is saved in the manifest and in every
checkpoint, so ``--resume`` and a Ray worker rebuild the same run from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from bench.backbones import DEFAULT_BACKBONE
from bench.budget import ACCEPTED_FORMS, BudgetError, parse_budget
from bench.metrics.extractors import parse_weights as parse_extractor_weights
from bench.options import field_default, option
from bench.store import upgrade_config

if TYPE_CHECKING:  # imported where used: the command line reads its defaults without torch
    from bench.evaluation import EvalSettings
    from bench.trainer import TrainSettings


class RunError(Exception):
    """Bad run configuration or a run that cannot go on; the message says what to change."""


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _budget_text(text: str) -> str:
    """A budget or interval, checked when it is given, kept as text."""
    try:
        parse_budget(text)
    except BudgetError as exc:
        raise ValueError(str(exc)) from None
    return text


def _set_values(items) -> dict:
    """``--set gan.loss=hinge`` -> ``{"gan": {"loss": "hinge"}}``; values stay text until they are
    converted to their fields' types, when the models are known."""
    out: dict = {}
    for item in items:
        key, eq, raw = item.partition("=")
        model, dot, field = key.partition(".")
        if not eq or not dot or not model or not field:
            raise ValueError(f"{item!r}: expected MODEL.FIELD=VALUE, e.g. gan.loss=hinge")
        out.setdefault(model, {})[field] = raw
    return out


def _absolute_paths(paths) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


@dataclasses.dataclass
class RunConfig:
    """Every option of a run; saved in the manifest so that ``--resume`` can rebuild it. Each
    field declares its flag (``bench.options.option``); the order is ``bench run --help``'s."""

    models: list[str] = option(flag_default="all", parse=_names,
                               help="Comma-separated model names, or 'all'.")
    backbone: str = option(DEFAULT_BACKBONE, help="The image networks every model builds from: dcgan, resnet "
                                                  "or a plugin's (see `bench list`); one model's own with "
                                                  "--set MODEL.backbone=NAME.")
    dataset: str = option("cifar10", help="cifar10, synthetic[:N] or imagefolder:PATH.")
    data_dir: str | None = option(None, path="dir", envvar="BENCH_DATA_DIR",
                                  help="Folder holding cifar10/ (env BENCH_DATA_DIR; default ./data).")
    download: bool = option(True, negatable=True,
                            help="Download the official CIFAR-10 archive into --data-dir if it is missing.")
    budget: str = option("10m", parse=_budget_text, help=f"Per-trial training budget: {ACCEPTED_FORMS}.")
    batch_size: int = option(128, min=1)
    resolution: int | None = option(None, min=8,
                                    help="Resize images to this square size (default: the dataset's own).")
    subset: int | None = option(None, min=1, help="Train on a fixed random subset of N training images.")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N.")
    amp: bool | None = option(None, negatable=True,  # None: on where trials train on CUDA
                              help="bf16 autocast (default: on for CUDA).")
    compile: bool = option(False, negatable=True, help="torch.compile the networks (after the first step).")
    compile_mode: str = option("default", choices=("default", "reduce-overhead", "max-autotune"),
                               help="torch.compile mode; reduce-overhead also captures CUDA graphs on a GPU.")
    channels_last: bool = option(True, negatable=True, help="NHWC networks and batches (faster convolutions "
                                                            "on tensor cores and oneDNN).")
    flip: bool = option(True, negatable=True, help="Random horizontal flips.")
    log_every: int = option(25, min=1, help="Steps between loss reads and log lines.")
    checkpoint_every: str | None = option("2m", parse=_budget_text,
                                          help="Checkpoint interval, in any budget unit.")
    eval_samples: int = option(10_000, min=0,
                               help="Generated images for FID, KID and precision/recall (0: skip them).")
    extractors: list[str] = option(flag_default="inception", parse=_names, metavar="NAMES",
                                   help="Feature extractors the sample metrics are computed on, comma-"
                                        "separated: inception (the default; its columns keep their names) "
                                        "and e.g. dinov2-vit-s-14 (columns fd_dinov2_s14, ...; see `bench "
                                        "list`).")
    extractor_weights: dict = option(flag="--extractor-weights", multiple=True, parse=parse_extractor_weights,
                                     metavar="NAME=PATH", envvar="BENCH_EXTRACTOR_WEIGHTS",
                                     help="An extractor's weights file (repeatable; env "
                                          "BENCH_EXTRACTOR_WEIGHTS as NAME=PATH,...; default: its official "
                                          "download).")
    metrics: list[str] = option(flag_default="all", parse=_names, metavar="NAMES",
                                help="The metrics each evaluation computes, comma-separated (see `bench "
                                     "list`), or all: every registered one, Inception Score only with FID "
                                     "weights that have a logits head.")
    eval_every: str | None = option(None, parse=_budget_text, help="Also evaluate during training at this "
                                                                   "interval (any budget unit, e.g. 2m).")
    eval_untrained: bool = option(False, help="Also evaluate every variant before its first step.")
    ema: float | None = option(None, metavar="DECAY",
                               help="Keep exponential moving averages of each variant's image networks "
                                    "(generator/decoder and the encoder reconstruct uses) with this decay, "
                                    "e.g. 0.999, and evaluate those. Default: off.")
    recon_samples: int | None = option(None, min=2,
                                       help="Held-out test images the encoder variants reconstruct for the "
                                            "reconstruction columns (default: --eval-samples, or 2,000 when "
                                            "that is 0).")
    eval_ref: str = option("train", help="Reference: a split of the dataset (train, test) or a folder / .npz "
                                         "of images.")
    ref_samples: int | None = option(None, min=2,
                                     help="Reference images (a fixed random subset; default: all of them).")
    fid_weights: str | None = option(None, path="file", envvar="BENCH_FID_WEIGHTS",
                                     help="FID Inception weights (env BENCH_FID_WEIGHTS; default: "
                                          "torch-fidelity's own download).")
    # None (a config built in code): $BENCH_INCEPTION_BACKEND, else auto; the flag reads the env itself
    inception_backend: str | None = option(None, flag_default="auto", choices=("auto", "torch", "openvino"),
                                           envvar="BENCH_INCEPTION_BACKEND",
                                           help="Who runs the Inception network: openvino (CPU only, about "
                                                "1.5x PyTorch there), torch, or auto: openvino on the CPU, "
                                                "torch on a GPU. Features agree to 1e-5 (env "
                                                "BENCH_INCEPTION_BACKEND).")
    options: dict = option(flag="--set", multiple=True, parse=_set_values, metavar="MODEL.FIELD=VALUE",
                           help="Override a variant's config field (repeatable).")  # model -> {field: value}
    plugin_files: list[str] = option(flag="--plugin", multiple=True, path="any", parse=_absolute_paths,
                                     help="Load a local plugin file (repeatable).")
    remeasure_peak: bool = option(False, help="Measure the device's matrix-product peak (MFU's denominator) "
                                              "again instead of reading it from the cache "
                                              "($BENCH_CACHE_DIR/peaks.json).")
    trackers: list[str] = option(flag="--tracker", flag_default="", parse=_names, metavar="NAMES",
                                 help="Also log every trial live to these trackers, comma-separated: "
                                      "tensorboard, mlflow or a plugin's (see `bench list`).")
    tracker_uri: str | None = option(None, metavar="URI", envvar="MLFLOW_TRACKING_URI",
                                     help="Where mlflow logs: a tracking server (http://HOST:PORT) or "
                                          "database (env MLFLOW_TRACKING_URI; default: sqlite:///RUN_DIR/"
                                          "mlflow.db in the run folder).")
    # what the --tracker trackers' start_run recorded (MLflow: the run's own MLflow run), for
    # --resume and the Ray workers; bench.run.start_trackers fills it in
    tracker_state: dict = option(default_factory=dict, via=("--tracker",))
    # bench.executors imports this module, so its registry is named, not imported
    executor: str = option("local", choices="bench.executors:EXECUTORS",
                           help="local: trials one after another here; ray: each trial is a Ray task "
                                "(pip install 'bench-gen[ray]').")
    # set by the executor's own flags (bench.executors.EXECUTOR_OPTIONS), validated by its Options
    executor_options: dict = option(default_factory=dict, via=())
    seeds: list[int] = option(default_factory=lambda: [0], via=("--seeds", "--seed"))  # run: S .. S+N-1

    @classmethod
    def default(cls, name: str):
        """The default of one field (the command line's defaults come from here)."""
        return field_default(cls.__dataclass_fields__[name])

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        """A config saved by any version of bench (see ``bench.store.manifest``)."""
        values = upgrade_config(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RunError(f"the saved run config has option(s) this bench does not know "
                           f"({', '.join(unknown)}); resume it with the bench version that wrote it")
        return cls(**values)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def train_settings(self) -> TrainSettings:
        from bench.trainer import TrainSettings

        try:
            return TrainSettings(
                budget=parse_budget(self.budget),
                batch_size=self.batch_size,
                log_every=self.log_every,
                checkpoint_every=parse_budget(self.checkpoint_every) if self.checkpoint_every else None,
                flip=self.flip,
                amp=bool(self.amp),
                compile=self.compile,
                compile_mode=self.compile_mode,
                channels_last=self.channels_last,
                eval_every=parse_budget(self.eval_every) if self.eval_every else None,
                ema=self.ema,
            )
        except BudgetError as exc:
            raise RunError(str(exc)) from None

    def eval_settings(self) -> EvalSettings:
        from bench.evaluation import EvalSettings

        return EvalSettings(samples=self.eval_samples, ref=self.eval_ref, ref_samples=self.ref_samples,
                            fid_weights=self.fid_weights, untrained=self.eval_untrained,
                            recon_samples=self.recon_samples, inception_backend=self.inception_backend,
                            metrics=tuple(self.metrics), extractors=tuple(self.extractors),
                            extractor_weights=dict(self.extractor_weights))
