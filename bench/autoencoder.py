"""Shared pieces of the encoder-based variants: a Gaussian encoder, a decoder, and the two
loss terms of the ELBO. Built-in and third-party plugins import them from here.

    from bench.autoencoder import GaussianAutoencoder, gaussian_nll, kl_standard_normal

``CodeAutoencoder`` is the same for variants whose encoder gives a code rather than a
distribution's parameters (WAE, alpha-GAN, BiGAN): ``sample``, ``decode``, ``encode`` and
``reconstruct`` from a subclass's ``code(x)`` and ``generate(z)``.

A subclass builds ``self.networks["encoder"]`` (``make_encoder()``: the backbone's encoder,
whose output is the mean and log-variance of q(z|x), 2*latent values) and
``self.networks["decoder"]`` (``make_decoder()``: the backbone's decoder, the GANs' generator);
it then gets ``encode``, ``reparameterize``, ``decode``, ``sample`` and ``reconstruct`` (the
decoded posterior mean, which the evaluator uses for the reconstruction columns).
Its Config subclasses ``bench.BackboneConfig``.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.variant import Variant

LOGVAR_RANGE = (-30.0, 20.0)  # clamp on the encoder's log-variance, for numerical safety only


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, summed over latent dimensions: ``[B]``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(x | mean, sigma^2 I) per image without the constant: ``[B]``."""
    return (x - mean).pow(2).flatten(1).sum(1) / (2.0 * sigma**2)


class GaussianAutoencoder(Variant):
    """Shared parts of the encoder-based variants.

    Expects ``self.networks["encoder"]`` (an encoder with out_dim 2*latent) and
    ``self.networks["decoder"]`` (a decoder) and ``self.config.latent``.
    """

    image_networks = ("encoder", "decoder")  # sample() uses the decoder, reconstruct() both

    def make_encoder(self) -> nn.Module:
        return self.build_encoder(2 * self.config.latent, norm="batch")

    def make_decoder(self) -> nn.Module:
        return self.build_decoder()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, float32 ``[B, latent]`` each."""
        with self.autocast():
            stats = self.networks["encoder"](x)
        mu, logvar = stats.float().chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps with eps from the variant's generator."""
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=self.generator)
        return mu + (0.5 * logvar).exp() * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.networks["decoder"](z).float()

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.eval_in_chunks(
            ["decoder"], lambda i, m: self.decode(self.latent(m, self.config.latent, generator)), n
        )

    @torch.no_grad()
    def reconstruct(self, x):
        """Decode the posterior mean of each image: ``[B, 3, H, W]`` in [-1, 1]."""
        x = x.to(self.device)
        return self.eval_in_chunks(
            ["encoder", "decoder"], lambda i, m: self.decode(self.encode(x[i : i + m])[0]), len(x)
        )


class CodeAutoencoder(Variant):
    """The image side of a variant whose encoder gives a code z = E(x) (not a distribution's
    parameters) and whose generator maps codes to images: WAE, alpha-GAN, BiGAN.

    A subclass names its two networks (``encoder_network``, ``generator_network``) and defines
    ``code(x)`` (the code ``reconstruct`` decodes) and ``generate(z)``, both forward passes in the
    networks' current mode; it then gets ``sample``, ``decode``, ``encode`` and ``reconstruct``,
    each in eval mode and in chunks.
    """

    encoder_network: str = "encoder"
    generator_network: str = "generator"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "image_networks" not in cls.__dict__:
            cls.image_networks = (cls.encoder_network, cls.generator_network)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n, generator=None):
        latent = self.config.latent
        return self.eval_in_chunks(
            [self.generator_network], lambda i, m: self.generate(self.latent(m, latent, generator)), n
        )

    def decode(self, z):
        """G(z) for latents ``z`` ``[n, latent]``: float [-1, 1], ``[n, 3, H, W]``."""
        z = z.to(self.device)
        return self.eval_in_chunks([self.generator_network], lambda i, m: self.generate(z[i : i + m]), len(z))

    def encode(self, x):
        """The codes ``[n, latent]``, float32."""
        x = x.to(self.device)
        return self.eval_in_chunks([self.encoder_network], lambda i, m: self.code(x[i : i + m]), len(x))

    def reconstruct(self, x):
        """G(code(x)): float [-1, 1], ``[n, 3, H, W]``."""
        x = x.to(self.device)
        return self.eval_in_chunks([self.encoder_network, self.generator_network],
                                   lambda i, m: self.generate(self.code(x[i : i + m])), len(x))
