"""The variant contract: the only thing the trainer knows about a model.

Image format at this boundary: ``float32`` in ``[-1, 1]``, shape ``[B, 3, H, W]``,
on the variant's device. ``train_step`` receives batches in this format and
``sample`` / ``reconstruct`` return it.

A variant subclasses :class:`Variant`, sets ``family`` and ``Config`` (a
dataclass whose every field has a default) and implements ``build``,
``train_step`` and ``sample``; variants with an encoder also define
``reconstruct``. Everything a checkpoint needs (networks, optimizers, the
variant's random generator) is covered by the base ``state_dict``.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

FAMILIES = ("gan", "vae", "hybrid")


@dataclasses.dataclass
class NoConfig:
    """Config for a variant without options."""


def fused_adam(device: torch.device) -> bool | None:
    """``fused=`` for Adam on ``device``: True on CUDA; None (torch's choice) elsewhere."""
    return True if device.type == "cuda" else None


class Variant(abc.ABC):
    """Base class of every model variant.

    Subclasses fill ``self.networks`` and ``self.optimizers`` in ``build()``;
    they draw all randomness (latent noise, reparameterisation) from
    ``self.generator`` so that a checkpoint resumes exactly.
    """

    family: ClassVar[str] = ""  # "gan" | "vae" | "hybrid", used by reports
    Config: ClassVar[type] = NoConfig

    def __init__(self, image_shape, config=None, device="cpu", seed: int = 0):
        self.image_shape = tuple(image_shape)
        self.config = config if config is not None else self.Config()
        self.device = torch.device(device)
        self.seed = seed
        self.amp = False  # bf16 autocast, switched on by the trainer on CUDA
        torch.manual_seed(seed)  # parameter initialisation
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.build()
        if not self.networks or not self.optimizers:
            raise TypeError(
                f"{type(self).__name__}.build() must fill self.networks and self.optimizers"
            )
        for net in self.networks.values():
            net.to(self.device)

    # -- what a variant implements -------------------------------------------------
    @abc.abstractmethod
    def build(self) -> None:
        """Create ``self.networks`` and ``self.optimizers`` from the image shape and config."""

    @abc.abstractmethod
    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run every update phase for one batch.

        Returns loss name -> detached 0-d float tensor. They stay on the device:
        the trainer accumulates them there and reads them only at logging
        intervals, so a step never waits for the GPU.
        """

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` generated images, float in [-1, 1], ``[n, 3, H, W]``."""

    # ``reconstruct(x) -> x_hat`` is defined only by variants with an encoder.

    # -- provided ---------------------------------------------------------------------
    @classmethod
    def has_encoder(cls) -> bool:
        return callable(getattr(cls, "reconstruct", None))

    def latent(self, n: int, dim: int, generator: torch.Generator | None = None):
        """Standard normal draws from the variant's own generator."""
        return torch.randn(n, dim, device=self.device, generator=generator or self.generator)

    def autocast(self):
        """Context for forward passes: bf16 autocast when enabled, else nothing."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @torch.no_grad()
    def eval_in_chunks(self, names, fn, n: int, chunk: int = 500) -> torch.Tensor:
        """``torch.cat([fn(start, size) ...])`` over ``n`` items in chunks, with the named
        networks in eval mode (batch norm uses running statistics) and their modes restored."""
        nets = [self.networks[k] for k in names]
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            return torch.cat([fn(i, min(chunk, n - i)) for i in range(0, n, chunk)])
        finally:
            for net, mode in zip(nets, modes, strict=True):
                net.train(mode)

    def adam(self, params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
        """Adam with the fused kernel (one launch for all parameters) on CUDA, where per-
        parameter launches would cost more than the update itself; torch's default elsewhere."""
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused_adam(self.device))

    def to_channels_last(self) -> Variant:
        """Store every network's convolution weights as NHWC (channels_last): the layout the
        GPU's tensor cores and the CPU's oneDNN kernels run fastest on. Feed it
        channels_last batches (``DeviceBatches(channels_last=True)``)."""
        for net in self.networks.values():
            net.to(memory_format=torch.channels_last)
        return self

    def train(self, mode: bool = True) -> Variant:
        for net in self.networks.values():
            net.train(mode)
        return self

    def eval(self) -> Variant:
        return self.train(False)

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: v.state_dict() for k, v in self.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"].cpu())


def config_from_dict(variant_cls: type[Variant], values: dict[str, Any] | None):
    """Build a variant's Config from plain values, rejecting unknown keys by name."""
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(variant_cls.Config)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {variant_cls.__name__}; "
            f"it accepts: {', '.join(sorted(fields)) or 'none'}"
        )
    return variant_cls.Config(**values)
