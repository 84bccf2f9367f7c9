"""The two-player base of the GANs: a generator and an image discriminator (or critic) on the
run's backbone, and the alternating step most of them take.

``Adversarial`` builds G = the backbone's decoder and D = its encoder (one output, raw scores)
with one Adam each from the config's ``lr`` and ``(beta1, beta2)``, and gives
``sample`` and ``decode``; a subclass writes its own ``train_step`` (WGAN-GP's critic steps).

``AlternatingGAN`` adds the step of DCGAN (Radford et al. 2015) and of every GAN that changes only
the losses (LSGAN, the hinge loss), per batch:

* D step: ``discriminator_loss(D(x), D(G(z)))`` with G(z) detached; D's optimizer steps;
* G step: ``generator_loss(D(G(z)))`` on the same G(z), scored by the updated D, back-propagated
  into G's parameters only, so D's gradients stay those of its own loss.

With ``n_dis`` > 1 in the config (SNGAN's n_dis, Miyato et al. 2018, Algorithm 1) D takes
``n_dis`` steps per G step, each on fresh z, and the G step scores the last of their fakes.
The D steps share the batch's real images (bench hands ``train_step`` one batch; the authors'
code draws a new real batch per D step), as WGAN-GP's ``real_batch="reuse"`` does. A config
without the field takes one D step.

A third-party GAN subclasses one of them and writes its losses.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from bench.variant import Variant


class Adversarial(Variant):
    """A generator and an image discriminator; the config has ``latent``, ``width``, ``backbone``,
    ``lr``, ``beta1``, ``beta2`` (``bench.BackboneConfig`` and three fields of its own)."""

    family = "gan"
    image_networks = ("generator",)
    discriminator: ClassVar[str] = "discriminator"  # its name in networks and optimizers

    def build_players(self, norm: str) -> None:
        """G and D (``norm``: one of the backbone's, e.g. batch, spectral, none) and one Adam each."""
        self.networks = {"generator": self.build_decoder(), self.discriminator: self.build_encoder(1, norm)}
        self.optimizers = self.adam_per_network()

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


class AlternatingGAN(Adversarial):
    """``n_dis`` discriminator steps (default 1), then one generator step, per batch; a subclass
    gives the losses."""

    @property
    def discriminator_steps(self) -> int:
        return getattr(self.config, "n_dis", 1)

    def build_players(self, norm: str) -> None:
        if self.discriminator_steps < 1:
            raise ValueError(f"{type(self).__name__}: n_dis must be >= 1, got {self.discriminator_steps}")
        super().build_players(norm)

    @abc.abstractmethod
    def discriminator_loss(self, real_logits, fake_logits):
        """D's loss from its raw scores of real images and of (detached) fakes."""

    @abc.abstractmethod
    def generator_loss(self, fake_logits):
        """G's loss from D's raw scores of its fakes."""

    def train_step(self, batch):
        G, D = self.networks["generator"], self.networks[self.discriminator]
        opt_g, opt_d = self.optimizers["generator"], self.optimizers[self.discriminator]
        steps = self.discriminator_steps
        losses_d = []
        for i in range(steps):
            z = self.latent(batch.shape[0], self.config.latent)
            last = i == steps - 1
            # Only the last fake reaches the G step: the others need no graph through G.
            with self.autocast(), torch.set_grad_enabled(last):
                fake = G(z)
            with self.autocast():
                loss_d = self.discriminator_loss(D(batch), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            losses_d.append(loss_d.detach())

        with self.autocast():
            loss_g = self.generator_loss(D(fake))
        # inputs=G's parameters: the generator loss leaves D's gradients untouched.
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_g.step()
        loss_d = losses_d[0] if steps == 1 else torch.stack(losses_d).mean()
        return {"loss_d": loss_d, "loss_g": loss_g.detach()}
