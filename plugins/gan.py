"""DCGAN (Radford et al. 2015, arXiv:1511.06434) with the non-saturating loss
(Goodfellow et al. 2014, arXiv:1406.2661).

Networks: generator G = ``bench.nets.Decoder``, discriminator D = ``bench.nets.ConvEncoder``
(out_dim 1, logits). With x ~ data, z ~ N(0, I), per batch:

* D step:  L_D = -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))]   (G(z) detached)
* G step:  L_G = -E[log sigmoid(D(G(z)))]                             (non-saturating)

With ``loss="hinge"`` (Miyato et al. 2018) D uses spectral norm and
L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))].

Optimizers: Adam(lr 2e-4, betas (0.5, 0.999)) for both networks, one D step per G step
(``n_dis`` 1, DCGAN's). On the ``resnet`` backbone SNGAN's setting for that network: betas
(0, 0.9) and ``n_dis`` 5, D steps on fresh z sharing the batch's real images
(``backbone_defaults``; ``bench.adversarial.AlternatingGAN``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch.nn.functional as F

from bench import LUCIC_SHARED, BackboneConfig, hookimpl
from bench.adversarial import AlternatingGAN


@dataclasses.dataclass
class GANConfig(BackboneConfig):
    loss: Literal["nonsaturating", "hinge"] = "nonsaturating"  # hinge implies spectral norm in D
    n_dis: int = 1  # D steps per G step (bench.adversarial.AlternatingGAN)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


class GAN(AlternatingGAN):
    """DCGAN, one discriminator step then one generator step per batch (``AlternatingGAN``)."""

    Config = GANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED}
    # SNGAN's setting for its CIFAR ResNet (Miyato et al. 2018, section 4: Adam lr 2e-4, betas
    # (0, 0.9), n_dis 5; Mimicry's sngan_32 trains with the same). The loss stays this variant's.
    backbone_defaults = {"resnet": {"beta1": 0.0, "beta2": 0.9, "n_dis": 5}}

    def build(self) -> None:
        cfg = self.config
        if cfg.loss not in ("nonsaturating", "hinge"):
            raise ValueError(f"gan: loss must be 'nonsaturating' or 'hinge', got {cfg.loss!r}")
        self.build_players(norm="spectral" if cfg.loss == "hinge" else "batch")

    def discriminator_loss(self, real_logits, fake_logits):
        if self.config.loss == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits):
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()


@hookimpl
def bench_register_models(register):
    register("gan", GAN)
