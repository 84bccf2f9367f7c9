"""VAE/GAN (plugins/vaegan.py): each phase's routing, Algorithm 1's fake weighting, and gating."""

from __future__ import annotations

import pytest
import torch
from helpers import images, make, variant_class

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
