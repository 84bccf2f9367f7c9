"""The run configuration: every option of a run, and every default, in one place.

The command line reads its defaults from ``RunConfig``; the trainer's and evaluator's
settings are derived from it (``train_settings``, ``eval_settings``) and have no defaults of
their own. An executor's own options (Ray's) are a dict in ``executor_options``, validated by
that executor's ``Options`` dataclass. The config is saved in the manifest and in every
checkpoint, so ``--resume`` and a Ray worker rebuild the same run from it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from bench.budget import BudgetError, parse_budget
from bench.store import upgrade_config

if TYPE_CHECKING:  # imported where used: the command line reads its defaults without torch
    from bench.evaluation import EvalSettings
    from bench.trainer import TrainSettings


class RunError(Exception):
    """Bad run configuration or a run that cannot go on; the message says what to change."""


@dataclasses.dataclass
class RunConfig:
    """Every option of a run; saved in the manifest so that ``--resume`` can rebuild it."""

    models: list[str] = dataclasses.field(default_factory=lambda: ["all"])
    dataset: str = "cifar10"  # cifar10 | synthetic[:N] | imagefolder:PATH
    budget: str = "10m"  # per trial: 90s, 10m, 5000steps, 2Mimg, 3PFLOP
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    data_dir: str | None = None  # else $BENCH_DATA_DIR, else ./data
    resolution: int | None = None  # square resize (default: the dataset's own)
    subset: int | None = None  # train on a fixed random subset of N images
    batch_size: int = 128
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool | None = None  # bf16 autocast; None: on where trials train on CUDA
    compile: bool = False  # torch.compile the networks after the first step
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune
    channels_last: bool = True  # NHWC networks and batches
    flip: bool = True  # random horizontal flips
    log_every: int = 25  # steps between loss reads (the only host syncs)
    checkpoint_every: str | None = "2m"  # in any budget unit
    eval_every: str | None = None  # evaluate during training too, e.g. "2m" or "1000steps"
    ema: float | None = None  # decay of the image networks' moving averages; evaluations use them
    options: dict = dataclasses.field(default_factory=dict)  # model -> {field: value} (--set)
    plugin_files: list[str] = dataclasses.field(default_factory=list)
    download: bool = True  # download the official CIFAR-10 archive if it is missing
    eval_samples: int = 10_000  # generated images for the sample metrics; 0 skips them
    eval_ref: str = "train"  # a split of the dataset, or a folder / .npz of images
    ref_samples: int | None = None  # reference images (None: the whole split)
    fid_weights: str | None = None  # else $BENCH_FID_WEIGHTS, else torch-fidelity's download
    eval_untrained: bool = False  # also evaluate before the first step
    recon_samples: int | None = None  # held-out images reconstructed (None: as eval_samples)
    inception_backend: str | None = None  # auto / torch / openvino (None: $BENCH_INCEPTION_BACKEND, auto)
    remeasure_peak: bool = False  # measure the device's matrix-product peak again (else cached)
    executor: str = "local"  # a name in bench.executors.EXECUTORS
    executor_options: dict = dataclasses.field(default_factory=dict)  # that executor's Options

    @classmethod
    def default(cls, name: str):
        """The default of one field (the command line's defaults come from here)."""
        field = cls.__dataclass_fields__[name]
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        return field.default

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

        return EvalSettings(self.eval_samples, self.eval_ref, self.ref_samples, self.fid_weights,
                            self.eval_untrained, self.recon_samples, self.inception_backend)
