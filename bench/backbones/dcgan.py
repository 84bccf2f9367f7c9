"""The ``dcgan`` backbone: today's DCGAN networks, the one every built-in variant was written on.

* :class:`Decoder` - DCGAN generator (Radford et al. 2015): z -> 4x4 -> ... -> HxW
  with stride-2 transposed convolutions, batch norm, ReLU and a tanh output.
* :class:`ConvEncoder` - stride-2 convolutions with LeakyReLU down to 4x4, then a
  4x4 convolution to ``out_dim`` values; batch norm, spectral norm or no norm.
  It serves as discriminator (``out_dim=1``) and as Gaussian encoder
  (``out_dim=2*latent``).

Channels follow the PyTorch DCGAN example (ngf = ndf = width): the 4x4 stage has
``8 * width`` channels and each doubling of resolution halves them, so at 64x64
the networks are exactly that example's, and at 32x32 they drop its outermost
stage (512 -> 256 -> 128 -> RGB for width 64): 3,677,955 parameters in G and 2,637,441 in D
(out_dim 1) at width 64, latent 128, 32x32.

Resolution must be a power of two >= 8; each doubling adds one stage. The modules, their
parameter names and their initialisation are those of bench 0.2's ``bench.nets``, so its
checkpoints load and its seeded runs give the same numbers (``tests/backbones/test_dcgan.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from bench.backbones.base import Backbone

NORMS = ("batch", "spectral", "none")


def num_stages(resolution: int) -> int:
    """Up/down-sampling stages between 4x4 and ``resolution``."""
    stages = math.log2(resolution) - 2
    if resolution < 8 or not stages.is_integer():
        raise ValueError(
            f"resolution {resolution} is not supported: use a power of two >= 8 "
            "(resize the dataset with --resolution)"
        )
    return int(stages)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Decoder(nn.Module):
    """DCGAN generator / decoder: ``[B, latent] -> [B, 3, R, R]`` in [-1, 1]."""

    def __init__(self, resolution: int = 32, latent: int = 128, width: int = 64, channels: int = 3):
        super().__init__()
        stages = num_stages(resolution)
        ch = 8 * width
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent = latent
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class ConvEncoder(nn.Module):
    """Convolutional encoder / discriminator: ``[B, 3, R, R] -> [B, out_dim]``.

    ``features(x)`` returns the last hidden activation (``[B, C, 4, 4]``), the
    layer VAE/GAN measures reconstruction in; ``head`` maps it to ``[B, out_dim, 1, 1]``.
    """

    def __init__(
        self,
        resolution: int = 32,
        out_dim: int = 1,
        width: int = 64,
        norm: str = "batch",
        channels: int = 3,
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        stages = num_stages(resolution)

        def conv(cin, cout, k, s, p, bias):
            layer = nn.Conv2d(cin, cout, k, s, p, bias=bias or norm != "batch")
            return spectral_norm(layer) if norm == "spectral" else layer

        # No norm on the first layer (DCGAN); batch norm on the later ones.
        ch = 8 * width // 2 ** (stages - 1)
        layers: list[nn.Module] = [conv(channels, ch, 4, 2, 1, True), nn.LeakyReLU(0.2, True)]
        for _ in range(stages - 1):
            layers.append(conv(ch, ch * 2, 4, 2, 1, False))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.head = conv(ch, out_dim, 4, 1, 0, True)
        self.feature_channels = ch
        dcgan_init(self)

    def features(self, x: torch.Tensor, between=None) -> torch.Tensor:
        """The last hidden activation; ``between(h)`` is applied to the input of every
        convolution after the first."""
        if between is None:
            return self.body(x)
        for i, layer in enumerate(self.body):
            if i > 0 and isinstance(layer, nn.Conv2d):
                x = between(x)
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten(1)


class DCGAN(Backbone):
    """The DCGAN backbone (``Decoder`` and ``ConvEncoder``)."""

    norms = NORMS
    resolutions = "powers of two >= 8 (8, 16, 32, 64, ...)"

    def supports(self, resolution: int) -> bool:
        return resolution >= 8 and resolution & (resolution - 1) == 0

    def decoder(self, resolution: int, latent: int, width: int) -> Decoder:
        return Decoder(resolution, latent, width)

    def encoder(self, resolution: int, out_dim: int, width: int, norm: str = "batch") -> ConvEncoder:
        return ConvEncoder(resolution, out_dim, width, norm=norm)

