"""VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", arXiv:1312.6114).

Networks: Gaussian encoder E = ``bench.nets.ConvEncoder`` (out_dim 2*latent: mean mu and
log-variance log s^2 of q(z|x) = N(mu, diag s^2)), decoder Dec = ``bench.nets.Decoder`` (the
GAN's generator). With x ~ data, eps ~ N(0, I), z = mu + s * eps (reparameterisation):

* reconstruction: Gaussian likelihood with fixed variance, p(x|z) = N(Dec(z), sigma^2 I), so
  per image  L_rec = -log p(x|z) = sum_pixels (x - Dec(z))^2 / (2 sigma^2)   (+ a constant
  that is dropped); sigma is in the [-1, 1] pixel units of the variant boundary.
* prior term:  L_KL = KL(q(z|x) || N(0, I)) = 1/2 sum_j (mu_j^2 + s_j^2 - 1 - log s_j^2)
* E and Dec:   L = E_x[L_rec + beta * L_KL]   (the negative ELBO for beta = 1)

Losses are reported per image (nats summed over pixels / latent dimensions, averaged over
the batch). Defaults: beta 1.0, sigma 0.15 (about 0.075 on a [0, 1] scale, close to the
root-mean-square error a DCGAN-sized decoder reaches on CIFAR-10, i.e. near the maximum-
likelihood sigma of Rybkin et al. 2021: a much smaller sigma over-weights reconstruction and
leaves holes in the prior, a much larger one gives blurry samples).
``sample`` decodes prior draws z ~ N(0, I); ``reconstruct`` decodes the posterior mean mu.

Optimizers: Adam(lr 2e-4, betas (0.9, 0.999)), one per network (1e-3 learns no faster in
short runs and makes the log-variance head jump by several units in the first steps).

The encoder/decoder plumbing (``GaussianAutoencoder``) and the two loss terms come from
``bench.autoencoder``, shared with ``vaegan``, ``arvae`` and any third-party encoder variant.
"""

from __future__ import annotations

import dataclasses

import torch

from bench import LUCIC_SHARED, BackboneConfig, LogUniform, hookimpl
from bench.autoencoder import GaussianAutoencoder, gaussian_nll, kl_standard_normal


@dataclasses.dataclass
class VAEConfig(BackboneConfig):
    beta: float = 1.0  # weight of the KL term (beta-VAE; 1.0 = the ELBO)
    sigma: float = 0.15  # std of the Gaussian likelihood p(x|z), in [-1, 1] pixel units
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999


class VAE(GaussianAutoencoder):
    """Gaussian VAE, one joint update of encoder and decoder per batch."""

    family = "vae"
    Config = VAEConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "beta": LogUniform(0.1, 10.0)}

    def build(self) -> None:
        cfg = self.config
        if cfg.sigma <= 0 or cfg.beta < 0:
            raise ValueError(f"vae: need sigma > 0 and beta >= 0, got {cfg.sigma}, {cfg.beta}")
        self.networks = {"encoder": self.make_encoder(), "decoder": self.make_decoder()}
        self.optimizers = self.adam_per_network()

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image loss terms on one batch, still attached to the graph."""
        mu, logvar = self.encode(x)
        x_hat = self.decode(self.reparameterize(mu, logvar))
        recon = gaussian_nll(x.float(), x_hat, self.config.sigma).mean()
        kl = kl_standard_normal(mu, logvar).mean()
        return {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl}

    def train_step(self, batch):
        losses = self.losses(batch)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        for opt in self.optimizers.values():
            opt.step()
        return {k: v.detach() for k, v in losses.items()}


@hookimpl
def bench_register_models(register):
    register("vae", VAE)
