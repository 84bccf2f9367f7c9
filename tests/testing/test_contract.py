"""bench.testing: the contract checks run over every built-in (the same module a plugin author
runs with ``pytest --pyargs bench.testing``), and each check fails on a variant planted with the
bug it exists to catch."""

from __future__ import annotations

import pytest
import torch
from bench_plugins.gan import GAN

from bench.testing import (
    check_checkpoint_round_trip,
    check_class,
    check_one_step,
    check_resume,
    check_sampling,
    check_variant,
)
from bench.testing.test_contract import (  # noqa: F401 (collected here: the built-ins' contract tests)
    _one_thread,
    test_contract,
    test_every_plugin_loaded,
    test_other_resolutions,
)


class GlobalNoise(GAN):
    """Draws its latents from torch's global generator, not ``self.generator``: not resumable."""

    def latent(self, n, dim, generator=None):
        return torch.randn(n, dim) if generator is None else super().latent(n, dim, generator)


class Unsaved(GAN):
    """Halves its learning rate after its first step, a counter its state_dict does not save."""

    def train_step(self, batch):
        self.steps = getattr(self, "steps", 0) + 1
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.config.lr / self.steps
        return super().train_step(batch)


class Unbounded(GAN):
    def sample(self, n, generator=None):
        return super().sample(n, generator) + 1.5


class Frozen(GAN):
    """Never steps its discriminator."""

    def build(self):
        super().build()
        for group in self.optimizers["discriminator"].param_groups:
            group["lr"] = 0.0


class AttachedLoss(GAN):
    def train_step(self, batch):
        losses = super().train_step(batch)
        return {**losses, "loss_leak": self.networks["generator"](self.latent(2, self.config.latent)).mean()}


class NoFamily(GAN):
    family = "diffusion"


class WrongImageNetworks(GAN):
    image_networks = ("decoder",)


@pytest.mark.parametrize("cls, check, message", [
    (GlobalNoise, check_checkpoint_round_trip, "draw randomness from self.generator"),
    (Unsaved, check_checkpoint_round_trip, "reloaded from its state_dict stepped differently"),
    (Unsaved, check_resume, "resumed at step 2 logged other losses"),
    (Unbounded, check_sampling, "leaves \\[-1, 1\\]"),
    (Frozen, check_one_step, "network 'discriminator' did not change"),
    (AttachedLoss, check_one_step, "loss 'loss_leak'"),
    (NoFamily, check_class, "family is 'diffusion'"),
    (WrongImageNetworks, check_class, "names \\['decoder'\\]"),
], ids=lambda v: getattr(v, "__name__", None))
def test_each_check_catches_its_bug(cls, check, message):
    with pytest.raises(AssertionError, match=message):
        check(cls)


def test_check_variant_passes_a_correct_subclass_and_stops_at_the_first_failure():
    class Correct(GAN):
        pass

    check_variant(Correct)
    with pytest.raises(AssertionError, match="draw randomness"):
        check_variant(GlobalNoise)

