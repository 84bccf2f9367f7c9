"""VAE/GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity
metric", arXiv:1512.09300).

Networks: Gaussian encoder E = ``bench.nets.ConvEncoder`` (out_dim 2*latent), decoder Dec =
``bench.nets.Decoder`` - the decoder *is* the generator, one module - and discriminator
Dis = ``bench.nets.ConvEncoder`` (out_dim 1, logits d(.)), whose last hidden activation
``Dis.features`` (the 4x4 layer, Dis_l) is the space reconstructions are measured in.
With x ~ data, z = mu(x) + s(x) * eps ~ q(z|x), x~ = Dec(z) and x_p = Dec(z_p), z_p ~ N(0, I):

* L_prior = KL(q(z|x) || N(0, I))                                  (per image, nats)
* L_llike = -log N(Dis_l(x) | Dis_l(x~), I) = 1/2 ||Dis_l(x) - Dis_l(x~)||^2   (per image,
  summed over the features; constant dropped; Dis_l(x) is the target and is detached)
* fakes F = {x~, x_p} (``fake="both"``, the paper's Algorithm 1 and default), or only
  {x_p} (``fake="prior"``, as in the authors' released CelebA script), or only {x~}
  (``fake="recon"``)
* Dis:  L_Dis = -E[log sigmoid(d(x))] - sum_{F} E[log(1 - sigmoid(d(f)))]   (the GAN loss)
* Dec:  L_Dec = gamma * L_llike - sum_{F} E[log sigmoid(d(f))]     (non-saturating GAN term)

  With ``fake="both"`` the two fake terms are summed, weighting real : reconstructed : prior
  as 1 : 1 : 1 - the paper's Algorithm 1, L_GAN = log Dis(X) + log(1 - Dis(Dec(Z))) +
  log(1 - Dis(Dec(Z_p))), and the default (``fake_weighting="sum"``). ``fake_weighting="mean"``
  averages them instead (1 : 0.5 : 0.5, one mean over all fakes together: bench's default
  earlier default).
* E:    L_Enc = L_prior + L_llike

Gradient routing: one forward pass (real images and all fakes go through Dis as one
concatenated batch, as in the authors' code, so real and reconstructed features share
batch-norm statistics); then each loss is back-propagated into its own network only
(``backward(inputs=<that network's parameters>)``); every backward pass runs before any
optimizer steps, so all three updates are computed at the same parameters (the paper's
Algorithm 1). Hence the GAN term never reaches E, L_Dis reaches only Dis, and Dis's gradient
never includes the decoder's loss.

Defaults: gamma 1e-2 (the default ``recon_vs_gan_weight`` of the authors' model code; their
CelebA script lowers it to 1e-6). L_llike sums over width*4*16 features at 32x32 (4096 at
width 64), so 1e-2 puts the decoder's two terms at comparable sizes; at 1e-6 the decoder is
in effect a plain GAN generator and, in short runs on synthetic data, reconstructions stayed
about 3x worse in pixel MSE while Dis saturated. Adam(lr 2e-4, betas (0.5, 0.999)) for all
three networks.

Equilibrium gating (``gating=True``, default off; Larsen et al. / the authors' code): with
c_real = -E[log sigmoid(d(x))] and c_fake = -E_F[log(1 - sigmoid(d(f)))] on the current batch
(c_fake a mean over all fakes, whatever the weighting, so that both sit near ln 2 at chance),
Dis is not updated when min(c_real, c_fake) < equilibrium - margin (it is winning), Dec is
not updated when max(c_real, c_fake) > equilibrium + margin (Dis is losing); if both would be
skipped both are updated; E is always updated. Defaults equilibrium 0.68 (~ln 2, the cost at
chance) and margin 0.4 (the authors' code). The decision is made from the current batch
only, so there is no extra state to checkpoint; it needs one device-to-host sync per step,
which is why train_step only syncs when gating is on. ``train_step`` then also returns
``dis_updated`` / ``dec_updated`` (0 or 1) so their means give the update rates.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from bench import LUCIC_SHARED, BackboneConfig, LogUniform, hookimpl
from bench.autoencoder import GaussianAutoencoder, kl_standard_normal

FAKES = ("both", "prior", "recon")


@dataclasses.dataclass
class VAEGANConfig(BackboneConfig):
    gamma: float = 1e-2  # weight of the feature reconstruction in the decoder's loss
    fake: Literal["both", "prior", "recon"] = "both"  # what Dis sees as fake: both = x~ and x_p
    fake_weighting: Literal["sum", "mean"] = "sum"  # both: sum the two fake terms (1:1:1) or average
    gating: bool = False  # equilibrium gating of the Dis / Dec updates
    equilibrium: float = 0.68
    margin: float = 0.4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


class VAEGAN(GaussianAutoencoder):
    """VAE/GAN: encoder, decoder/generator and discriminator updated together per batch."""

    family = "hybrid"
    Config = VAEGANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "gamma": LogUniform(1e-6, 1.0)}
    needs_features = True  # L_llike is measured in Dis.features

    def build(self) -> None:
        cfg = self.config
        if cfg.fake not in FAKES:
            raise ValueError(f"vaegan: fake must be one of {FAKES}, got {cfg.fake!r}")
        if cfg.fake_weighting not in ("sum", "mean"):
            raise ValueError(f"vaegan: fake_weighting must be 'sum' or 'mean', got {cfg.fake_weighting!r}")
        self.networks = {
            "encoder": self.make_encoder(),
            "decoder": self.make_decoder(),
            "discriminator": self.build_encoder(1, norm="batch"),
        }
        self.optimizers = self.adam_per_network()

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass; the three networks' losses and their terms (graph attached).

        Keys: ``encoder``, ``decoder``, ``discriminator`` (L_Enc, L_Dec, L_Dis), the terms
        ``kl``, ``feature_recon``, ``gan`` (the decoder's GAN term), ``d_real``, ``d_fake`` (Dis's
        two terms), ``c_fake`` (the mean fake cost gating compares) and ``logits_fake``, Dis's
        logits on the fakes F (reconstructions first).
        Each of the first three must be back-propagated into its own network only: see
        :meth:`backward`.
        """
        cfg = self.config
        b = x.shape[0]
        D = self.networks["discriminator"]
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        use_prior = cfg.fake in ("both", "prior")
        codes = torch.cat([z, self.latent(b, cfg.latent)]) if use_prior else z
        decoded = self.decode(codes)  # [x~; x_p]: one pass, shared batch-norm statistics
        with self.autocast():
            h = D.features(torch.cat([x, decoded.to(x.dtype)]))
            logits = D.head(h).flatten(1).float()
        h = h.float()
        feature_recon = 0.5 * (h[b : 2 * b] - h[:b].detach()).pow(2).flatten(1).sum(1).mean()
        kl = kl_standard_normal(mu, logvar).mean()
        fake = {"both": logits[b:], "prior": logits[2 * b :], "recon": logits[b:]}[cfg.fake]
        d_real = F.softplus(-logits[:b]).mean()
        c_fake = F.softplus(fake).mean()  # the mean over all fakes: what gating compares
        if cfg.fake == "both" and cfg.fake_weighting == "sum":  # Algorithm 1: one term per kind of fake
            d_fake = F.softplus(fake[:b]).mean() + F.softplus(fake[b:]).mean()
            gan = F.softplus(-fake[:b]).mean() + F.softplus(-fake[b:]).mean()
        else:
            d_fake, gan = c_fake, F.softplus(-fake).mean()
        return {
            "encoder": kl + feature_recon,
            "decoder": cfg.gamma * feature_recon + gan,
            "discriminator": d_real + d_fake,
            "kl": kl,
            "feature_recon": feature_recon,
            "gan": gan,
            "d_real": d_real,
            "d_fake": d_fake,
            "c_fake": c_fake,
            "logits_fake": fake,
        }

    def backward(self, losses: dict[str, torch.Tensor], names=("encoder", "decoder", "discriminator")):
        """Set each named network's ``.grad`` to the gradient of its own loss, and only that.

        The graph is kept, so phases can be run one at a time; no optimizer steps here.
        """
        for name in names:
            params = list(self.networks[name].parameters())
            self.optimizers[name].zero_grad(set_to_none=True)
            losses[name].backward(inputs=params, retain_graph=True)

    def gate(self, losses: dict[str, torch.Tensor]) -> tuple[bool, bool]:
        """(update Dis, update Dec) under equilibrium gating (both True when it is off)."""
        cfg = self.config
        if not cfg.gating:
            return True, True
        c_real, c_fake = torch.stack([losses["d_real"], losses["c_fake"]]).tolist()  # host sync
        update_dis = min(c_real, c_fake) >= cfg.equilibrium - cfg.margin
        update_dec = max(c_real, c_fake) <= cfg.equilibrium + cfg.margin
        if not (update_dis or update_dec):
            return True, True
        return update_dis, update_dec

    def train_step(self, batch):
        losses = self.losses(batch)
        update_dis, update_dec = self.gate(losses)
        names = ["encoder"] + ["decoder"] * update_dec + ["discriminator"] * update_dis
        for opt in self.optimizers.values():  # a skipped network keeps no stale gradient
            opt.zero_grad(set_to_none=True)
        self.backward(losses, names)  # every backward pass before any step
        for name in names:
            self.optimizers[name].step()
        out = {
            "loss_enc": losses["encoder"],
            "loss_dec": losses["decoder"],
            "loss_d": losses["discriminator"],
            "kl": losses["kl"],
            "feature_recon": losses["feature_recon"],
            "loss_gan": losses["gan"],
        }
        out = {k: v.detach() for k, v in out.items()}
        if self.config.gating:
            out["dis_updated"] = torch.tensor(float(update_dis), device=self.device)
            out["dec_updated"] = torch.tensor(float(update_dec), device=self.device)
        return out


@hookimpl
def bench_register_models(register):
    register("vaegan", VAEGAN)
