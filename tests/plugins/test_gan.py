"""DCGAN (plugins/gan.py): gradient routing and a short learning check."""

from __future__ import annotations

import pytest
import torch
from helpers import images, make

from bench.testing.probes import (
    assert_not_incremented_after_step,
    copy_of,
    grads_of,
    nonzero,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
)


def test_gan_routing():
    v, x = make("gan"), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)

    # D's step applied exactly the gradient of D's own loss ...
    G, D = ref.networks["generator"], ref.networks["discriminator"]
    fake = G(ref.latent(8, ref.config.latent))
    loss_d = ref.discriminator_loss(D(x), D(fake.detach()))
    assert not reaches(loss_d, ref, "generator")
    assert same(stepped_grads(records, "discriminator"), grads_of(loss_d, ref, "discriminator"))
    assert nonzero(stepped_grads(records, "generator"))
    # ... and the generator phase after it left D's .grad untouched.
    assert_not_incremented_after_step(v, records)


@pytest.mark.slow
def test_gan_discriminator_leaves_chance():
    v = make("gan", width=16, latent=16)
    data, fixed = images(256), images(32, seed=1)
    z = v.latent(32, 16, torch.Generator().manual_seed(1))
    G, D = v.networks["generator"], v.networks["discriminator"]

    @torch.no_grad()
    def accuracy():  # train mode, as D sees batches in training
        real, fake = D(fixed), D(G(z))
        return 0.5 * float((real > 0).float().mean() + (fake < 0).float().mean())

    picks = torch.Generator().manual_seed(0)
    history = [accuracy()]
    for _ in range(50):
        v.train_step(data[torch.randint(0, 256, (32,), generator=picks)])
        history.append(accuracy())
        if history[-1] >= 0.85:
            break
    assert max(history) >= 0.85, history
