"""Soft-IntroVAE (Daniel & Tamar 2021, "Soft-IntroVAE: Analyzing and Improving the Introspective
Variational Autoencoder", CVPR 2021, arXiv:2012.13253).

Networks: Gaussian encoder E = ``bench.nets.ConvEncoder`` (out_dim 2*latent: mu, log s^2 of
q(z|x)) and decoder Dec = ``bench.nets.Decoder`` (the GAN's generator). There is no separate
discriminator: E is the adversary, scoring images by their ELBO. Notation, per image:

* rec(a, b) = sum_pixels ((a - b) / 2)^2 - the squared error summed over pixels on the [0, 1]
  scale the reference's images use (our images are in [-1, 1]; "mse" with reduction "sum")
* KL(x) = KL(E(x) || N(0, I)), summed over latent dimensions
* s = 1 / (C*H*W) (the reference's ``scale``: the ELBO per input dimension)
* sg(.) = stop-gradient; means run over the batch

Per batch, with z = mu(x) + sigma(x) * eps, x_r = Dec(z), x_p = Dec(z_p), z_p ~ N(0, I), and for a
fake f in {x_r, x_p}: z_f ~ E(sg(f)) (reparameterised), f' = Dec(z_f):

1. Encoder step (the paper's Algorithm 1, UpdateEncoder: L_E with alpha = 2):
   L_E = s * (beta_rec * rec(x, x_r) + beta_kl * KL(x))
         + 1/4 * sum_{f in {x_r, x_p}} mean exp(-2 s (beta_rec * rec(f, f') + beta_neg * KL(sg(f))))
   i.e. -ELBO(x) + 1/alpha * exp(alpha * ELBO(fake)) with the two kinds of fakes averaged.
   The fakes enter E detached; the exp terms reach E through E(sg(f)) -> KL, z_f -> Dec -> f'
   and, for f = x_r, through the target x_r = Dec(z(x)) as well: the reference leaves that
   target attached (``calc_reconstruction_loss(rec, rec_rec)``; only the input ``rec.detach()``
   is cut), and so does this module. Only E's parameters are updated.
2. Decoder step (Algorithm 1, UpdateDecoder: L_D), with E' = the
   encoder *after* step 1 and fresh reparameterisation draws z_f ~ E'(f):
   L_D = s * (beta_rec * rec(x, x_r) + 1/2 * beta_kl * (KL'(x_r) + KL'(x_p))
              + 1/2 * gamma_r * beta_rec * (rec(sg(x_r), Dec(sg(z_{x_r})))
                                            + rec(sg(x_p), Dec(sg(z_{x_p})))))
   KL' is taken through the forward pass of x_r and x_p by E', so its gradient reaches Dec through
   the fakes; only Dec's parameters are updated (``backward(inputs=...)``), E is unchanged. The
   exp terms are not part of L_D.

Order: the encoder step, then the decoder step, as in the reference. Its decoder step re-decodes
``Dec(sg(z))`` and ``Dec(z_p)`` with the same z (drawn in step 1 by the old encoder) and z_p;
Dec has not changed since step 1, so those are the same x_r and x_p, and this module reuses the
step-1 decoder passes (two fewer decoder forward passes) instead of recomputing them. E's passes
in step 2 are fresh (E has changed). Each kind of batch (x, x_r, x_p, and the reconstructions)
goes through a network in its own forward pass, as in the reference, so batch norm normalises
each on its own statistics.

Numerical safety: rec and KL are non-negative, so every exponent -2 s (...) is <= 0 and
exp(...) lies in (0, 1]: it cannot overflow, and a fake the encoder already scores as very
unlikely just underflows towards 0 with a vanishing gradient - the "soft" saturation of the
paper. The reference computes ``(...).exp()`` directly, without clamping or log-sum-exp, and
so does this module (in float32: ``encode``/``decode`` return float32 under bf16 autocast).

Defaults follow the authors' reference code, taldatech/soft-intro-vae-pytorch,
``soft_intro_vae/train_soft_intro_vae.py`` with the CIFAR-10 settings of its README / ``main.py``:
beta_rec 1.0, beta_kl 1.0, beta_neg 256, gamma_r 1e-8 (``main.py``'s default, not overridden for
CIFAR-10), z_dim 128 (= our latent 128), Adam(lr 2e-4, betas (0.9, 0.999)) for E and Dec
(``optim.Adam``'s defaults, lr_e = lr_d), no vanilla-VAE warm-up (``num_vae`` 0).

Differences from the reference's CIFAR-10 setup:
* architecture: theirs are ResNets (residual blocks with batch norm, average pooling /
  nearest upsampling, fully connected latent layers, channels 64-128-256, a linear output
  layer); here the shared DCGAN ConvEncoder (batch norm) and Decoder (tanh output), width 64.
* the log-variance is clamped to bench.autoencoder.LOGVAR_RANGE (numerical safety only).
* batch size: theirs is 32; here it is whatever the harness feeds ``train_step``.
* learning-rate schedule: theirs is MultiStepLR(milestone 350 epochs, x0.1), which never fires
  in their 250-epoch CIFAR-10 run; here the learning rate is constant.
* x_r and x_p are reused for the decoder step (see Order); values are identical, the decoder's
  batch-norm running statistics are updated once per batch for them instead of twice.
* ``gamma_r = 0`` skips the two decoder passes of the gamma_r term (and their draws).
"""

from __future__ import annotations

import dataclasses

import torch

from bench import LUCIC_SHARED, BackboneConfig, LogUniform, hookimpl
from bench.autoencoder import GaussianAutoencoder, kl_standard_normal


def rec_error(target: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Squared error per image, summed over pixels, on the [0, 1] scale (images in [-1, 1]): ``[B]``."""
    return (0.5 * (target.float() - recon.float())).pow(2).flatten(1).sum(1)


def exp_elbo(rec: torch.Tensor, kl: torch.Tensor, scale: float, beta_rec: float, beta_neg: float):
    """mean_batch exp(2 * ELBO) = mean exp(-2 s (beta_rec * rec + beta_neg * KL)); the exponent is
    <= 0 (rec, KL >= 0), so the value is in (0, 1] and never overflows."""
    return torch.exp(-2.0 * scale * (beta_rec * rec + beta_neg * kl)).mean()


@dataclasses.dataclass
class SoftIntroVAEConfig(BackboneConfig):
    beta_rec: float = 1.0  # weight of the reconstruction term in every ELBO
    beta_kl: float = 1.0  # weight of the KL term in the ELBO of real images (and of fakes for Dec)
    beta_neg: float = 256.0  # weight of the KL term in the encoder's exp(ELBO) of fakes
    gamma_r: float = 1e-8  # weight of the fakes' reconstruction term in the decoder's loss
    lr: float = 2e-4  # Adam for encoder and decoder
    beta1: float = 0.9
    beta2: float = 0.999


class SoftIntroVAE(GaussianAutoencoder):
    """Soft-IntroVAE: an encoder step (ELBO on reals, soft exp-ELBO on fakes), then a decoder step."""

    family = "hybrid"
    Config = SoftIntroVAEConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "beta_neg": LogUniform(16.0, 1024.0)}
    image_networks = ("encoder", "decoder")

    def build(self) -> None:
        cfg = self.config
        weights = (cfg.beta_rec, cfg.beta_kl, cfg.beta_neg, cfg.gamma_r)
        if min(weights) < 0 or cfg.lr <= 0:
            raise ValueError(f"soft-intro-vae: need beta_rec, beta_kl, beta_neg, gamma_r >= 0 and lr > 0, "
                             f"got {weights}, lr {cfg.lr}")
        self.networks = {"encoder": self.make_encoder(), "decoder": self.make_decoder()}
        self.optimizers = self.adam_per_network()
        c, h, w = self.image_shape
        self.scale = 1.0 / (c * h * w)  # s: the ELBO per input dimension

    def introspect(self, fake: torch.Tensor, decode_grad: bool = True):
        """E's view of a fake f: (mu, logvar, f') with f' = Dec(z_f), z_f ~ E(f) (graph kept through
        z_f unless ``decode_grad`` is False, which decodes sg(z_f))."""
        mu, logvar = self.encode(fake)
        z = self.reparameterize(mu, logvar)
        return mu, logvar, self.decode(z if decode_grad else z.detach())

    # -- the two steps' losses (graph attached), callable one by one --------------------------
    def encoder_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Step 1 on one batch: ``encoder`` (L_E, to be back-propagated into E only), its terms
        and the tensors step 2 reuses (``x_r``, ``x_p``: attached to Dec's graph) or a check
        recomputes (``mu``, ``logvar``, ``mu_r``, ``logvar_r``, ``x_rr``, ``mu_p``, ``logvar_p``,
        ``x_pp``). Draws: z_p, then eps for z, z_{x_r}, z_{x_p}."""
        cfg, s = self.config, self.scale
        z_p = self.latent(x.shape[0], cfg.latent)
        x_p = self.decode(z_p)
        mu, logvar = self.encode(x)
        x_r = self.decode(self.reparameterize(mu, logvar))
        rec = rec_error(x, x_r).mean()
        kl = kl_standard_normal(mu, logvar).mean()
        # Fakes enter E detached; the target x_r stays attached, as in the reference.
        mu_r, logvar_r, x_rr = self.introspect(x_r.detach())
        mu_p, logvar_p, x_pp = self.introspect(x_p.detach())
        kl_r, kl_p = kl_standard_normal(mu_r, logvar_r), kl_standard_normal(mu_p, logvar_p)
        exp_r = exp_elbo(rec_error(x_r, x_rr), kl_r, s, cfg.beta_rec, cfg.beta_neg)
        exp_p = exp_elbo(rec_error(x_p.detach(), x_pp), kl_p, s, cfg.beta_rec, cfg.beta_neg)
        real = s * (cfg.beta_rec * rec + cfg.beta_kl * kl)
        fake = 0.25 * (exp_r + exp_p)  # 1/alpha = 1/2, times the mean over the two kinds of fakes
        return {
            "encoder": real + fake, "real": real, "fake": fake, "rec": rec, "kl": kl,
            "kl_rec": kl_r.mean(), "kl_fake": kl_p.mean(), "exp_elbo_rec": exp_r, "exp_elbo_fake": exp_p,
            "x_r": x_r, "x_p": x_p, "mu": mu, "logvar": logvar, "mu_r": mu_r, "logvar_r": logvar_r,
            "x_rr": x_rr, "mu_p": mu_p, "logvar_p": logvar_p, "x_pp": x_pp,
        }

    def decoder_losses(self, x: torch.Tensor, enc: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Step 2, after E's step: ``decoder`` (L_D, to be back-propagated into Dec only), its
        terms and the updated encoder's statistics of the fakes (``mu_r``, ``logvar_r``, ``mu_p``,
        ``logvar_p``; ``x_rr``, ``x_pp`` when gamma_r > 0). ``enc`` is step 1's output: its x_r and
        x_p (still attached to Dec) are reused. Draws: eps for z_{x_r}, z_{x_p} (none when gamma_r
        is 0)."""
        cfg, s = self.config, self.scale
        x_r, x_p = enc["x_r"], enc["x_p"]
        rec = rec_error(x, x_r).mean()
        out = {}
        if cfg.gamma_r > 0:
            mu_r, logvar_r, out["x_rr"] = self.introspect(x_r, decode_grad=False)
            mu_p, logvar_p, out["x_pp"] = self.introspect(x_p, decode_grad=False)
            rec_fake = 0.5 * (rec_error(x_r.detach(), out["x_rr"]).mean()
                              + rec_error(x_p.detach(), out["x_pp"]).mean())
        else:  # the term's weight is 0: skip its two decoder passes
            (mu_r, logvar_r), (mu_p, logvar_p) = self.encode(x_r), self.encode(x_p)
            rec_fake = torch.zeros((), device=x.device)
        kl_r, kl_p = kl_standard_normal(mu_r, logvar_r).mean(), kl_standard_normal(mu_p, logvar_p).mean()
        kl_fakes = 0.5 * (kl_r + kl_p)
        loss = s * (cfg.beta_rec * rec + cfg.beta_kl * kl_fakes + cfg.gamma_r * cfg.beta_rec * rec_fake)
        return out | {
            "decoder": loss, "rec": rec, "kl_rec": kl_r, "kl_fake": kl_p, "rec_fake": rec_fake,
            "mu_r": mu_r, "logvar_r": logvar_r, "mu_p": mu_p, "logvar_p": logvar_p,
        }

    def _step(self, name: str, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Set network ``name``'s .grad to d loss / d its parameters, and only those; step it."""
        self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.networks[name].parameters()), retain_graph=retain_graph)
        self.optimizers[name].step()

    def train_step(self, batch):
        enc = self.encoder_losses(batch)
        self._step("encoder", enc["encoder"], retain_graph=True)  # step 2 reuses x_r, x_p
        dec = self.decoder_losses(batch, enc)
        self._step("decoder", dec["decoder"])
        out = {
            "loss_enc": enc["encoder"],
            "loss_dec": dec["decoder"],
            "rec": enc["rec"],
            "kl": enc["kl"],
            "kl_rec": dec["kl_rec"],
            "kl_fake": dec["kl_fake"],
            "exp_elbo_rec": enc["exp_elbo_rec"],
            "exp_elbo_fake": enc["exp_elbo_fake"],
        }
        return {k: v.detach() for k, v in out.items()}


@hookimpl
def bench_register_models(register):
    register("soft-intro-vae", SoftIntroVAE)
