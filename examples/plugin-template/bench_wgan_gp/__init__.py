"""WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028) written as a third-party bench plugin: the
template's GAN example, registered as ``wgan-gp-example``.

bench has its own built-in ``wgan-gp`` (``plugins/wgan_gp.py``): use that one to benchmark
WGAN-GP. This copy is kept short to show how a plugin is put together; the comments marked
"Plugin:" say what bench asks of a variant and why.

Networks: generator G = the run's backbone's decoder; critic C = its encoder without
normalisation (the gradient penalty is per sample, which batch norm breaks). On any backbone:
``bench run --plugin ... --backbone resnet`` puts it on SNGAN's ResNet like the built-ins.

* critic, ``n_critic`` times per batch (fresh z each time, the same real batch):
  L_C = E[C(G(z))] - E[C(x)] + lambda * E[(||grad_x^ C(x^)||_2 - 1)^2],
  x^ = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample
* generator: L_G = -E[C(G(z))]

Adam(lr 1e-4, betas (0.0, 0.9)) for both, as in the paper.
"""

from __future__ import annotations

import dataclasses

import torch

# Plugin: ``bench.Variant`` is the contract; ``hookimpl`` marks the function bench calls to
# register models. Building on the run's backbone keeps a comparison with the built-ins fair.
from bench import LUCIC_SHARED, BackboneConfig, IntUniform, LogUniform, Variant, hookimpl


# Plugin: the options. A dataclass whose every field has a default; subclassing BackboneConfig
# adds ``width``, ``latent`` and ``backbone`` (what --backbone sets). Each annotation is how
# ``--set wgan-gp-example.n_critic=3`` text is converted (int, float, bool, str, Literal[...]), so
# annotate every field.
@dataclasses.dataclass
class WGANGPConfig(BackboneConfig):
    n_critic: int = 5  # critic updates per generator update
    gp_weight: float = 10.0  # lambda
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9


class WGANGP(Variant):
    # Plugin: ``family`` groups the variant in reports ("gan", "vae" or "hybrid");
    # ``image_networks`` names the networks the evaluated images come from (``--ema`` averages
    # exactly these).
    family = "gan"
    Config = WGANGPConfig
    image_networks = ("generator",)
    # Plugin: ``search_space`` is what ``bench sweep`` draws each setting from (config field ->
    # distribution); the fields left out stay at their defaults. Reuse the shared ranges so the
    # study stays fair, and add your own fields' ranges.
    search_space = {**LUCIC_SHARED, "n_critic": IntUniform(1, 5), "gp_weight": LogUniform(0.1, 100.0)}

    def build(self):
        # Plugin: fill ``self.networks`` and ``self.optimizers`` (both dicts by name); the base
        # class moves the networks to the device and checkpoints both.
        cfg = self.config
        if cfg.n_critic < 1:  # Plugin: check options here, with a message that says what is wrong
            raise ValueError(f"wgan-gp-example: n_critic must be >= 1, got {cfg.n_critic}")
        # Plugin: ``build_decoder`` / ``build_encoder`` make the networks of the backbone the
        # config names (dcgan unless --backbone says otherwise), for these images.
        self.networks = {"generator": self.build_decoder(), "critic": self.build_encoder(1, norm="none")}
        # Plugin: ``self.adam`` picks the fused kernel on CUDA.
        self.optimizers = {
            name: self.adam(net.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
            for name, net in self.networks.items()
        }

    def gradient_penalty(self, real, fake):
        # Plugin: every random draw comes from ``self.generator``, which the checkpoint saves,
        # so a resumed run draws exactly what an uninterrupted one would.
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=self.generator)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        with self.autocast():
            score = self.networks["critic"](mixed).float()
        # create_graph=True: the penalty itself is differentiated into the critic's weights.
        (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def train_step(self, batch):
        # Plugin: ``batch`` is float in [-1, 1], [B, 3, H, W], already on the device.
        G, C = self.networks["generator"], self.networks["critic"]
        opt_g, opt_c = self.optimizers["generator"], self.optimizers["critic"]
        n = batch.shape[0]
        for _ in range(self.config.n_critic):
            # Plugin: forward passes inside ``self.autocast()`` run in bf16 on CUDA when the
            # trainer turns it on, and do nothing on the CPU.
            with torch.no_grad(), self.autocast():
                fake = G(self.latent(n, self.config.latent)).float()
            with self.autocast():
                loss_c = C(fake).float().mean() - C(batch).float().mean()
            loss_c = loss_c + self.config.gp_weight * self.gradient_penalty(batch, fake)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward(inputs=list(C.parameters()))
            opt_c.step()
        with self.autocast():
            loss_g = -C(G(self.latent(n, self.config.latent))).float().mean()
        # Plugin: ``inputs=`` keeps each loss in its own network: the generator's loss must not
        # add to the critic's gradients.
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_g.step()
        # Plugin: return detached 0-d tensors and leave them on the device; the trainer reads
        # them only when it logs, so a step never waits for the GPU.
        return {"loss_critic": loss_c.detach(), "loss_g": loss_g.detach()}

    def sample(self, n, generator=None):
        # Plugin: pass the evaluator's ``generator`` on to ``self.latent``, so evaluation never
        # draws from (and so never changes) the training generator; ``eval_in_chunks`` runs the
        # named networks in eval mode, in chunks, and restores their modes.
        G = self.networks["generator"]
        return self.eval_in_chunks(
            ["generator"], lambda i, m: G(self.latent(m, self.config.latent, generator)).float(), n
        )

    def decode(self, z):
        """Images for the latents ``z`` ``[n, latent]`` (float [-1, 1], ``[n, 3, H, W]``): G in eval
        mode, as ``sample``. Optional; bench uses it for the latent interpolation pictures."""
        G, z = self.networks["generator"], z.to(self.device)
        return self.eval_in_chunks(["generator"], lambda i, m: G(z[i : i + m]).float(), len(z))


# Plugin: the hook. bench calls it with ``register``; the name must be free: "wgan-gp" belongs
# to the built-in, and a plugin cannot take a name registered before it (bench then skips the
# whole plugin and says so).
@hookimpl
def bench_register_models(register):
    register("wgan-gp-example", WGANGP)
