"""WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville 2017, "Improved Training of
Wasserstein GANs", arXiv:1704.00028).

Networks: generator G = ``bench.nets.Decoder`` (batch norm, as in the paper); critic C =
``bench.nets.ConvEncoder`` (out_dim 1, a real-valued score) with **no normalisation**: the
penalty is on each sample's input gradient, and batch norm would make that gradient depend on
the rest of the batch (paper section 4, "No critic batch normalization"; the authors' DCGAN-style
CIFAR critic, ``gan_cifar.py``, drops its batch norm in WGAN-GP mode). The paper suggests layer
norm as a drop-in replacement (``gan_64x64.py`` uses it); ``ConvEncoder`` has none, so none.

With x ~ data, z ~ N(0, I), x~ = G(z), eps ~ U[0, 1] per sample and x^ = eps x + (1 - eps) x~:

* critic, ``n_critic`` steps per generator step, each with fresh z and eps (Algorithm 1):
  L_C = E[C(x~)] - E[C(x)] + lambda * E[(||grad_x^ C(x^)||_2 - 1)^2]      (x~ detached)
  The gradient norm is over all of an image's pixels, and the penalty is back-propagated
  into C's parameters through that gradient (double backpropagation).
* generator, fresh z: L_G = -E[C(G(z))]

``train_step`` reports the means over its critic steps of L_C (``loss_critic``), of the
Wasserstein estimate W = E[C(x)] - E[C(x~)] (``wasserstein``, the negative critic loss the
paper plots, penalty excluded) and of the penalty (``gradient_penalty``), and L_G (``loss_g``).

Defaults (the paper's Algorithm 1): lambda 10, n_critic 5, Adam(lr 1e-4, betas (0.0, 0.9)) for
both networks; the authors' ``gan_64x64.py`` and ``gan_cifar_resnet.py`` (igul222/
improved_wgan_training) use the same (their ``gan_cifar.py`` DCGAN uses beta1 0.5).

The real batch of the critic steps (``real_batch``). Algorithm 1 draws a new real batch for
every critic step, and the authors' code does too (``_data = gen.next()`` inside the critic
loop of gan_cifar.py / gan_64x64.py / gan_cifar_resnet.py). bench's trainer hands a variant
one batch of B images per ``train_step``, so:

* ``"reuse"`` (default): all ``n_critic`` critic steps use the whole batch, and every draw
  (z, eps, the generator's z) has B items. B keeps its meaning, the paper's batch size m, so
  a comparison at one ``--batch-size`` gives every variant the same batch; the one difference
  from Algorithm 1 is that the n_critic critic steps see the same real images (the fakes, z
  and eps are fresh each step).
* ``"split"``: critic step i takes its own slice of k = ceil(B / n_critic) images (the last
  slice wraps around to the start when n_critic does not divide B), and every draw has k
  items. With ``--batch-size n_critic*m`` this is Algorithm 1 with batch size m exactly:
  distinct real images per critic step, each image used once.

Differences from the paper, to fit the shared backbone: the DCGAN generator and critic of
``bench.nets`` (4x4 stride-2 convolutions, LeakyReLU 0.2, DCGAN initialisation) rather than
the authors' 5x5-kernel / ResNet networks; the critic scores real, fake and interpolated
images in one concatenated pass (the same result as three passes: no layer mixes samples).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from bench import LUCIC_DISC_STEPS, LUCIC_PENALTY_WEIGHT, LUCIC_SHARED, BackboneConfig, hookimpl
from bench.adversarial import Adversarial

REAL_BATCHES = ("reuse", "split")


@dataclasses.dataclass
class WGANGPConfig(BackboneConfig):
    n_critic: int = 5  # critic steps per generator step
    gp_weight: float = 10.0  # lambda
    real_batch: Literal["reuse", "split"] = "reuse"  # what the critic steps take from the batch
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9


class WGANGP(Adversarial):
    """WGAN-GP: ``n_critic`` critic steps, then one generator step, per batch."""

    Config = WGANGPConfig
    discriminator = "critic"
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "n_critic": LUCIC_DISC_STEPS, "gp_weight": LUCIC_PENALTY_WEIGHT}
    # the paper's CIFAR-10 ResNet (gan_cifar_resnet.py): lr 2e-4 (its linear decay is not taken);
    # n_critic 5 and betas (0, 0.9) are the defaults already
    backbone_defaults = {"resnet": {"lr": 2e-4}}

    def build(self) -> None:
        cfg = self.config
        if cfg.n_critic < 1:
            raise ValueError(f"wgan-gp: n_critic must be >= 1, got {cfg.n_critic}")
        if cfg.gp_weight < 0:
            raise ValueError(f"wgan-gp: gp_weight must be >= 0, got {cfg.gp_weight}")
        if cfg.real_batch not in REAL_BATCHES:
            raise ValueError(f"wgan-gp: real_batch must be 'reuse' or 'split', got {cfg.real_batch!r}")
        if cfg.lr <= 0 or not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
            raise ValueError(f"wgan-gp: need lr > 0 and betas in [0, 1), got {cfg.lr}, "
                             f"({cfg.beta1}, {cfg.beta2})")
        self.build_players(norm="none")  # no batch norm: the penalty is per sample

    def critic_batches(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """The real images of each of the ``n_critic`` critic steps (see ``real_batch``)."""
        n_critic, size = self.config.n_critic, batch.shape[0]
        if self.config.real_batch == "reuse":
            return [batch] * n_critic
        k = math.ceil(size / n_critic)
        index = torch.arange(n_critic * k, device=batch.device) % size  # wraps around at the end
        return list(batch[index].split(k))

    def generated(self, n: int) -> torch.Tensor:
        """``n`` images from G with fresh z, without a graph (the critic's fakes)."""
        with torch.no_grad(), self.autocast():
            return self.networks["generator"](self.latent(n, self.config.latent)).float()

    def critic_losses(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_C (``critic``) and its parts for real images and generated ones of the same count;
        draws eps. Attached to the critic's graph (twice differentiable through the penalty)."""
        C, n = self.networks["critic"], real.shape[0]
        eps = torch.rand(n, 1, 1, 1, device=real.device, generator=self.generator)
        # x^ is a leaf of its own: the penalty differentiates C's output with respect to it.
        mixed = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
        with self.autocast():
            scores = C(torch.cat([real, fake.detach(), mixed])).float().flatten()
        c_real, c_fake, c_mixed = scores.split(n)
        # create_graph: the penalty must reach C's parameters through this gradient.
        (grad,) = torch.autograd.grad(c_mixed.sum(), mixed, create_graph=True)
        penalty = ((grad.float().flatten(1).norm(dim=1) - 1) ** 2).mean()
        wasserstein = c_real.mean() - c_fake.mean()
        return {"critic": -wasserstein + self.config.gp_weight * penalty,
                "wasserstein": wasserstein, "gradient_penalty": penalty}

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """L_G = -E[C(fake)] for generated images (attached to G's graph)."""
        with self.autocast():
            return -self.networks["critic"](fake).float().mean()

    def train_step(self, batch):
        G, C = self.networks["generator"], self.networks["critic"]
        opt_g, opt_c = self.optimizers["generator"], self.optimizers["critic"]
        critic_params, generator_params = list(C.parameters()), list(G.parameters())
        reals = self.critic_batches(batch)
        totals = dict.fromkeys(("critic", "wasserstein", "gradient_penalty"), 0.0)
        for real in reals:
            losses = self.critic_losses(real, self.generated(real.shape[0]))
            opt_c.zero_grad(set_to_none=True)
            losses["critic"].backward(inputs=critic_params)  # not into x^ (a leaf that needs grad)
            opt_c.step()
            totals = {k: v + losses[k].detach() for k, v in totals.items()}

        with self.autocast():
            fake = G(self.latent(reals[0].shape[0], self.config.latent))
        loss_g = self.generator_loss(fake)
        # inputs=G's parameters: the generator loss leaves the critic's gradients untouched.
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=generator_params)
        opt_g.step()
        n = len(reals)
        return {"loss_critic": totals["critic"] / n, "wasserstein": totals["wasserstein"] / n,
                "gradient_penalty": totals["gradient_penalty"] / n, "loss_g": loss_g.detach()}


@hookimpl
def bench_register_models(register):
    register("wgan-gp", WGANGP)
