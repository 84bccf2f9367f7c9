"""The variant contract: the only thing the trainer knows about a model.

Image format at this boundary: ``float32`` in ``[-1, 1]``, shape ``[B, 3, H, W]``,
on the variant's device. ``train_step`` receives batches in this format and
``sample`` / ``reconstruct`` return it.

A variant subclasses :class:`Variant`, sets ``family`` and ``Config`` (a
dataclass whose every field has a default) and implements ``build``,
``train_step`` and ``sample``. Optional, where the variant has them: ``reconstruct``
(encoder variants: the reconstruction columns), ``decode`` and ``encode`` (the latent
pictures, ``bench.latents``). Everything a checkpoint needs (networks, optimizers, the
variant's random generator) is covered by the base ``state_dict``.

A variant whose Config subclasses ``bench.BackboneConfig`` builds its image networks on the
backbone the config names (``build_decoder``, ``build_encoder``; ``bench.backbones``), so one
``--backbone`` moves every family to the same networks. How a config is made from ``--set`` text
is ``bench.variant_config``'s.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from bench.backbones import Backbone, get_backbone

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
    # The networks whose weights the evaluated images come from: the generator/decoder, and for
    # encoder variants the encoder ``reconstruct`` uses. ``--ema`` keeps averages of exactly these.
    image_networks: ClassVar[tuple[str, ...]] = ()
    # Config field -> distribution (bench.space) that `bench sweep` draws from; the fields
    # left out stay at their defaults. Empty: the variant cannot be swept without --space-override.
    search_space: ClassVar[dict] = {}
    # Backbone name -> the Config defaults its paper gives on that backbone (e.g. SNGAN's Adam
    # betas on resnet); fields it leaves out keep the Config's defaults, carried over.
    backbone_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    # Preset name -> Config field values, chosen by the Config's ``preset`` field (a variant with
    # a second published setting, e.g. bigan's "ali"); values set explicitly win over it.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Whether the variant reads its encoder's ``features(x)`` (VAE/GAN's reconstruction layer,
    # BiGAN's joint discriminator); a run refuses a backbone without them.
    needs_features: ClassVar[bool] = False

    # Optional methods, None where the variant has no such thing:
    # reconstruct(x) -> x_hat: images [n, 3, H, W] in [-1, 1] through the encoder and back.
    reconstruct: ClassVar[Callable | None] = None
    # decode(z) -> images for latents [n, config.latent]; encode(x) -> latents [n, latent] (or a
    # tuple whose first item they are). bench.latents draws the interpolation pictures with them.
    decode: ClassVar[Callable | None] = None
    encode: ClassVar[Callable | None] = None

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

    # -- provided ---------------------------------------------------------------------
    @classmethod
    def has_encoder(cls) -> bool:
        return callable(getattr(cls, "reconstruct", None))

    @property
    def backbone(self) -> Backbone:
        """The backbone ``config.backbone`` names (a Config without that field has none)."""
        name = getattr(self.config, "backbone", None)
        if name is None:
            raise TypeError(f"{type(self).__name__}.Config has no backbone field: subclass "
                            "bench.BackboneConfig to build on the registered backbones")
        return get_backbone(name)

    def build_decoder(self) -> nn.Module:
        """The backbone's generator / decoder for these images, ``config.latent`` and ``width``."""
        cfg, resolution, backbone = self.config, self.image_shape[-1], self.backbone
        backbone.check(cfg.backbone, resolution)
        return backbone.decoder(resolution, cfg.latent, cfg.width)

    def build_encoder(self, out_dim: int, norm: str = "batch") -> nn.Module:
        """The backbone's discriminator / encoder for these images: ``out_dim`` outputs, ``norm``."""
        cfg, resolution, backbone = self.config, self.image_shape[-1], self.backbone
        backbone.check(cfg.backbone, resolution, norm)
        return backbone.encoder(resolution, out_dim, cfg.width, norm)

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

    def adam_per_network(self, names=None) -> dict[str, torch.optim.Adam]:
        """One ``adam`` per network (or per network in ``names``, in that order), each with the
        config's ``lr`` and ``(beta1, beta2)``: the optimizers of a variant whose networks all
        train alike."""
        cfg = self.config
        return {name: self.adam(self.networks[name].parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
                for name in (names if names is not None else self.networks)}

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
