"""IWAE (Burda et al. 2016, "Importance Weighted Autoencoders", arXiv:1509.00519): the
template's encoder variant.

Networks: the Gaussian encoder E and decoder Dec of ``bench.autoencoder.GaussianAutoencoder``.
For each image x, k posterior draws z_i = mu(x) + s(x) * eps_i (eps_i from the variant's own
generator, so a checkpoint resumes exactly) give importance weights

    log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x)
            = -||x - Dec(z_i)||^2 / (2 sigma^2) - ||z_i||^2 / 2
              + 1/2 sum_j ((z_ij - mu_j)^2 / s_j^2 + log s_j^2)        (constants dropped)

* E and Dec:  L_k = -E_x[ logsumexp_i(log w_i) - log k ]   (k = 1 is the VAE's negative ELBO)

Adam(lr 2e-4, betas (0.9, 0.999)) for both, as bench's VAE.

What this shows a plugin author: an encoder variant needs ``reconstruct(x)`` (the evaluator
then measures reconstruction error and reconstruction FID), forward passes inside
``self.autocast()`` (bf16 on CUDA), randomness from ``self.generator`` (and ``sample``
passing the evaluator's ``generator`` through to ``self.latent``).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from bench import LUCIC_SHARED, BackboneConfig, IntUniform, hookimpl
from bench.autoencoder import GaussianAutoencoder


@dataclasses.dataclass
class IWAEConfig(BackboneConfig):
    k: int = 5  # importance samples per image
    sigma: float = 0.15  # std of the Gaussian likelihood p(x|z), in [-1, 1] pixel units
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999


class IWAE(GaussianAutoencoder):
    family = "vae"
    Config = IWAEConfig
    search_space = {**LUCIC_SHARED, "k": IntUniform(1, 50, log=True)}  # what `bench sweep` draws

    def build(self):
        cfg = self.config
        if cfg.k < 1 or cfg.sigma <= 0:
            raise ValueError(f"iwae: need k >= 1 and sigma > 0, got {cfg.k}, {cfg.sigma}")
        # make_encoder / make_decoder: the shared backbones, sized from the image and config
        self.networks = {"encoder": self.make_encoder(), "decoder": self.make_decoder()}
        self.optimizers = {name: self.adam(net.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
                           for name, net in self.networks.items()}

    def log_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``[k, B]`` log importance weights, attached to the graph."""
        k, sigma = self.config.k, self.config.sigma
        mu, logvar = self.encode(x)  # float32 [B, latent]; the encoder runs under self.autocast()
        eps = torch.randn((k, *mu.shape), device=mu.device, generator=self.generator)
        z = mu + (0.5 * logvar).exp() * eps  # [k, B, latent]
        x_hat = self.decode(z.flatten(0, 1)).view(k, *x.shape)  # decode() also autocasts
        log_px = -(x.float() - x_hat).pow(2).flatten(2).sum(2) / (2 * sigma**2)
        log_pz = -0.5 * z.pow(2).sum(2)
        log_qz = -0.5 * (eps.pow(2) + logvar).sum(2)  # (z - mu)^2 / s^2 = eps^2
        return log_px + log_pz - log_qz

    def train_step(self, batch):
        bound = torch.logsumexp(self.log_weights(batch), dim=0) - math.log(self.config.k)
        loss = -bound.mean()
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.optimizers.values():
            opt.step()
        return {"loss": loss.detach()}

    # sample(n, generator) comes from GaussianAutoencoder: it decodes
    # self.latent(n, latent, generator) in eval mode, in chunks. Written out, it would be:
    #     return self.eval_in_chunks(["decoder"], lambda i, m: self.decode(
    #         self.latent(m, self.config.latent, generator)), n)

    @torch.no_grad()
    def reconstruct(self, x):
        """``[B, 3, H, W]`` in [-1, 1] -> the decoded posterior means, same shape: what makes this
        an encoder variant (the evaluator's reconstruction columns call it)."""
        x = x.to(self.device)
        return self.eval_in_chunks(["encoder", "decoder"],
                                   lambda i, m: self.decode(self.encode(x[i : i + m])[0]), len(x))


@hookimpl
def bench_register_models(register):
    register("template-iwae", IWAE)
