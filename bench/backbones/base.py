"""The backbone contract (``bench.backbones`` says what a backbone is): the base class, the config
fields every variant on a backbone shares, and the registration check. Standard library only."""

from __future__ import annotations

import abc
import dataclasses
import inspect
from typing import Any, ClassVar

DEFAULT_BACKBONE = "dcgan"
NORMS = ("batch", "spectral", "none", "layer")  # every normalisation a backbone may offer


@dataclasses.dataclass
class BackboneConfig:
    """The fields every variant on a backbone shares (defaults: DCGAN, width 64, latent 128)."""

    width: int = 64  # channels scale with it (DCGAN: 8*width at 4x4; ResNet: 4*width in G, 2*width in D)
    latent: int = 128  # size of z
    backbone: str = DEFAULT_BACKBONE  # a registered backbone (`bench list`); --backbone sets it for a run


class Backbone(abc.ABC):
    """A family of image networks; registered as a class, made with no arguments."""

    norms: ClassVar[tuple[str, ...]] = ("batch", "spectral", "none")  # encoder(norm=...) accepts these
    has_features: ClassVar[bool] = True  # the encoder has features(x, between) and head(h)
    resolutions: ClassVar[str] = ""  # the image sizes it supports, in words (for errors and `bench list`)

    @abc.abstractmethod
    def supports(self, resolution: int) -> bool:
        """Whether it builds networks for ``resolution`` x ``resolution`` images."""

    @abc.abstractmethod
    def decoder(self, resolution: int, latent: int, width: int):
        """The generator / decoder: ``[B, latent] -> [B, 3, R, R]`` in [-1, 1]."""

    @abc.abstractmethod
    def encoder(self, resolution: int, out_dim: int, width: int, norm: str = "batch"):
        """The discriminator / encoder: ``[B, 3, R, R] -> [B, out_dim]``."""

    def check(self, name: str, resolution: int, norm: str | None = None) -> None:
        """ValueError saying what this backbone supports, unless it builds ``resolution`` (with
        ``norm``)."""
        if not self.supports(resolution):
            raise ValueError(f"backbone {name!r} does not support {resolution}x{resolution} images; it "
                             f"supports {self.resolutions} (resize with --resolution)")
        if norm is not None and norm not in self.norms:
            raise ValueError(f"backbone {name!r} has no {norm!r} normalisation; it has "
                             f"{', '.join(self.norms)}")


def check_backbone_class(obj: Any) -> None:
    """Raise ValueError unless ``obj`` is a concrete Backbone subclass made without arguments."""
    if not (inspect.isclass(obj) and issubclass(obj, Backbone)):
        raise ValueError(f"{obj!r} is not a subclass of bench.Backbone")
    if inspect.isabstract(obj):
        raise ValueError(f"{obj.__name__} does not implement {', '.join(sorted(obj.__abstractmethods__))}")
    unknown = [n for n in obj.norms if n not in NORMS]
    if unknown:
        raise ValueError(f"{obj.__name__}.norms has {unknown}; a backbone's norms are among {NORMS}")


def takes_backbone(variant_cls) -> bool:
    """Whether the variant builds on a registered backbone (its Config has a ``backbone`` field)."""
    return any(f.name == "backbone" for f in dataclasses.fields(variant_cls.Config))
