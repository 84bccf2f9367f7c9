"""WAE-MMD (Tolstikhin, Bousquet, Gelly & Schoelkopf 2018, "Wasserstein Auto-Encoders",
arXiv:1711.01558, Algorithm 2).

Networks: deterministic encoder Q = ``bench.nets.ConvEncoder`` (out_dim latent: the code
z_q = Q(x) itself, no noise) and decoder G = ``bench.nets.Decoder`` (the GAN's generator).
Prior P_Z = N(0, sigma_z^2 I) with sigma_z^2 = 1. With x ~ data (a batch of n) and n prior
draws z_p ~ P_Z, one joint update of Q and G per batch minimises

* L = c_scale * E_x[ ||x - G(Q(x))||_2^2 ]  +  lambda * MMD_k(P_Z, Q_Z)

with the squared L2 cost summed over pixels (in the [-1, 1] units of the variant boundary)
and averaged over the batch, and the unbiased estimate of the squared MMD

    MMD = 1/(n(n-1)) sum_{i!=j} k(z_q_i, z_q_j) + 1/(n(n-1)) sum_{i!=j} k(z_p_i, z_p_j)
          - 2/n^2 sum_{i,j} k(z_q_i, z_p_j)

under the inverse multiquadratic kernel k(x, y) = C / (C + ||x - y||^2), summed over the
scales C = s * 2 d_z sigma_z^2, s in {0.1, 0.2, 0.5, 1, 2, 5, 10} (``imq_mmd``). 2 d_z sigma_z^2
is the expected squared distance between two prior draws (paper, Section 4); the sum over
scales is what the authors' code does (tolstikhin/wae, ``wae.py``, ``mmd_penalty``, IMQ branch).
MMD and the reconstruction are computed in float32, outside autocast.

Defaults and where they come from:

* c_scale 0.05: the authors' code scales the squared L2 cost ('l2sq') by 0.05 (``wae.py``,
  ``reconstruction_loss``); lambda 100: their CelebA setting for WAE-MMD (paper Section 4 and
  ``configs.py`` config_celebA, the RGB, [-1, 1]-scaled DCGAN setup closest to CIFAR-sized
  images; MNIST used 10). At 32x32 the summed cost has 1/4 of CelebA-64's pixels, so the
  penalty weighs relatively more than there; lower lambda to move towards reconstructions.
* Adam(lr 1e-3, betas (0.5, 0.999)) for both networks: the paper's WAE-MMD setting (Section 4;
  ``configs.py`` notes "0.001 for WAE-MMD").
* sigma_z^2 = 1 (``pz_scale`` 1 in ``configs.py``): bench's prior is N(0, I), so ``sample``
  and the latent pictures decode the same prior the MMD matches.

Differences from the paper / code, to fit the shared backbone: encoder and decoder are the
shared DCGAN-style networks (latent 128 by default, not 64); no learning-rate schedule (the
authors' code decays it: ``lr_schedule`` 'manual' halves it after 30 epochs and divides it by
5 after 50, 'manual_smooth' lowers it 100-fold over the run); no encoder pre-training
(the code first fits the codes' mean and covariance to the prior) and no 0.01 input noise
(the code's "add_noise" encoder): the deterministic encoder of Algorithm 2.
``reconstruct(x) = G(Q(x))``; ``encode(x) = Q(x)``; ``sample`` decodes z ~ N(0, I).
"""

from __future__ import annotations

import dataclasses

import torch

from bench import LUCIC_SHARED, BackboneConfig, LogUniform, hookimpl
from bench.autoencoder import CodeAutoencoder

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # multiples of C = 2 d_z sigma_z^2 (authors' code)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n, m]`` matrix of ||a_i - b_j||^2 (expanded as the authors' code does; clamped at 0)."""
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T
    return sq.clamp_min(0.0)


def imq_mmd(z_q: torch.Tensor, z_p: torch.Tensor, sigma2: float = 1.0, scales=IMQ_SCALES) -> torch.Tensor:
    """Unbiased squared MMD between the samples ``z_q`` ``[n, d]`` and ``z_p`` ``[m, d]`` under the
    inverse multiquadratic kernel k(x, y) = C / (C + ||x - y||^2), summed over
    C = s * 2 d sigma2 for s in ``scales``: a 0-d tensor, differentiable in both inputs,
    computed in the inputs' float type (at least float32, never under autocast)."""
    n, m = z_q.shape[0], z_p.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"imq_mmd needs at least 2 samples on each side, got {n} and {m}")
    dtype = torch.promote_types(z_q.dtype, torch.float32)
    with torch.autocast(z_q.device.type, enabled=False):
        z_q, z_p = z_q.to(dtype), z_p.to(dtype)
        d_qq, d_pp = squared_distances(z_q, z_q), squared_distances(z_p, z_p)
        d_qp = squared_distances(z_q, z_p)
        base = 2.0 * z_q.shape[1] * sigma2
        stat = z_q.new_zeros(())
        for s in scales:
            c = s * base
            k_qq, k_pp = c / (c + d_qq), c / (c + d_pp)
            # diagonals excluded: the unbiased estimator
            within = (k_qq.sum() - k_qq.diagonal().sum()) / (n * (n - 1))
            within = within + (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
            stat = stat + within - 2.0 * (c / (c + d_qp)).sum() / (n * m)
        return stat


@dataclasses.dataclass
class WAEConfig(BackboneConfig):
    lam: float = 100.0  # lambda, weight of the MMD penalty (paper / configs.py, CelebA)
    c_scale: float = 0.05  # factor on the per-image summed squared L2 cost (authors' code)
    lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999


class WAE(CodeAutoencoder):
    """WAE-MMD: deterministic encoder and decoder, one joint update per batch."""

    family = "vae"
    Config = WAEConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED, "lam": LogUniform(1.0, 1000.0)}
    image_networks = ("encoder", "decoder")  # sample() uses the decoder, reconstruct() both
    generator_network = "decoder"

    sigma2 = 1.0  # prior variance sigma_z^2: bench's prior is N(0, I)

    def build(self) -> None:
        cfg = self.config
        if cfg.lam < 0 or cfg.c_scale <= 0:
            raise ValueError(f"wae: need lam >= 0 and c_scale > 0, got {cfg.lam}, {cfg.c_scale}")
        self.networks = {"encoder": self.build_encoder(cfg.latent, norm="batch"),
                         "decoder": self.build_decoder()}
        self.optimizers = self.adam_per_network()

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The codes Q(x), float32 ``[B, latent]``, in the networks' current mode, graph attached."""
        with self.autocast():
            return self.networks["encoder"](x).float()

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) as float32, in the networks' current mode, graph attached."""
        with self.autocast():
            return self.networks["decoder"](z).float()

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``loss`` (L) and its terms ``recon`` (c_scale * cost) and ``mmd``, graph attached;
        the prior draws come from the variant's generator."""
        cfg = self.config
        z_q = self.code(x)
        z_p = self.latent(x.shape[0], cfg.latent)
        recon = cfg.c_scale * (x.float() - self.generate(z_q)).pow(2).flatten(1).sum(1).mean()
        mmd = imq_mmd(z_q, z_p, self.sigma2)
        return {"loss": recon + cfg.lam * mmd, "recon": recon, "mmd": mmd}

    def train_step(self, batch):
        losses = self.losses(batch)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        losses["loss"].backward()  # reaches exactly the encoder and the decoder
        for opt in self.optimizers.values():
            opt.step()
        return {k: v.detach() for k, v in losses.items()}


@hookimpl
def bench_register_models(register):
    register("wae", WAE)
