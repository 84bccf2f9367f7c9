"""LSGAN (Mao, Li, Xie, Lau, Wang, Smolley 2017, "Least Squares Generative Adversarial
Networks", arXiv:1611.04076).

Networks: as bench's DCGAN (``bench_plugins.gan.GAN``, whose training step this class keeps):
generator G = ``bench.nets.Decoder``, discriminator D = ``bench.nets.ConvEncoder`` with batch
norm and out_dim 1, its raw output used as the score (no sigmoid: the least-squares loss
replaces the sigmoid cross entropy). With x ~ data, z ~ N(0, I) and the a-b-c coding (a the
label of fakes, b of real images, c the value G wants D to give its fakes), eq. 2:

* D step:  L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]      (G(z) detached)
* G step:  L_G = 1/2 E[(D(G(z)) - c)^2]                          (reaches G only)

``coding`` (section 3.2.2, "Parameters Selection"):

* ``"pearson"`` (default): a = -1, b = 1, c = 0, eq. 8 - b - c = 1 and b - a = 2, the coding under
  which minimising eq. 2 minimises the Pearson chi^2 divergence between p_data + p_g and 2 p_g
  (section 3.2.1). The authors' later DCGAN-architecture code uses it (xudonmao/improved_LSGAN,
  ``cats/arch.py`` ``loss_l2``: D's targets +1 / -1, G's 0), with the journal version of the
  paper (Mao et al., "On the Effectiveness of Least Squares Generative Adversarial Networks",
  TPAMI 2019, arXiv:1712.06391).
* ``"binary"``: a = 0, b = c = 1, eq. 9 - the 0-1 coding, G asks D to call its samples real
  (c = b). The conference paper finds eq. 8 and eq. 9 perform alike and uses eq. 9 in its
  experiments, as does its code (xudonmao/LSGAN, ``vgg.py`` / ``mcgan.py`` ``loss_l2``).

Why eq. 8 is the default (issue 29's probe, CIFAR-10, bench's DCGAN networks at width 32, batch
64, FID on 500 samples): with eq. 9 every trajectory tried (six, and a plain PyTorch loop on the
same networks) stays in the shared-texture phase until step 500-1000 (FID 416 / 347 / 337 at
500 / 1000 / 1500 steps); with eq. 8 it leaves that phase by step 250-500 in 3 of 3 seeds
(347 / 336 / 305). DCGAN's loss reached 313 / 258 / 210 on the same networks.

Optimizers: Adam(lr 2e-4, betas (0.5, 0.999)) for both networks. The paper follows DCGAN for
beta1 = 0.5 (section 4.1) and uses lr 2e-4 with its DCGAN-architecture comparisons (the authors'
``stability_comparison/*/train.py``); its 112x112 scene models, a larger VGG-style architecture
that bench does not have, used lr 1e-3 (``train_lsun.py``). beta2 is TensorFlow's default 0.999.

Differences from the paper, to fit the shared backbone: the DCGAN networks of ``bench.nets``
instead of the paper's scene architecture (section 3.3); z ~ N(0, I) as every bench variant
(the authors' code draws U(-1, 1)); means over the batch (the authors' code sums
``tf.nn.l2_loss`` over it, a scale Adam mostly ignores). As in the authors' code, the G step
scores the same G(z) the D step saw (``bench.adversarial.AlternatingGAN``), against the updated D.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from bench import LUCIC_SHARED, BackboneConfig, hookimpl
from bench.adversarial import AlternatingGAN

# coding -> (a, b, c): the fake label, the real label, the value G wants D to give its fakes
CODINGS = {"binary": (0.0, 1.0, 1.0), "pearson": (-1.0, 1.0, 0.0)}


@dataclasses.dataclass
class LSGANConfig(BackboneConfig):
    coding: Literal["binary", "pearson"] = "pearson"  # eq. 8 (a=-1, b=1, c=0) or eq. 9 (a=0, b=c=1)
    n_dis: int = 1  # D steps per G step (bench.adversarial.AlternatingGAN)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


class LSGAN(AlternatingGAN):
    """DCGAN's step (one D step, then one G step per batch) with the least-squares losses."""

    Config = LSGANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED}

    def build(self) -> None:
        cfg = self.config
        if cfg.coding not in CODINGS:
            raise ValueError(f"lsgan: coding must be 'binary' or 'pearson', got {cfg.coding!r}")
        if cfg.lr <= 0 or not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
            raise ValueError(f"lsgan: need lr > 0 and betas in [0, 1), got {cfg.lr}, "
                             f"({cfg.beta1}, {cfg.beta2})")
        self.a, self.b, self.c = CODINGS[cfg.coding]
        self.build_players(norm="batch")

    # float(): the losses in float32 whatever the autocast dtype of D's output.
    def discriminator_loss(self, real_logits, fake_logits):
        real, fake = real_logits.float(), fake_logits.float()
        return 0.5 * (real - self.b).pow(2).mean() + 0.5 * (fake - self.a).pow(2).mean()

    def generator_loss(self, fake_logits):
        return 0.5 * (fake_logits.float() - self.c).pow(2).mean()


@hookimpl
def bench_register_models(register):
    register("lsgan", LSGAN)
