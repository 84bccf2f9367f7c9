"""DCGAN (Radford et al. 2015, arXiv:1511.06434) with the non-saturating loss
(Goodfellow et al. 2014, arXiv:1406.2661).

Networks: generator G = ``bench.nets.Decoder``, discriminator D = ``bench.nets.ConvEncoder``
(out_dim 1, logits). With x ~ data, z ~ N(0, I), per batch:

* D step:  L_D = -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))]   (G(z) detached)
* G step:  L_G = -E[log sigmoid(D(G(z)))]                             (non-saturating)

With ``loss="hinge"`` (Miyato et al. 2018) D uses spectral norm and
L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))].

Optimizers: Adam(lr 2e-4, betas (0.5, 0.999)) for both networks.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch.nn.functional as F

from bench import Variant, hookimpl
from bench.nets import BackboneConfig, ConvEncoder, Decoder
from bench.sweep.space import LUCIC_SHARED


@dataclasses.dataclass
class GANConfig(BackboneConfig):
    loss: Literal["nonsaturating", "hinge"] = "nonsaturating"  # hinge implies spectral norm in D
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


class GAN(Variant):
    """DCGAN, one discriminator step then one generator step per batch."""

    family = "gan"
    Config = GANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.sweep.space)
    search_space = {**LUCIC_SHARED}
    image_networks = ("generator",)

    def build(self) -> None:
        cfg = self.config
        if cfg.loss not in ("nonsaturating", "hinge"):
            raise ValueError(f"gan: loss must be 'nonsaturating' or 'hinge', got {cfg.loss!r}")
        resolution = self.image_shape[-1]
        norm = "spectral" if cfg.loss == "hinge" else "batch"
        self.networks = {
            "generator": Decoder(resolution, cfg.latent, cfg.width),
            "discriminator": ConvEncoder(resolution, 1, cfg.width, norm=norm),
        }
        self.optimizers = {
            name: self.adam(net.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
            for name, net in self.networks.items()
        }

    def discriminator_loss(self, real_logits, fake_logits):
        if self.config.loss == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits):
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()

    def train_step(self, batch):
        G, D = self.networks["generator"], self.networks["discriminator"]
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        z = self.latent(batch.shape[0], self.config.latent)

        with self.autocast():
            fake = G(z)
            loss_d = self.discriminator_loss(D(batch), D(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        with self.autocast():
            loss_g = self.generator_loss(D(fake))
        # inputs=G's parameters: the generator loss leaves D's gradients untouched.
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}

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
    register("gan", GAN)
