"""BiGAN / ALI: a GAN whose discriminator sees (image, code) pairs (Donahue, Kraehenbuehl &
Darrell 2017, "Adversarial Feature Learning", arXiv:1605.09782; Dumoulin, Belghazi, Poole,
Mastropietro, Lamb, Arjovsky & Courville 2017, "Adversarially Learned Inference",
arXiv:1606.00704).

Networks: encoder E = ``bench.nets.ConvEncoder`` (batch norm), generator G =
``bench.nets.Decoder`` and a joint discriminator D(x, z) built here in ALI's shape
(``JointDiscriminator``): an x-branch (a ``ConvEncoder`` whose 4x4 head maps the 4x4 features
to a vector of 8*width values, then LeakyReLU), a z-branch MLP (latent -> 8w -> 8w), and a joint
MLP on their concatenation (16w -> 16w -> 16w -> 1 logit). With x ~ data, z ~ N(0, I),
z_hat = E(x) and d(., .) the logit of D:

* D:      L_D  = -E[log sigmoid(d(x, z_hat))] - E[log(1 - sigmoid(d(G(z), z)))]
* E, G:   L_EG = -E[log sigmoid(d(G(z), z))] - E[log(1 - sigmoid(d(x, z_hat)))]
  (the non-saturating "inverted labels" form both papers' code trains with; ALI's
  ``ALI.compute_losses``: softplus(d_real) + softplus(-d_fake))

Encoder (``encoder``): "deterministic" (default): z_hat = E(x), BiGAN's encoder; "gaussian":
E outputs mu and log sigma^2 (2*latent values) and z_hat = mu + sigma * eps, ALI's encoder
(reparameterised, so L_EG reaches E through the draw). ALI reports that the choice makes little
difference when G is deterministic, as the stochastic encoder becomes nearly deterministic
(ALI, Related Work); the deterministic one is cheaper and gives exact codes. ``encode`` returns
the code (gaussian: (mu, logvar)); ``reconstruct(x) = G(E(x))`` (gaussian: G(mu)).

Update (both papers' code): one forward pass, then every backward pass before any step, each
loss into its own networks only (``backward(inputs=...)``): L_D into D, L_EG into E and G, so
all three updates are computed at the same parameters (ALI ``ali_algorithm``; BiGAN
``train_gan.py`` updates D and G/E together unless ``--no_update_both``).

Defaults (``preset="bigan"``): BiGAN's own code (jeffdonahue/bigan ``train_gan.py``): batch norm
in D's x-branch, no dropout (``--net_fc_drop`` 0), Adam(lr 2e-4, beta1 0.5; beta2 0.999). Real and
generated pairs go through D in separate passes, as that code's default (``--cat_inputs`` off),
so the batch statistics of one never normalise the other.

``preset="ali"``: ALI's CIFAR-10 setting (paper appendix A, CIFAR-10 table;
``experiments/ali_cifar10.py``): no normalisation in D, dropout 0.2 on the inputs of both
branches and 0.5 on the input of every later layer of D (x-branch convolutions after the first,
second z layer, joint layers), Adam(lr 1e-4, beta1 0.5; blocks' default beta2 0.999). Fields set
explicitly win over the preset's. "spectral" is offered in D too. Dropout masks are drawn from
the variant's generator. D's logits on a pair without batch norm depend only on that pair: one
pass over real and generated pairs together.

Why BiGAN's setting is the default (issue 29's probe, CIFAR-10, width 32, batch 64): on the shared
DCGAN-style networks ALI's unnormalised D gives real pairs logits up to about 120 early, the
samples stay checkerboards until step 625-750 and carry a strong periodic pattern at 1,500 (FID
406 on 500 samples); BiGAN's setting gives image-like samples by step 250-500 and FID 233 at
1,500. ALI's setting was made for its maxout networks and 1,000 epochs, which bench does not have.

Differences from the papers, to fit the shared backbone: E, G and D's x-branch are the shared
DCGAN-style networks (LeakyReLU 0.2 and stride-2 4x4 convolutions, not ALI's maxout units and
stride-1 layers; DCGAN N(0, 0.02) initialisation, not ALI's N(0, 0.01)); z ~ N(0, I) (BiGAN used
uniform noise); no weight decay (BiGAN used 2.5e-5); no learning-rate decay.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench import LUCIC_SHARED, BackboneConfig, hookimpl
from bench.autoencoder import LOGVAR_RANGE, CodeAutoencoder
from bench.backbones.dcgan import ConvEncoder, dcgan_init

ENCODERS = ("deterministic", "gaussian")
D_NORMS = ("none", "batch", "spectral")


def dropout(h: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with the mask drawn from ``generator`` (torch's own ``F.dropout`` takes
    none, and a checkpoint must resume the same masks)."""
    if p == 0.0:
        return h
    keep = torch.rand(h.shape, device=h.device, generator=generator) >= p
    return h * keep.to(h.dtype) / (1.0 - p)


class JointDiscriminator(nn.Module):
    """ALI's D(x, z): x-branch (the backbone's encoder with ``hidden`` outputs) and z-branch MLP,
    joint MLP on their concatenation: ``([B, 3, R, R], [B, latent]) -> [B, 1]`` logits."""

    def __init__(self, x_branch: nn.Module, latent: int, hidden: int,
                 input_dropout: float = 0.2, hidden_dropout: float = 0.5):
        super().__init__()
        self.x_branch = x_branch
        self.z_branch = nn.ModuleList([nn.Linear(latent, hidden), nn.Linear(hidden, hidden)])
        self.joint = nn.ModuleList(
            [nn.Linear(2 * hidden, 2 * hidden), nn.Linear(2 * hidden, 2 * hidden), nn.Linear(2 * hidden, 1)]
        )
        self.input_dropout, self.hidden_dropout = input_dropout, hidden_dropout
        # DCGAN's N(0, 0.02) for the MLPs. On dcgan the x-branch is drawn a second time, as in
        # bench 0.2 (whose seeded runs must repeat); another backbone keeps its own initialisation.
        for part in ((x_branch,) if isinstance(x_branch, ConvEncoder) else ()) + (self.z_branch, self.joint):
            dcgan_init(part)

    def forward(self, x: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None = None):
        """Logits ``[B, 1]``; in training mode dropout draws its masks from ``generator``."""
        p_in, p = (self.input_dropout, self.hidden_dropout) if self.training else (0.0, 0.0)
        h = self.x_branch.features(dropout(x, p_in, generator), lambda t: dropout(t, p, generator))
        hx = F.leaky_relu(self.x_branch.head(dropout(h, p, generator)).flatten(1), 0.2)
        hz = z.to(hx.dtype)
        for i, layer in enumerate(self.z_branch):
            hz = F.leaky_relu(layer(dropout(hz, p_in if i == 0 else p, generator)), 0.2)
        h = torch.cat([hx, hz], 1)
        for i, layer in enumerate(self.joint):
            h = layer(dropout(h, p, generator))
            if i < len(self.joint) - 1:
                h = F.leaky_relu(h, 0.2)
        return h


@dataclasses.dataclass
class BiGANConfig(BackboneConfig):
    encoder: Literal["deterministic", "gaussian"] = "deterministic"  # BiGAN's E, or ALI's q(z|x)
    preset: Literal["bigan", "ali"] = "bigan"  # whose published setting fills the fields below
    d_norm: Literal["none", "batch", "spectral"] = "batch"  # normalisation in D's x-branch (ALI: none)
    input_dropout: float = 0.0  # dropout on D's image and code inputs (ALI: 0.2)
    dropout: float = 0.0  # dropout on the inputs of D's later layers (ALI: 0.5)
    lr: float = 2e-4  # (ALI: 1e-4)
    beta1: float = 0.5
    beta2: float = 0.999


class BiGAN(CodeAutoencoder):
    """BiGAN / ALI: E, G and the joint D updated together from one forward pass per batch."""

    family = "hybrid"
    Config = BiGANConfig
    # searched by `bench sweep` (shared ranges: Lucic et al. 2018's wide search, bench.space)
    search_space = {**LUCIC_SHARED}
    image_networks = ("encoder", "generator")  # sample() uses G, reconstruct() E and G
    # each loss and the networks it trains
    PHASES: ClassVar = {"discriminator": ("discriminator",), "encoder_generator": ("encoder", "generator")}
    needs_features = True  # D's x-branch: the encoder's features(x) and head
    # ALI's CIFAR-10 setting (Dumoulin et al. 2017, appendix A); the defaults are BiGAN's code's
    presets = {"bigan": {}, "ali": {"d_norm": "none", "input_dropout": 0.2, "dropout": 0.5, "lr": 1e-4}}

    def build(self) -> None:
        cfg = self.config
        if cfg.encoder not in ENCODERS:
            raise ValueError(f"bigan: encoder must be one of {ENCODERS}, got {cfg.encoder!r}")
        if cfg.d_norm not in D_NORMS:
            raise ValueError(f"bigan: d_norm must be one of {D_NORMS}, got {cfg.d_norm!r}")
        if not (0 <= cfg.input_dropout < 1 and 0 <= cfg.dropout < 1):
            raise ValueError(f"bigan: dropout rates must be in [0, 1), got {cfg.input_dropout}, "
                             f"{cfg.dropout}")
        out = cfg.latent * (2 if cfg.encoder == "gaussian" else 1)
        hidden = 8 * cfg.width  # ALI at width 64: 512-wide branches, 1024-wide joint layers
        self.networks = {
            "encoder": self.build_encoder(out, norm="batch"),
            "generator": self.build_decoder(),
            "discriminator": JointDiscriminator(self.build_encoder(hidden, cfg.d_norm), cfg.latent, hidden,
                                                cfg.input_dropout, cfg.dropout),
        }
        self.optimizers = self.adam_per_network()

    # -- the pieces, in the networks' current mode, graph attached ---------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mu, logvar) of q(z|x) for the gaussian encoder, (E(x), None) for the deterministic."""
        with self.autocast():
            out = self.networks["encoder"](x).float()
        if self.config.encoder == "deterministic":
            return out, None
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """z_hat ~ q(z|x): E(x), or mu + sigma * eps with eps from the variant's generator."""
        mu, logvar = self.posterior(x)
        if logvar is None:
            return mu
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=self.generator)
        return mu + (0.5 * logvar).exp() * eps

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.networks["generator"](z).float()

    def logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """d(x, z) as float32 ``[B]``; dropout masks from the variant's generator."""
        with self.autocast():
            return self.networks["discriminator"](x, z, self.generator).float().flatten()

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass: ``discriminator`` (L_D) and ``encoder_generator`` (L_EG), and the
        logits ``d_real`` = d(x, E(x)), ``d_fake`` = d(G(z), z). Graph attached; each loss must
        be back-propagated into its own networks only (see :meth:`backward`)."""
        b = x.shape[0]
        z_hat = self.codes(x)
        z = self.latent(b, self.config.latent)
        fake = self.generate(z).to(x.dtype)
        if self.config.d_norm == "batch":  # BiGAN: real and generated pairs in separate batches
            d_real, d_fake = self.logits(x, z_hat), self.logits(fake, z)
        else:  # no batch statistics: one pass over both
            d = self.logits(torch.cat([x, fake]), torch.cat([z_hat, z]))
            d_real, d_fake = d[:b], d[b:]
        return {
            "discriminator": F.softplus(-d_real).mean() + F.softplus(d_fake).mean(),
            "encoder_generator": F.softplus(d_real).mean() + F.softplus(-d_fake).mean(),
            "d_real": d_real,
            "d_fake": d_fake,
        }

    def backward(self, losses: dict[str, torch.Tensor], phases=("discriminator", "encoder_generator")):
        """For each named phase, set its networks' ``.grad`` to the gradient of that phase's loss
        (L_D -> D; L_EG -> E and G), and only that; other networks' ``.grad`` stay None. The graph
        is kept, so phases can be run one at a time; no optimizer steps here."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        for phase in phases:
            params = [p for n in self.PHASES[phase] for p in self.networks[n].parameters()]
            losses[phase].backward(inputs=params, retain_graph=True)

    def train_step(self, batch):
        losses = self.losses(batch)
        self.backward(losses)  # both backward passes before any step: simultaneous updates
        for opt in self.optimizers.values():
            opt.step()
        d_real, d_fake = losses["d_real"].detach(), losses["d_fake"].detach()
        return {
            "loss_d": losses["discriminator"].detach(),
            "loss_eg": losses["encoder_generator"].detach(),
            "p_real": torch.sigmoid(d_real).mean(),  # D's mean probability of "real" on each pair
            "p_fake": torch.sigmoid(d_fake).mean(),
        }

    # -- images and codes (eval mode) -----------------------------------------------------------
    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``reconstruct`` decodes: E(x), or the posterior mean for the gaussian encoder."""
        return self.posterior(x)[0]

    def encode(self, x):
        """E(x) ``[n, latent]`` (gaussian encoder: the tuple (mu, logvar)), E in eval mode."""
        if self.config.encoder == "deterministic":
            return super().encode(x)
        x = x.to(self.device)
        stats = lambda i, m: torch.cat(self.posterior(x[i : i + m]), 1)  # noqa: E731
        return tuple(self.eval_in_chunks(["encoder"], stats, len(x)).chunk(2, dim=1))


@hookimpl
def bench_register_models(register):
    register("bigan", BiGAN)
