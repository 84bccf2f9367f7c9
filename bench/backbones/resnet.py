"""The ``resnet`` backbone: the CIFAR ResNet of SNGAN (Miyato et al. 2018, arXiv:1802.05957,
appendix B.4, Table 4), as the authors' Chainer code (pfnet-research/sngan_projection),
Mimicry's ``sngan_32`` and StudioGAN's ResNet configs build it.

Generator / decoder (``ResNetDecoder``), ``ngf = 4 * width`` (256 at width 64, the paper's):
z -> linear to ``ngf x 4 x 4`` -> one up-sampling residual block per doubling (3 to 32x32, 4 to
64x64) -> batch norm, ReLU, 3x3 convolution to RGB, tanh. Each up block is pre-activation:
BN, ReLU, 2x nearest up-sampling, 3x3 conv, BN, ReLU, 3x3 conv, plus a shortcut of up-sampling
and a 1x1 conv.

Discriminator / encoder (``ResNetEncoder``), ``ndf = 2 * width`` (128 at width 64, the
paper's): an optimised first block (3x3 conv, ReLU, 3x3 conv, 2x2 average pooling; shortcut:
pooling then 1x1 conv), down-sampling blocks to 8x8 (one at 32x32, two at 64x64), two blocks
without down-sampling and identity shortcuts, ReLU, global pooling, linear to ``out_dim``.
``features(x)`` is the ReLU output before pooling, ``[B, ndf, 8, 8]``. The pooling is SNGAN's
*sum* under spectral norm, and otherwise the *mean*, as WGAN-GP's ResNet critic pools: without
spectral norm's bound, a sum over the 64 positions starts the outputs about 60x larger (output
std at initialisation, width 64: 60 with batch norm, 15 with none; 0.9 and 0.2 with the mean),
which puts a VAE's log-variance against its clamp from the first step.

Normalisation of the encoder (``norm``): ``spectral`` wraps every convolution and the linear
layer in spectral norm (SNGAN's D); ``none`` (WGAN-GP's ResNet critic, gan_cifar_resnet.py);
``batch`` and ``layer`` (a per-sample layer norm over C, H, W: ``GroupNorm(1, C)``, what WGAN-GP
uses where a critic needs a norm) go before each ReLU inside a residual branch, as the
generator's batch norm does; the encoders of the VAEs use ``batch``, as on ``dcgan``.

Where the choices come from: block layout, channel counts, global sum pooling and the
Xavier-uniform initialisation (gain sqrt(2) inside residual branches, 1 for shortcuts, the
first linear, the RGB conv and the last linear) follow the Chainer code and Mimicry; biases
start at zero (Chainer's default; Mimicry keeps PyTorch's). Up-sampling is nearest-neighbour as
in the Chainer code and StudioGAN (Mimicry interpolates bilinearly). 64x64 adds one block to each
network, as Table 4 notes for larger images.

Parameters at width 64, latent 128, 32x32: G 4,276,739 and D 1,053,825 (out_dim 1), the sizes
Mimicry reports for its SNGAN (4.3M, 1.1M); ``tests/backbones/test_resnet.py`` checks them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from bench.backbones.base import Backbone

RESOLUTIONS = (32, 64)
_GAIN_RESIDUAL, _GAIN_LINEAR = math.sqrt(2.0), 1.0


def _init(layer: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _up_blocks(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"the resnet backbone builds {' and '.join(f'{r}x{r}' for r in RESOLUTIONS)} "
                         f"images, not {resolution}x{resolution} (resize with --resolution)")
    return int(math.log2(resolution)) - 2


class UpBlock(nn.Module):
    """The generator's residual block: ``[B, cin, H, W] -> [B, cout, 2H, 2W]``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.b1, self.b2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.c1 = _init(nn.Conv2d(cin, cout, 3, 1, 1), _GAIN_RESIDUAL)
        self.c2 = _init(nn.Conv2d(cout, cout, 3, 1, 1), _GAIN_RESIDUAL)
        self.c_sc = _init(nn.Conv2d(cin, cout, 1, 1, 0), _GAIN_LINEAR)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResNetDecoder(nn.Module):
    """SNGAN's generator: ``[B, latent] -> [B, 3, R, R]`` in [-1, 1]."""

    def __init__(self, resolution: int = 32, latent: int = 128, width: int = 64, channels: int = 3):
        super().__init__()
        blocks, ngf = _up_blocks(resolution), 4 * width
        self.ngf = ngf
        self.l1 = _init(nn.Linear(latent, 4 * 4 * ngf), _GAIN_LINEAR)
        self.blocks = nn.Sequential(*[UpBlock(ngf, ngf) for _ in range(blocks)])
        self.b_out = nn.BatchNorm2d(ngf)
        self.c_out = _init(nn.Conv2d(ngf, channels, 3, 1, 1), _GAIN_LINEAR)
        self.latent = latent

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.l1(z).view(z.shape[0], self.ngf, 4, 4))
        return torch.tanh(self.c_out(F.relu(self.b_out(h))))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class DownBlock(nn.Module):
    """The discriminator's residual block: ``[B, cin, H, W] -> [B, cout, H/2 or H, ...]``.
    ``first``: the optimised first block (no activation before its first convolution, pooling
    before its shortcut's convolution)."""

    def __init__(self, cin: int, cout: int, down: bool, norm: str, first: bool = False):
        super().__init__()
        wrap = spectral_norm if norm == "spectral" else (lambda layer: layer)
        self.first, self.down = first, down
        self.n1 = nn.Identity() if first else _norm(norm, cin)
        self.c1 = wrap(_init(nn.Conv2d(cin, cout, 3, 1, 1), _GAIN_RESIDUAL))
        self.n2 = _norm(norm, cout)
        self.c2 = wrap(_init(nn.Conv2d(cout, cout, 3, 1, 1), _GAIN_RESIDUAL))
        learned = first or down or cin != cout
        self.c_sc = wrap(_init(nn.Conv2d(cin, cout, 1, 1, 0), _GAIN_LINEAR)) if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(self.n1(x))
        h = self.c2(F.relu(self.n2(self.c1(h))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.first:  # pooling first: the 1x1 convolution runs on a quarter of the pixels
            return h + self.c_sc(F.avg_pool2d(x, 2))
        shortcut = x if self.c_sc is None else self.c_sc(x)
        return h + (F.avg_pool2d(shortcut, 2) if self.down else shortcut)


class ResNetEncoder(nn.Module):
    """SNGAN's discriminator: ``[B, 3, R, R] -> [B, out_dim]``; ``features(x)`` is the last hidden
    activation ``[B, 2*width, 8, 8]``, ``head`` its global pooling and linear layer."""

    def __init__(self, resolution: int = 32, out_dim: int = 1, width: int = 64, norm: str = "spectral",
                 channels: int = 3):
        super().__init__()
        if norm not in ResNet.norms:
            raise ValueError(f"norm must be one of {ResNet.norms}, got {norm!r}")
        down, ndf = _up_blocks(resolution) - 2, 2 * width  # to 8x8 after the first block
        blocks = [DownBlock(channels, ndf, True, norm, first=True)]
        blocks += [DownBlock(ndf, ndf, True, norm) for _ in range(down)]
        blocks += [DownBlock(ndf, ndf, False, norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        linear = _init(nn.Linear(ndf, out_dim), _GAIN_LINEAR)
        self.linear = spectral_norm(linear) if norm == "spectral" else linear
        self.sum_pool = norm == "spectral"
        self.feature_channels = ndf

    def features(self, x: torch.Tensor, between=None) -> torch.Tensor:
        """The ReLU after the last block; ``between(h)`` goes before every block but the first."""
        for i, block in enumerate(self.blocks):
            x = block(between(x) if between is not None and i > 0 else x)
        return F.relu(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h.sum(dim=(2, 3)) if self.sum_pool else h.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNet(Backbone):
    """SNGAN's CIFAR ResNet (``ResNetDecoder`` and ``ResNetEncoder``)."""

    norms = ("spectral", "none", "batch", "layer")
    resolutions = " and ".join(f"{r}x{r}" for r in RESOLUTIONS)

    def supports(self, resolution: int) -> bool:
        return resolution in RESOLUTIONS

    def decoder(self, resolution: int, latent: int, width: int) -> ResNetDecoder:
        return ResNetDecoder(resolution, latent, width)

    def encoder(self, resolution: int, out_dim: int, width: int, norm: str = "batch") -> ResNetEncoder:
        return ResNetEncoder(resolution, out_dim, width, norm)
