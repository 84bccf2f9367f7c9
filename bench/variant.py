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
import json
import types
import typing
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
    # The networks whose weights the evaluated images come from: the generator/decoder, and for
    # encoder variants the encoder ``reconstruct`` uses. ``--ema`` keeps averages of exactly these.
    image_networks: ClassVar[tuple[str, ...]] = ()
    # Config field -> distribution (bench.space) that `bench sweep` draws from; the fields
    # left out stay at their defaults. Empty: the variant cannot be swept without --space-override.
    search_space: ClassVar[dict] = {}

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


def config_from_dict(variant_cls: type[Variant], values: dict[str, Any] | None):
    """Build a variant's Config from plain values (``--set`` strings, or the JSON values of a
    manifest), each converted to its field's type; an unknown field or a value that is not of
    its field's type raises ValueError naming the field, its type and the value."""
    values = dict(values or {})
    config_cls = variant_cls.Config
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {variant_cls.__name__}; "
            f"it accepts: {', '.join(sorted(fields)) or 'none'}"
        )
    hints = typing.get_type_hints(config_cls)
    converted = {name: convert_value(name, hints.get(name, Any), value) for name, value in values.items()}
    return config_cls(**converted)


def resolved_config(variant_cls: type[Variant], values: dict[str, Any] | None) -> dict[str, Any]:
    """Every field of the variant's Config, defaults and overrides, as plain values."""
    return dataclasses.asdict(config_from_dict(variant_cls, values))


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def type_text(kind) -> str:
    """How a field's type is named in an error: ``a float``, ``one of 'a', 'b'``..."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    if kind is type(None):
        return "none"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if kind in names:
        return names[kind]
    return getattr(kind, "__name__", str(kind))


class OptionValueError(ValueError):
    """A config value that is not of its field's type; the message starts with ``field=value``."""


def convert_value(field: str, kind, value):
    """``value`` as the type ``kind`` of ``field``: strings are parsed, numbers widened (int to
    float); anything else raises ValueError saying what the field takes."""
    converted = _convert(kind, value)
    if converted is _INVALID:
        raise OptionValueError(f"{field}={value}: {field} takes {type_text(kind)}, and {value!r} is not that")
    return converted


_INVALID = object()


def _convert(kind, value):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str)
                                                     and value.strip().lower() in ("none", "null"))):
            return None
        for arg in args:
            if arg is not type(None) and (out := _convert(arg, value)) is not _INVALID:
                return out
        return _INVALID
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        return _INVALID
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        return _INVALID
    if kind is int:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    if kind is float:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                return _INVALID
            return out
        return _INVALID
    if kind is str:
        return value if isinstance(value, str) else _INVALID
    if origin in (tuple, list):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return _INVALID
        if not isinstance(value, (list, tuple)):
            return _INVALID
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return _INVALID
            items = [_convert(a, v) for a, v in zip(args, value, strict=True)]
        else:
            items = [_convert(args[0] if args else Any, v) for v in value]
        return _INVALID if any(i is _INVALID for i in items) else origin(items)
    return value  # a type bench does not know: taken as given
