"""WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028) as a third-party bench plugin.

Networks: generator G = ``bench.nets.Decoder``; critic C = ``bench.nets.ConvEncoder``
without normalisation (the gradient penalty is per-sample, which batch norm breaks).

* critic, ``n_critic`` times per batch (fresh z each time, the same real batch):
  L_C = E[C(G(z))] - E[C(x)] + lambda * E[(||grad_x_hat C(x_hat)||_2 - 1)^2],
  x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample
* generator: L_G = -E[C(G(z))]

Adam(lr 1e-4, betas (0.0, 0.9)) for both, as in the paper.
"""

from __future__ import annotations

import dataclasses

import torch

from bench import Variant, hookimpl
from bench.nets import BackboneConfig, ConvEncoder, Decoder


@dataclasses.dataclass
class WGANGPConfig(BackboneConfig):
    n_critic: int = 5  # critic updates per generator update
    gp_weight: float = 10.0  # lambda
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9


class WGANGP(Variant):
    family = "gan"
    Config = WGANGPConfig

    def build(self):
        cfg, resolution = self.config, self.image_shape[-1]
        self.networks = {
            "generator": Decoder(resolution, cfg.latent, cfg.width),
            "critic": ConvEncoder(resolution, 1, cfg.width, norm="none"),
        }
        self.optimizers = {
            name: self.adam(net.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
            for name, net in self.networks.items()
        }

    def gradient_penalty(self, real, fake):
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=self.generator)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.networks["critic"](mixed).sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def train_step(self, batch):
        G, C = self.networks["generator"], self.networks["critic"]
        opt_g, opt_c = self.optimizers["generator"], self.optimizers["critic"]
        n = batch.shape[0]
        for _ in range(self.config.n_critic):
            with torch.no_grad():
                fake = G(self.latent(n, self.config.latent))
            loss_c = C(fake).mean() - C(batch).mean()
            loss_c = loss_c + self.config.gp_weight * self.gradient_penalty(batch, fake)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
        loss_g = -C(G(self.latent(n, self.config.latent))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_g.step()
        return {"loss_critic": loss_c.detach(), "loss_g": loss_g.detach()}

    def sample(self, n, generator=None):
        G = self.networks["generator"]
        return self.eval_in_chunks(
            ["generator"], lambda i, m: G(self.latent(m, self.config.latent, generator)).float(), n
        )

    def decode(self, z):
        """Images for the latents ``z`` ``[n, latent]`` (float [-1, 1], ``[n, 3, H, W]``): G in eval
        mode, as ``sample``. Optional; bench uses it for the latent interpolation pictures."""
        G, z = self.networks["generator"], z.to(self.device)
        return self.eval_in_chunks(["generator"], lambda i, m: G(z[i : i + m]).float(), len(z))


@hookimpl
def bench_register_models(register):
    register("wgan-gp", WGANGP)
