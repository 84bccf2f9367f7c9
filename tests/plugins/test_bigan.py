"""BiGAN / ALI: gradient routing of the joint discriminator's game, and learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import images, make

from bench.testing.probes import (
    assert_not_incremented_after_step,
    copy_of,
    grads_of,
    nonzero,
    params,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
)

NETS = ("encoder", "generator", "discriminator")
ENCODERS = ["deterministic", "gaussian"]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_bigan_each_loss_reaches_only_its_networks(encoder):
    v, x = make("bigan", encoder=encoder), images(8)
    phases = {"discriminator": {"discriminator"}, "encoder_generator": {"encoder", "generator"}}
    for phase, trained in phases.items():
        losses = v.losses(x)
        v.backward(losses, [phase])
        for name in NETS:
            if name in trained:
                assert nonzero([p.grad for p in params(v, name)]), (phase, name)
            else:  # never a gradient in another network's .grad, not even a zero one
                assert all(p.grad is None for p in params(v, name)), (phase, name)
    # The routing matters: unrouted, each loss would reach the other side's networks.
    t = v.losses(x)
    assert reaches(t["encoder_generator"], v, "discriminator")
    assert reaches(t["discriminator"], v, "encoder") and reaches(t["discriminator"], v, "generator")


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("preset", ["bigan", "ali"])  # batch norm in D; none, with dropout
def test_bigan_train_step_applies_each_network_its_own_gradient(encoder, preset):
    v, x = make("bigan", encoder=encoder, preset=preset), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)

    t = ref.losses(x)  # replayed: same parameters, same latents, eps and dropout masks
    d_real, d_fake = t["d_real"], t["d_fake"]
    loss_d = -F.logsigmoid(d_real).mean() - F.logsigmoid(-d_fake).mean()  # -log D, -log(1 - D)
    loss_eg = -F.logsigmoid(d_fake).mean() - F.logsigmoid(-d_real).mean()  # inverted labels
    # the values too: near d = 0 the non-saturating and minimax E/G gradients nearly coincide
    assert torch.allclose(t["discriminator"], loss_d) and torch.allclose(t["encoder_generator"], loss_eg)
    expected = {
        "discriminator": grads_of(loss_d, ref, "discriminator"),
        "encoder": grads_of(loss_eg, ref, "encoder"),
        "generator": grads_of(loss_eg, ref, "generator"),
    }
    for name, grads in expected.items():
        assert nonzero(grads), name
        assert same(stepped_grads(records, name), grads), name


def test_bigan_defaults_are_bigans_code_and_ali_a_preset():
    """BiGAN's train_gan.py: batch norm in D, no dropout, Adam(2e-4, beta1 0.5); ALI's CIFAR-10
    setting by name, with a field set explicitly winning over the preset's."""
    fields = lambda c: (c.d_norm, c.input_dropout, c.dropout, c.lr, c.beta1)  # noqa: E731
    assert fields(make("bigan").config) == ("batch", 0.0, 0.0, 2e-4, 0.5)
    assert fields(make("bigan", preset="ali").config) == ("none", 0.2, 0.5, 1e-4, 0.5)
    assert fields(make("bigan", preset="ali", lr=3e-4).config) == ("none", 0.2, 0.5, 3e-4, 0.5)


def test_bigan_dropout_is_drawn_from_the_variant_generator():
    v, x = make("bigan", preset="ali"), images(8)
    D, z = v.networks["discriminator"], v.latent(8, v.config.latent)
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    assert torch.equal(D(x, z, g()), D(x, z, g()))  # same masks from the same state
    assert not torch.equal(D(x, z, g()), D(x, z, torch.Generator().manual_seed(8)))
    D.eval()  # no dropout: deterministic, and the generator is not drawn from
    state = v.generator.get_state()
    assert torch.equal(D(x, z, v.generator), D(x, z))
    assert torch.equal(v.generator.get_state(), state)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_bigan_encoder_generator_step_fools_a_frozen_discriminator(encoder):
    v, x = make("bigan", encoder=encoder), images(16)
    for _ in range(3):
        v.train_step(images(16, seed=1))
    state = v.generator.get_state()
    before = v.losses(x)
    frozen = [p.detach().clone() for p in params(v, "discriminator")]
    v.backward(before, ["encoder_generator"])
    v.optimizers["encoder"].step()
    v.optimizers["generator"].step()
    v.generator.set_state(state)  # the same latents, eps and dropout masks
    after = v.losses(x)
    assert after["encoder_generator"] < before["encoder_generator"]
    # each side moved to fool D: generated pairs look more real, encoded pairs less
    assert after["d_fake"].mean() > before["d_fake"].mean()
    assert after["d_real"].mean() < before["d_real"].mean()
    assert all(torch.equal(p, q) for p, q in zip(params(v, "discriminator"), frozen, strict=True))


@pytest.mark.slow
def test_bigan_discriminator_leaves_chance():
    """D's loss (eval mode: no dropout) on fixed real pairs (x, E(x)) and fake pairs (G(z), z)
    falls from ln 4 ~ 1.386 (chance) below 1.2 (about 30 steps at lr 2e-4; D's logits start
    tiny under the N(0, 0.02) initialisation of its five stacked layers, so it sits at chance
    for ~20 steps first)."""
    v = make("bigan", lr=2e-4)
    data, fixed = images(128), images(32, seed=1)
    z = v.latent(32, v.config.latent, torch.Generator().manual_seed(1))

    def loss_d():
        with torch.no_grad():
            v.train(False)
            real, fake = v.logits(fixed, v.posterior(fixed)[0]), v.logits(v.generate(z), z)
            v.train(True)
        return float(F.softplus(-real).mean() + F.softplus(fake).mean())

    picks = torch.Generator().manual_seed(0)
    history = [loss_d()]
    assert abs(history[0] - 1.386) < 0.05
    for _ in range(50):
        v.train_step(data[torch.randint(0, 128, (32,), generator=picks)])
        history.append(loss_d())
        if history[-1] <= 1.2:
            break
    assert min(history) <= 1.2, history


def test_bigan_codes_and_reconstructions():
    x = images(4)
    v = make("bigan")
    z = v.encode(x)
    assert z.shape == (4, v.config.latent)
    assert torch.equal(v.decode(z), v.reconstruct(x))
    g = make("bigan", encoder="gaussian")
    mu, logvar = g.encode(x)
    assert mu.shape == logvar.shape == (4, g.config.latent)
    assert torch.equal(g.decode(mu), g.reconstruct(x))  # reconstructions decode the mean
    assert all(net.training for net in (*v.networks.values(), *g.networks.values()))
    for bad in ({"encoder": "vae"}, {"d_norm": "layer"}, {"dropout": 1.0}):
        with pytest.raises(ValueError, match="bigan"):
            make("bigan", **bad)
