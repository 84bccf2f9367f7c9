"""LSGAN (plugins/lsgan.py): the losses against hand-computed values, gradient routing, and a short
learning check."""

from __future__ import annotations

import pytest
import torch
from helpers import batches, images, make

from bench.testing.probes import (
    apply,
    assert_not_incremented_after_step,
    copy_of,
    freeze,
    grads_of,
    nonzero,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
    thaw,
)

REAL_LOGITS = torch.tensor([[0.5], [2.0]])


FAKE_LOGITS = torch.tensor([[-1.0], [0.5]])


@pytest.mark.parametrize(
    "coding, loss_d, loss_g",
    [
        # a=0, b=c=1: 1/2 mean((.5-1)^2, (2-1)^2) + 1/2 mean((-1-0)^2, (.5-0)^2) = .3125 + .3125;
        # 1/2 mean((-1-1)^2, (.5-1)^2) = 1/2 * 4.25 / 2
        ("binary", 0.625, 1.0625),
        # a=-1, b=1, c=0: .3125 + 1/2 mean((-1+1)^2, (.5+1)^2) = .3125 + .5625;
        # 1/2 mean((-1)^2, .5^2) = 1/2 * 1.25 / 2
        ("pearson", 0.875, 0.3125),
    ],
)
def test_lsgan_losses_match_hand_computed_values(coding, loss_d, loss_g):
    v = make("lsgan", coding=coding)
    assert float(v.discriminator_loss(REAL_LOGITS, FAKE_LOGITS)) == pytest.approx(loss_d)
    assert float(v.generator_loss(FAKE_LOGITS)) == pytest.approx(loss_g)


def test_lsgan_default_is_the_authors_later_pearson_coding():
    v = make("lsgan")
    assert v.config.coding == "pearson" and (v.a, v.b, v.c) == (-1.0, 1.0, 0.0)
    assert (v.config.lr, v.config.beta1, v.config.beta2) == (2e-4, 0.5, 0.999)


@pytest.mark.parametrize("coding", ["binary", "pearson"])
def test_lsgan_train_step_applies_each_network_its_own_gradient(coding):
    v, x = make("lsgan", coding=coding), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)  # the G phase left D's .grad alone

    G, D = ref.networks["generator"], ref.networks["discriminator"]
    fake = G(ref.latent(8, ref.config.latent))
    loss_d = ref.discriminator_loss(D(x), D(fake.detach()))
    assert not reaches(loss_d, ref, "generator")
    expected_d = grads_of(loss_d, ref, "discriminator")
    assert nonzero(expected_d) and same(stepped_grads(records, "discriminator"), expected_d)
    apply(ref, "discriminator", expected_d)
    loss_g = ref.generator_loss(D(fake))  # against the updated D, as the step does
    assert reaches(loss_g, ref, "discriminator")  # so the routing into G alone is not vacuous
    expected_g = grads_of(loss_g, ref, "generator")
    assert nonzero(expected_g) and same(stepped_grads(records, "generator"), expected_g)


@pytest.mark.dcgan
@pytest.mark.parametrize("coding", ["binary", "pearson"])
def test_lsgan_discriminator_leaves_chance_then_the_generator_loss_falls(coding):
    v = make("lsgan", coding=coding, latent=16)
    G, D = v.networks["generator"], v.networks["discriminator"]
    fixed, z = images(16, seed=1), v.latent(16, 16, torch.Generator().manual_seed(1))
    middle = (v.a + v.b) / 2  # the decision threshold between the fake and the real label

    @torch.no_grad()
    def accuracy():  # train mode, as D sees batches in training
        return 0.5 * float((D(fixed) > middle).float().mean() + (D(G(z)) < middle).float().mean())

    @torch.no_grad()
    def losses():  # L_D and L_G on fixed images and latents
        real, fake = D(fixed), D(G(z))
        return float(v.discriminator_loss(real, fake)), float(v.generator_loss(fake))

    steps = batches(v, 64, 16)
    # G fixed: D learns to label real b and fake a, beating the best constant guess (a + b) / 2,
    # whose L_D is (b - a)^2 / 4.
    freeze(v, "generator")
    history = [accuracy()]
    for _ in range(15):
        next(steps)
        history.append(accuracy())
    assert history[0] < 0.6 and max(history) >= 0.85, history
    loss_d, before = losses()
    assert loss_d < 0.5 * (v.b - v.a) ** 2 / 4, loss_d
    # D fixed: G's steps move D's score of its samples toward c, so L_G against this D falls.
    thaw(v, "generator")
    freeze(v, "discriminator")
    for _ in range(10):
        next(steps)
    assert losses()[1] < 0.5 * before, (before, losses())


def test_lsgan_rejects_an_unknown_coding():
    with pytest.raises(ValueError, match="lsgan: coding"):
        make("lsgan", coding="hinge")
