"""The fixed-budget training loop. It knows nothing about model families.

It feeds batches to ``variant.train_step`` until the budget is used, keeps the
step's losses on the device (summed there and read only at logging intervals,
so a GPU is never stalled per step), logs one JSON line per interval,
checkpoints atomically and stops a trial whose loss is NaN or infinite.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.budget import Budget
from bench.checkpoint import load_checkpoint, save_checkpoint
from bench.data.batches import DeviceBatches
from bench.device import TrainClock
from bench.ema import GeneratorEMA
from bench.flops import CountFlops
from bench.store import CHECKPOINT_FILE, LOG_FILE, append_jsonl, read_jsonl, write_text
from bench.variant import Variant


class Diverged(Exception):
    """A loss became NaN or infinite."""

    def __init__(self, step: int, losses: dict):
        self.step, self.losses = step, losses
        bad = ", ".join(k for k, v in losses.items() if not math.isfinite(v)) or "a loss"
        super().__init__(f"{bad} became NaN or infinite at step {step}")


@dataclasses.dataclass
class TrainSettings:
    """How a trial trains; built from the run config (``RunConfig.train_settings``)."""

    budget: Budget
    batch_size: int
    log_every: int  # steps between reads of the losses (the only host syncs)
    checkpoint_every: Budget | None  # an interval in any budget unit
    flip: bool  # random horizontal flips
    amp: bool  # bf16 autocast (CUDA)
    compile: bool  # torch.compile the networks after the first step
    compile_mode: str  # torch.compile mode; "reduce-overhead" adds CUDA graphs
    channels_last: bool  # NHWC networks and batches (faster on tensor cores and oneDNN)
    eval_every: Budget | None  # evaluate during training (at the next logging interval)
    ema: float | None  # decay of the image networks' moving averages (bench.ema), None: off


@dataclasses.dataclass
class Usage:
    """How much of the budget a trial has used; stored in every checkpoint."""

    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    flops: float = 0.0
    flops_per_step: float | None = None
    interval_rates: list = dataclasses.field(default_factory=list)  # images/s per log interval

    def as_budget_usage(self) -> dict:
        return {"steps": self.steps, "images": self.images, "seconds": self.seconds, "flops": self.flops}

    def steady_images_per_second(self) -> float:
        """Median over logging intervals, the first one (warm-up, FLOP counting) excluded."""
        rates = self.interval_rates[1:] or self.interval_rates
        if rates:
            return statistics.median(rates)
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def apply_settings(variant: Variant, settings: TrainSettings) -> Variant:
    """What the trainer changes on a variant before its first step (the bare-loop
    benchmark applies the same, so that the two compare like with like)."""
    variant.amp = settings.amp
    if settings.channels_last:
        variant.to_channels_last()
    return variant


def make_batches(images: torch.Tensor, settings: TrainSettings, device, seed: int) -> DeviceBatches:
    return DeviceBatches(images, settings.batch_size, device, flip=settings.flip, seed=seed,
                         channels_last=settings.channels_last)


class Trainer:
    def __init__(self, variant: Variant, batches: DeviceBatches, settings: TrainSettings,
                 trial_dir: Path, label: str = "", progress: bool = True, on_eval=None,
                 checkpoint_meta: dict | None = None, on_log=None):
        self.variant = variant
        self.batches = batches
        self.settings = settings
        self.trial_dir = Path(trial_dir)
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.progress = progress
        self.on_eval = on_eval  # called with the Usage at each --eval-every point, clock paused
        # called at each logging interval, clock paused, with the step and the interval's mean
        # losses and images/s (the trackers': bench.trackers)
        self.on_log = on_log
        # saved in every checkpoint beside the state (the run config, the variant's resolved
        # config), so a checkpoint says what produced it
        self.checkpoint_meta = dict(checkpoint_meta or {})
        self.usage = Usage()
        apply_settings(variant, settings)
        batches.memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        # after apply_settings, so that the averages share the live networks' memory format
        self.ema = GeneratorEMA(variant, settings.ema) if settings.ema else None
        self._compiled = False

    # -- checkpoints -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.trial_dir / CHECKPOINT_FILE

    def save_checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_path, {
            "variant": self.variant.state_dict(),
            "batches": self.batches.state_dict(),
            "usage": dataclasses.asdict(self.usage),
            "torch_rng": torch.get_rng_state(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            **self.checkpoint_meta,
        })

    def load_checkpoint(self) -> bool:
        """Resume from the trial's checkpoint if there is one (``CheckpointError`` if it is damaged)."""
        log_path = self.trial_dir / LOG_FILE
        if not self.checkpoint_path.exists():
            if log_path.exists():  # rows of an attempt that left no checkpoint: it starts again
                write_text(log_path, "")
            return False
        state = load_checkpoint(self.checkpoint_path)
        self.variant.load_state_dict(state["variant"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.batches.load_state_dict(state["batches"])
        self.usage = Usage(**state["usage"])
        torch.set_rng_state(state["torch_rng"])
        # Log rows written after this checkpoint will be written again: drop them.
        kept = [r for r in read_jsonl(log_path) if r.get("step", 0) <= self.usage.steps]
        write_text(log_path, "".join(json.dumps(r) + "\n" for r in kept))
        return True

    # -- the loop ----------------------------------------------------------------------
    def _first_step(self, batch):
        """Run a real step under the FLOP counter: training FLOPs per step, forward and backward."""
        with CountFlops() as counter:
            losses = self.variant.train_step(batch)
        self.usage.flops_per_step = float(counter.total)
        return losses

    def _maybe_compile(self) -> None:
        if self.settings.compile and not self._compiled:
            for net in self.variant.networks.values():
                net.compile(mode=self.settings.compile_mode)
            self._compiled = True

    def run(self) -> Usage:
        s, usage, budget = self.settings, self.usage, self.settings.budget
        device = self.variant.device
        self.variant.train()
        sums: dict[str, torch.Tensor] = {}
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        since_log, images_at_log = 0, usage.images
        next_checkpoint = self._next(s.checkpoint_every)
        next_eval = self._next(s.eval_every) if self.on_eval is not None else None
        bar = tqdm(total=budget.amount, desc=self.label, disable=not self.progress or None,
                   unit=budget.kind, unit_scale=True, leave=True, dynamic_ncols=True)
        bar.update(min(budget.used(usage.as_budget_usage()), budget.amount))
        log_path = self.trial_dir / LOG_FILE
        clock = TrainClock(device, already=usage.seconds)
        clock.start()
        seconds_at_log = usage.seconds
        try:
            while not budget.exhausted(usage.as_budget_usage()):
                batch = next(self.batches)
                if usage.flops_per_step is None:
                    losses = self._first_step(batch)
                else:
                    self._maybe_compile()
                    losses = self.variant.train_step(batch)
                if self.ema is not None:
                    self.ema.update(self.variant)
                usage.steps += 1
                for name, value in losses.items():
                    value = value.detach().float()
                    sums[name] = sums[name] + value if name in sums else value
                    bad = ~torch.isfinite(value) & (first_bad < 0)
                    first_bad = torch.where(bad, usage.steps, first_bad)
                since_log += 1
                usage.images += batch.shape[0]
                usage.flops += usage.flops_per_step
                usage.seconds = clock.elapsed
                done = budget.exhausted(usage.as_budget_usage())
                if since_log < s.log_every and not done:
                    continue
                # Logging interval: the one place the loop waits for the device.
                usage.seconds = clock.pause()
                means = {k: float(v) / since_log for k, v in sums.items()}
                if int(first_bad) >= 0:
                    raise Diverged(int(first_bad), means)
                interval = usage.seconds - seconds_at_log
                if interval > 0:
                    usage.interval_rates.append((usage.images - images_at_log) / interval)
                append_jsonl(log_path, {
                    "step": usage.steps, "images": usage.images, "seconds": usage.seconds,
                    "flops": usage.flops, "budget_used": budget.fraction(usage.as_budget_usage()),
                    **means,
                })
                if self.on_log is not None:
                    rate = {"images_per_s": usage.interval_rates[-1]} if interval > 0 else {}
                    self.on_log(usage.steps, {**means, **rate})
                bar.update(budget.used(usage.as_budget_usage()) - bar.n)
                bar.set_postfix({"step": usage.steps, **{k: f"{v:.3g}" for k, v in means.items()}})
                if next_checkpoint is not None and self._due(next_checkpoint):
                    self.save_checkpoint()
                    next_checkpoint = self._next(s.checkpoint_every)
                if next_eval is not None and self._due(next_eval) and not done:
                    self.on_eval(usage)  # the final evaluation is the runner's
                    next_eval = self._next(s.eval_every)
                sums, since_log = {}, 0
                images_at_log, seconds_at_log = usage.images, usage.seconds
                clock.start()
        finally:
            usage.seconds = clock.pause()
            bar.close()
        self.save_checkpoint()
        return usage

    def _next(self, interval: Budget | None):
        if interval is None:
            return None
        return interval.kind, interval.used(self.usage.as_budget_usage()) + interval.amount

    def _due(self, target) -> bool:
        kind, at = target
        return self.usage.as_budget_usage()[kind] >= at
