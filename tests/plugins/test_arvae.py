"""AR-VAE (plugins/arvae.py): routing of the reconstruction and latent-adversarial phases."""

from __future__ import annotations

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


def test_arvae_routing():
    v, x = make("arvae", kl_weight=0.1), images(8)
    rec = v.reconstruction_loss(x)
    assert reaches(rec["loss"], v, "encoder") and reaches(rec["loss"], v, "decoder")
    assert all(g is None for g in grads_of(rec["loss"], v, "latent_discriminator"))
    z_q = v.codes(x)
    loss_d = v.discriminator_loss(v.latent(8, v.config.latent), z_q)
    assert reaches(loss_d, v, "latent_discriminator")
    assert all(g is None for g in grads_of(loss_d, v, "encoder"))
    adv = v.adversarial_loss(z_q)
    assert reaches(adv, v, "encoder")
    for loss in (loss_d, adv):  # the latent discriminator never reaches the decoder
        assert all(g is None for g in grads_of(loss, v, "decoder"))


def test_arvae_train_step_routing():
    v, x = make("arvae", kl_weight=0.1), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert [n for n, _ in records] == ["encoder", "decoder", "latent_discriminator", "encoder_adversarial"]
    assert_not_incremented_after_step(v, records)
    rec = ref.reconstruction_loss(x)["loss"]  # phase 1 replayed: same state and draws
    assert same(stepped_grads(records, "decoder"), grads_of(rec, ref, "decoder"))
    assert same(stepped_grads(records, "encoder"), grads_of(rec, ref, "encoder"))
    assert nonzero(stepped_grads(records, "encoder_adversarial"))
    assert nonzero(stepped_grads(records, "latent_discriminator"))


def test_arvae_encoder_step_fools_the_latent_discriminator():
    v, x = make("arvae"), images(8)
    state = v.generator.get_state()
    before = v.adversarial_loss(v.codes(x))
    opt = v.optimizers["encoder_adversarial"]
    opt.zero_grad(set_to_none=True)
    before.backward(inputs=params(v, "encoder"))
    assert all(p.grad is None for p in params(v, "latent_discriminator"))
    opt.step()
    v.generator.set_state(state)
    assert v.adversarial_loss(v.codes(x)) < before
