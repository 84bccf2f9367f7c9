"""Networks every variant shares whatever its backbone, and the names of bench 0.2.

* :class:`LatentDiscriminator` - an MLP on latent codes (adversarial autoencoders: AR-VAE's and
  alpha-GAN's code discriminator, WAE-GAN's). It sees no images, so it is the same on every
  backbone.

The image networks live in ``bench.backbones`` now; ``Decoder``, ``ConvEncoder``,
``BackboneConfig`` and the rest stay importable from here for plugins written for bench 0.2
(they are the ``dcgan`` backbone's; a plugin that calls them directly does not follow
``--backbone``: build with ``Variant.build_decoder`` / ``build_encoder`` instead).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.backbones import BackboneConfig
from bench.backbones.dcgan import NORMS, ConvEncoder, Decoder, dcgan_init, num_stages

__all__ = ["NORMS", "BackboneConfig", "ConvEncoder", "Decoder", "LatentDiscriminator", "dcgan_init",
           "num_stages"]


class LatentDiscriminator(nn.Module):
    """MLP telling prior draws from encoder codes: ``[B, latent] -> [B, 1]`` logits."""

    def __init__(self, latent: int = 128, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
