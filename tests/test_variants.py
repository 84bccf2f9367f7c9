"""The built-in variants: gradient routing, one training step, checkpoints, learning.

Small networks (width 8-16, latent 8-16) on 32x32 synthetic images keep this on CPU in
well under a minute.
"""

from __future__ import annotations

import functools

import pytest
import torch
from variant_checks import (  # noqa: F401  (one_thread: an autouse fixture)
    RES,
    SMALL,
    assert_not_incremented_after_step,
    copy_of,
    grads_of,
    images,
    make,
    nonzero,
    one_thread,
    params,
    plugins,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
    variant_class,
)

from bench.nets import Decoder
from bench.plugins import load_plugins

NAMES = ("gan", "vae", "vaegan", "arvae", "wgan-gp", "lsgan", "wae", "bigan", "alpha-gan", "soft-intro-vae")
FAMILY = {"gan": "gan", "vae": "vae", "vaegan": "hybrid", "arvae": "hybrid", "wgan-gp": "gan", "lsgan": "gan",
          "wae": "vae", "bigan": "hybrid", "alpha-gan": "hybrid", "soft-intro-vae": "hybrid"}
GENERATOR_ONLY = ("gan", "wgan-gp", "lsgan")  # the variants without an encoder


# -- registration ------------------------------------------------------------------------


def test_builtins_register_through_the_hook():
    p = plugins()
    assert p.failures == []
    for name in NAMES:
        entry = p.models.get(name)
        assert entry.plugin == "bench_plugins." + name.replace("-", "_") and entry.source == "built-in"
        cls = entry.obj
        assert cls.family == FAMILY[name]
        assert cls.has_encoder() == (name not in GENERATOR_ONLY)
        assert cls.image_networks, f"{name} declares no image networks (--ema averages those)"
        # shared backbone defaults: every decoder is the GAN's generator
        assert (cls.Config().width, cls.Config().latent) == (64, 128)


@pytest.mark.parametrize("name", NAMES)
def test_decoder_is_the_gan_generator(name):
    v = make(name)
    assert set(v.image_networks) <= set(v.networks)
    decoder = v.networks["generator" if "generator" in v.networks else "decoder"]
    assert type(decoder) is Decoder
    reference = Decoder(RES, SMALL["latent"], SMALL["width"])
    assert [t.shape for t in decoder.state_dict().values()] == [
        t.shape for t in reference.state_dict().values()
    ]


# -- gradient routing ------------------------------------------------------------------------


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


def test_vae_routing():
    v, x = make("vae"), images(8)
    losses = v.losses(x)
    assert reaches(losses["recon"], v, "encoder") and reaches(losses["recon"], v, "decoder")
    assert reaches(losses["kl"], v, "encoder")
    assert all(g is None for g in grads_of(losses["kl"], v, "decoder"))
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)


def test_vaegan_each_phase_reaches_only_its_network():
    v, x = make("vaegan", gamma=1.0), images(8)
    nets = ("encoder", "decoder", "discriminator")
    for name in nets:
        losses = v.losses(x)
        for opt in v.optimizers.values():
            opt.zero_grad(set_to_none=True)
        v.backward(losses, [name])
        assert nonzero([p.grad for p in params(v, name)])
        for other in set(nets) - {name}:
            assert all(p.grad is None for p in params(v, other)), (name, other)


def test_vaegan_train_step_applies_each_network_its_own_gradient():
    v, x = make("vaegan", gamma=0.5), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)

    t = ref.losses(x)  # the same forward pass: same parameters, same random draws
    expected = {
        "encoder": grads_of(t["kl"] + t["feature_recon"], ref, "encoder"),
        "decoder": grads_of(0.5 * t["feature_recon"] + t["gan"], ref, "decoder"),
        "discriminator": grads_of(t["d_real"] + t["d_fake"], ref, "discriminator"),
    }
    for name, grads in expected.items():
        assert nonzero(grads)
        assert same(stepped_grads(records, name), grads), name
    # The routing matters: unrouted, the GAN terms would reach the encoder (and the
    # discriminator's loss the encoder and decoder), so the equalities above are not vacuous.
    assert reaches(t["gan"], ref, "encoder")
    assert reaches(t["d_real"] + t["d_fake"], ref, "encoder")
    assert reaches(t["d_real"] + t["d_fake"], ref, "decoder")


@pytest.mark.parametrize("fake", ["both", "prior", "recon"])
def test_vaegan_decoder_step_fools_the_discriminator(fake):
    v, x = make("vaegan", fake=fake), images(8)
    state = v.generator.get_state()
    before = v.losses(x)
    frozen = {n: [p.detach().clone() for p in params(v, n)] for n in ("encoder", "discriminator")}
    v.backward(before, ["decoder"])
    v.optimizers["decoder"].step()
    v.generator.set_state(state)  # same eps and prior draws
    after = v.losses(x)
    # D's output on the decoded samples rose: the decoder moved to fool D, not to help it.
    assert after["logits_fake"].mean() > before["logits_fake"].mean()
    assert after["d_fake"] > before["d_fake"]
    for n, old in frozen.items():
        assert all(torch.equal(p, q) for p, q in zip(params(v, n), old, strict=True))


@pytest.mark.parametrize("weighting", ["sum", "mean"])
def test_vaegan_fake_weighting(weighting):
    """Algorithm 1 sums the reconstructed and prior fake terms (1 : 1 : 1, the default); "mean"
    averages them (1 : 0.5 : 0.5)."""
    assert variant_class("vaegan").Config().fake_weighting == "sum"
    v, x = make("vaegan", fake_weighting=weighting), images(8)
    t = v.losses(x)
    recon, prior = t["logits_fake"][:8], t["logits_fake"][8:]
    softplus = torch.nn.functional.softplus
    terms = {"d_fake": (softplus(recon).mean(), softplus(prior).mean()),
             "gan": (softplus(-recon).mean(), softplus(-prior).mean())}
    for key, (a, b) in terms.items():
        expected = a + b if weighting == "sum" else (a + b) / 2
        torch.testing.assert_close(t[key], expected)
    torch.testing.assert_close(t["c_fake"], (terms["d_fake"][0] + terms["d_fake"][1]) / 2)
    # with one kind of fake there is nothing to weigh
    one = make("vaegan", fake="prior", fake_weighting=weighting).losses(x)
    torch.testing.assert_close(one["d_fake"], softplus(one["logits_fake"]).mean())


def test_vaegan_gating():
    v = make("vaegan", gating=True)  # equilibrium 0.68, margin 0.4
    t = torch.tensor
    assert v.gate({"d_real": t(0.1), "c_fake": t(0.7)}) == (False, True)  # Dis winning
    assert v.gate({"d_real": t(0.7), "c_fake": t(1.5)}) == (True, False)  # Dis losing
    assert v.gate({"d_real": t(0.1), "c_fake": t(1.5)}) == (True, True)  # both: update both
    assert v.gate({"d_real": t(0.6), "c_fake": t(0.8)}) == (True, True)
    assert make("vaegan").gate({"d_real": t(0.1), "c_fake": t(0.7)}) == (True, True)  # off

    x = images(8)
    for equilibrium, skipped in ((10.0, "discriminator"), (-10.0, "decoder")):
        v = make("vaegan", gating=True, equilibrium=equilibrium, margin=0.1)
        old = {n: [p.detach().clone() for p in params(v, n)] for n in v.networks}
        losses = v.train_step(x)
        assert float(losses["dis_updated"]) == float(skipped != "discriminator")
        assert float(losses["dec_updated"]) == float(skipped != "decoder")
        for n in v.networks:
            unchanged = all(torch.equal(p, q) for p, q in zip(params(v, n), old[n], strict=True))
            assert unchanged == (n == skipped), n


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


# -- one training step, sampling, checkpoints -------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_one_step(name):
    v, x = make(name), images(8)
    old = {n: [p.detach().clone() for p in params(v, n)] for n in v.networks}
    losses = v.train_step(x)
    assert losses
    for key, value in losses.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert not value.requires_grad and value.is_floating_point(), key
        assert torch.isfinite(value), key
    for n, net in v.networks.items():
        assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), old[n], strict=True)), n

    samples = v.sample(5)
    assert samples.shape == (5, 3, RES, RES) and samples.dtype == torch.float32
    assert samples.min() >= -1 and samples.max() <= 1
    g = functools.partial(torch.Generator().manual_seed, 3)
    assert torch.equal(v.sample(4, generator=g()), v.sample(4, generator=g()))
    assert all(net.training for net in v.networks.values())  # sample restored train mode

    assert hasattr(v, "reconstruct") == type(v).has_encoder() == (name not in GENERATOR_ONLY)
    if name not in GENERATOR_ONLY:
        recon = v.reconstruct(x[:3])
        assert recon.shape == (3, 3, RES, RES) and recon.min() >= -1 and recon.max() <= 1
        assert all(net.training for net in v.networks.values())


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name):
    batches = [images(8, seed) for seed in range(3)]
    a, b = make(name), make(name)  # same seed: same run
    for batch in batches[:2]:
        losses_a, losses_b = a.train_step(batch), b.train_step(batch)
        assert all(torch.equal(losses_a[k], losses_b[k]) for k in losses_a)
    resumed = copy_of(a)  # saved and loaded mid-way
    expected, got = b.train_step(batches[2]), resumed.train_step(batches[2])
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), (expected, got)


# -- learning -------------------------------------------------------------------------------


def test_vae_halves_reconstruction_error():
    torch.manual_seed(0)
    v, x = make("vae", width=16, latent=16), images(64)
    mse = lambda: float((v.reconstruct(x) - x).pow(2).mean())  # noqa: E731
    start = mse()
    for step in range(1, 201):
        v.train_step(x)
        if step % 25 == 0 and mse() <= start / 2:
            break
    assert mse() <= start / 2, (start, mse())


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


@pytest.mark.parametrize("resolution", [16, 64])
def test_other_resolutions_add_or_remove_stages(resolution):
    """Every variant trains and samples at other square powers of two."""
    from bench.nets import ConvEncoder

    assert len(Decoder(64, 8, 4).net) == len(Decoder(32, 8, 4).net) + 3  # one more stage
    assert ConvEncoder(16, 1, 4).body[0].out_channels == 4 * 4  # 8w at 4x4, one stage fewer
    batch = torch.rand(4, 3, resolution, resolution) * 2 - 1
    for entry in load_plugins().models:
        cls = entry.obj
        variant = cls((3, resolution, resolution), cls.Config(width=4, latent=8), "cpu", 0)
        losses = variant.train_step(batch)
        assert all(torch.isfinite(v) for v in losses.values())
        assert variant.sample(3).shape == (3, 3, resolution, resolution)


def test_unsupported_resolution_is_a_clear_error():
    with pytest.raises(ValueError, match="power of two >= 8"):
        Decoder(48)
