"""DCGAN (plugins/gan.py): gradient routing and a short learning check."""

from __future__ import annotations

import pytest
import torch
from helpers import images, make

from bench.testing.probes import (
    all_stepped,
    apply,
    assert_not_incremented_after_step,
    copy_of,
    grads_of,
    nonzero,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
)


@pytest.mark.parametrize("n_dis", [1, 3])
def test_gan_routing(n_dis):
    v, x = make("gan", n_dis=n_dis), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    reported = v.train_step(x)
    # the generator phase after the D steps left D's .grad untouched
    assert_not_incremented_after_step(v, records)

    # Replay on the copy: every D step applied exactly the gradient of D's own loss, on fresh z ...
    G, D = ref.networks["generator"], ref.networks["discriminator"]
    d_steps = all_stepped(records, "discriminator")
    assert len(d_steps) == n_dis and len(all_stepped(records, "generator")) == 1
    fakes, losses_d = [], []
    for applied in d_steps:
        fakes.append(G(ref.latent(8, ref.config.latent)))
        loss_d = ref.discriminator_loss(D(x), D(fakes[-1].detach()))
        assert not reaches(loss_d, ref, "generator")
        expected = grads_of(loss_d, ref, "discriminator")
        assert same(applied, expected)
        apply(ref, "discriminator", expected)
        losses_d.append(loss_d.detach())
    if n_dis > 1:
        assert not torch.allclose(fakes[0], fakes[1])
    # ... and G's step is its loss on the last fake, scored by the updated D, into G alone.
    loss_g = ref.generator_loss(D(fakes[-1]))
    expected_g = grads_of(loss_g, ref, "generator")
    assert nonzero(expected_g) and same(stepped_grads(records, "generator"), expected_g)
    torch.testing.assert_close(reported["loss_d"], torch.stack(losses_d).mean())
    torch.testing.assert_close(reported["loss_g"], loss_g.detach())


def test_gan_resnet_defaults_are_sngans():
    """SNGAN's CIFAR ResNet setting (Miyato et al. 2018): Adam(2e-4, (0, 0.9)), n_dis 5; DCGAN's
    one D step on dcgan."""
    on_resnet = make("gan", backbone="resnet").config
    assert (on_resnet.lr, on_resnet.beta1, on_resnet.beta2, on_resnet.n_dis) == (2e-4, 0.0, 0.9, 5)
    on_dcgan = make("gan", backbone="dcgan").config
    assert (on_dcgan.beta1, on_dcgan.n_dis) == (0.5, 1)


def test_gan_refuses_no_discriminator_steps():
    with pytest.raises(ValueError, match="n_dis must be >= 1"):
        make("gan", n_dis=0)


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
