"""alpha-GAN (Rosca, Lakshminarayanan, Warde-Farley, Mohamed 2017, "Variational Approaches for
Auto-Encoding Generative Adversarial Networks", arXiv:1706.04987).

Networks: encoder E = ``bench.nets.ConvEncoder`` (out_dim latent: a deterministic code
z^ = E(x), the paper's implicit posterior q(z|x) without an injected noise input), generator
G = ``bench.nets.Decoder`` (the GAN's generator), image discriminator D = ``bench.nets.ConvEncoder``
(out_dim 1, logits d(.)) and code discriminator C = ``bench.nets.LatentDiscriminator`` (logits
c(.)), which replaces the VAE's KL term by a density-ratio estimate: C tells prior draws
z ~ N(0, I) (label 1) from codes z^ (label 0), and -c(z^) = log((1 - C(z^)) / C(z^)) estimates
log q(z^|x) / p(z^).

Per batch x, as in the paper's Algorithm 1 (z^ = E(x), x^ = G(z^), z ~ N(0, I), x_gen = G(z),
all drawn once at the top of the iteration), with L1 = mean over pixels and images of |x - x^|
and sigma the logistic function (so -log D + log(1 - D) = -d, the negative logit):

* E:  L_E = lambda * L1 + A(c(z^))
* G:  L_G = lambda * L1 + A(d(x^)) + A(d(x_gen))
* D:  L_D = -E[log sigma(d(x))] - E[log(1 - sigma(d(x^)))] - E[log(1 - sigma(d(x_gen)))]
* C:  L_C = -E[log sigma(c(z))] - E[log(1 - sigma(c(z^)))]

where the adversarial term A(l) (each E[.] a batch mean) is

* ``adv_loss="logit"`` (default; exactly Algorithm 1): A(l) = E[-log sigma(l) + log(1 - sigma(l))]
  = -E[l], the sum of the non-saturating and the saturating generator losses, i.e. the
  log density ratio the paper's variational derivation asks for;
* ``adv_loss="nonsaturating"``: A(l) = -E[log sigma(l)] (Goodfellow et al.'s non-saturating
  loss alone).

The real and the two fake terms of L_D are summed, weighting real : reconstructed : sampled as
1 : 1 : 1, as Algorithm 1 writes it. L_C follows the corrected Algorithm 1: arXiv v1 printed its
prior and posterior terms swapped; the authors confirmed the fix (reported in the
victor-shepardson/alpha-GAN README).

Gradient routing: one forward pass (G decodes [z^; z] as one batch, D sees [x; x^; x_gen] as one
batch, so the three share batch-norm statistics as in ``vaegan``), then each loss is
back-propagated into its own network only (``backward(inputs=<its parameters>)``): the image-GAN
terms never reach E, the code-GAN term never reaches G (it does not depend on G), and L_D / L_C
reach only D / C. Every backward pass runs before any optimizer steps, so all four gradients are
taken at the same parameters and the same samples: Algorithm 1 draws z^, x^, z and x_gen once
and writes all four losses in terms of them, with no re-encoding or re-decoding between its
updates (E, G, D, C, the order the steps are applied in). Each network has its own Adam, as
the authors confirmed for their experiments (same README).

Defaults and their sources. Algorithm 1 writes lambda * ||x - x^||_1 (a sum over pixels); the
value the paper's experiments used could not be confirmed from the sources available here, so
the defaults follow the public PyTorch reimplementation victor-shepardson/alpha-GAN
(``alphagan.py``; it uses the non-saturating term and one Adam for E and G together, which
bench does not follow): its reconstruction term is the per-pixel mean,
so lambda does not change with resolution, and lambda = 40 is its CIFAR-10 notebook's value
(32x32, latent 128, as bench; its README example uses 10). With the "logit" term the adversarial
gradients do not fade as D is fooled, and at lambda = 10 reconstruction lagged: in 80 steps on
32 synthetic images (width 8, lr 1e-3) the mean L1 went 0.46 -> 0.31, against 0.46 -> 0.14 at
lambda = 40. Optimizers: Adam(lr 2e-4, betas (0.5, 0.9)) for each of the four networks: betas
as that reimplementation, lr its first CIFAR version's default and the DCGAN rate every bench
GAN uses (its later notebook: 8e-4 with two E/G steps per batch, not adopted); one update per
network per batch. Code discriminator: ``LatentDiscriminator`` (two hidden layers of ``hidden``
= 512 units, LeakyReLU, no batch norm: that reimplementation found batch norm in C harmful).

Differences from the paper made to fit the shared backbone: the DCGAN Decoder / ConvEncoder
pair at bench's width and latent size stand in for the paper's per-data-set architectures (its
CIFAR-10 networks differ); E is deterministic (no noise input); the L1 term is a per-pixel mean
(lambda rescaled accordingly); D and G see real and fake images in shared batches; no extra
generator/encoder steps per discriminator step.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from bench import LUCIC_SHARED, BackboneConfig, LogUniform, hookimpl
from bench.autoencoder import CodeAutoencoder
from bench.nets import LatentDiscriminator

ADV_LOSSES = ("logit", "nonsaturating")
NETWORKS = ("encoder", "generator", "discriminator", "code_discriminator")  # Algorithm 1's order


@dataclasses.dataclass
class AlphaGANConfig(BackboneConfig):
    recon_weight: float = 40.0  # lambda, on the per-pixel mean L1 reconstruction error
    adv_loss: Literal["logit", "nonsaturating"] = "logit"  # logit = -log D + log(1 - D), Algorithm 1
    hidden: int = 512  # width of the code discriminator MLP
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.9


class AlphaGAN(CodeAutoencoder):
    """alpha-GAN: encoder, generator, image and code discriminators, one joint step per batch."""

    family = "hybrid"
    Config = AlphaGANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "recon_weight": LogUniform(1.0, 100.0)}
    image_networks = ("encoder", "generator")  # sample() uses G, reconstruct() G(E(x))

    def build(self) -> None:
        cfg = self.config
        if cfg.adv_loss not in ADV_LOSSES:
            raise ValueError(f"alpha-gan: adv_loss must be one of {ADV_LOSSES}, got {cfg.adv_loss!r}")
        if cfg.recon_weight < 0 or cfg.hidden < 1 or cfg.lr <= 0:
            raise ValueError(
                f"alpha-gan: need recon_weight >= 0, hidden >= 1 and lr > 0, "
                f"got {cfg.recon_weight}, {cfg.hidden}, {cfg.lr}"
            )
        self.networks = {
            "encoder": self.build_encoder(cfg.latent, norm="batch"),
            "generator": self.build_decoder(),
            "discriminator": self.build_encoder(1, norm="batch"),
            "code_discriminator": LatentDiscriminator(cfg.latent, cfg.hidden),
        }
        self.optimizers = self.adam_per_network(NETWORKS)

    def adversarial_term(self, logits: torch.Tensor) -> torch.Tensor:
        """A(l) for the side that wants its input called real: -mean(l) ("logit", Algorithm 1's
        -log D + log(1 - D)) or -mean(log sigmoid(l)) ("nonsaturating")."""
        if self.config.adv_loss == "logit":
            return -logits.mean()
        return F.softplus(-logits).mean()

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass; the four networks' losses and their terms (graph attached).

        Keys: ``encoder``, ``generator``, ``discriminator``, ``code_discriminator`` (L_E, L_G,
        L_D, L_C); the terms ``recon`` (L1, unweighted), ``gan_image`` (A(d(x^)) + A(d(x_gen))),
        ``gan_code`` (A(c(z^))); and the logits ``logits_real``, ``logits_rec``, ``logits_gen``,
        ``logits_prior``, ``logits_code``. Each of the four losses must be back-propagated into
        its own network only: see :meth:`backward`.
        """
        cfg = self.config
        b = x.shape[0]
        E, G = self.networks["encoder"], self.networks["generator"]
        D, C = self.networks["discriminator"], self.networks["code_discriminator"]
        z = self.latent(b, cfg.latent)
        with self.autocast():
            z_hat = E(x).float()
            decoded = G(torch.cat([z_hat, z]).to(x.dtype))  # [x^; x_gen]: shared batch-norm statistics
            d = D(torch.cat([x, decoded.to(x.dtype)])).float().flatten()
            c = C(torch.cat([z, z_hat])).float().flatten()
        x_rec = decoded[:b].float()
        d_real, d_rec, d_gen = d[:b], d[b : 2 * b], d[2 * b :]
        c_prior, c_code = c[:b], c[b:]

        recon = (x.float() - x_rec).abs().mean()
        gan_image = self.adversarial_term(d_rec) + self.adversarial_term(d_gen)
        gan_code = self.adversarial_term(c_code)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_rec).mean() + F.softplus(d_gen).mean()
        loss_c = F.softplus(-c_prior).mean() + F.softplus(c_code).mean()
        return {
            "encoder": cfg.recon_weight * recon + gan_code,
            "generator": cfg.recon_weight * recon + gan_image,
            "discriminator": loss_d,
            "code_discriminator": loss_c,
            "recon": recon,
            "gan_image": gan_image,
            "gan_code": gan_code,
            "logits_real": d_real,
            "logits_rec": d_rec,
            "logits_gen": d_gen,
            "logits_prior": c_prior,
            "logits_code": c_code,
        }

    def backward(self, losses: dict[str, torch.Tensor], names=NETWORKS) -> None:
        """Set each named network's ``.grad`` to the gradient of its own loss, and only that.

        The graph is kept, so the phases can be run one at a time; no optimizer steps here.
        """
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
            losses[name].backward(inputs=list(self.networks[name].parameters()), retain_graph=True)

    def train_step(self, batch):
        losses = self.losses(batch)
        self.backward(losses)  # every backward pass before any step: all at the same parameters
        for name in NETWORKS:
            self.optimizers[name].step()
        out = {
            "loss_enc": losses["encoder"],
            "loss_gen": losses["generator"],
            "loss_d": losses["discriminator"],
            "loss_c": losses["code_discriminator"],
            "recon_l1": losses["recon"],
            "gan_image": losses["gan_image"],
            "gan_code": losses["gan_code"],
        }
        return {k: v.detach() for k, v in out.items()}

    # -- images and codes (eval mode: batch norm uses running statistics) ---------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) as float32, in the networks' current mode."""
        with self.autocast():
            return self.networks["generator"](z).float()

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The code E(x) as float32, in the networks' current mode."""
        with self.autocast():
            return self.networks["encoder"](x).float()


@hookimpl
def bench_register_models(register):
    register("alpha-gan", AlphaGAN)
