"""Soft-IntroVAE (plugins/soft_intro_vae.py): gradient routing of the encoder and decoder steps,
the loss formulas against a float64 hand computation, and what the two steps learn."""

from __future__ import annotations

import math

import pytest
import torch
from bench_plugins.soft_intro_vae import exp_elbo, rec_error
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

NAME = "soft-intro-vae"


def frozen(v, name):
    return [p.detach().clone() for p in params(v, name)]


def unchanged(v, name, old):
    return all(torch.equal(p, q) for p, q in zip(params(v, name), old, strict=True))


# -- routing ---------------------------------------------------------------------------------


def test_train_step_applies_each_network_its_own_gradient():
    v, x = make(NAME, gamma_r=0.5), images(8)  # gamma_r large enough to show in the gradients
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)

    # Encoder step: same parameters and draws, so exactly the gradient of L_E.
    t = ref.encoder_losses(x)
    g_enc = grads_of(t["encoder"], ref, "encoder")
    assert nonzero(g_enc)
    assert same(stepped_grads(records, "encoder"), g_enc)
    # The exp terms on the fakes reach E; they also depend on Dec (through f' = Dec(z_f)),
    # so only the routing keeps them out of Dec's update (checked below).
    assert reaches(t["fake"], ref, "encoder")
    assert reaches(t["fake"], ref, "decoder")

    # Replay E's step; the decoder step that follows must not have moved E any further.
    for p, g in zip(params(ref, "encoder"), g_enc, strict=True):
        p.grad = g.clone()
    ref.optimizers["encoder"].step()
    assert all(torch.equal(p, q) for p, q in zip(params(v, "encoder"), params(ref, "encoder"), strict=True))

    # Decoder step: with the updated encoder and the next draws, exactly the gradient of L_D,
    # which has no exp term.
    d = ref.decoder_losses(x, t)
    g_dec = grads_of(d["decoder"], ref, "decoder")
    assert nonzero(g_dec)
    assert same(stepped_grads(records, "decoder"), g_dec)
    assert not same(g_dec, grads_of(d["decoder"] + t["fake"], ref, "decoder"))
    # The fakes' KL in L_D reaches Dec through E's forward pass, and E itself (x_p's term is the
    # one whose graph holds no pass of the encoder from before its step).
    assert reaches(d["kl_fake"], ref, "decoder") and reaches(d["kl_fake"], ref, "encoder")


def test_each_step_reaches_only_its_network():
    v, x = make(NAME, gamma_r=0.5), images(8)
    for opt in v.optimizers.values():
        opt.zero_grad(set_to_none=True)
    old_dec = frozen(v, "decoder")
    enc = v.encoder_losses(x)
    v._step("encoder", enc["encoder"], retain_graph=True)
    assert all(p.grad is None for p in params(v, "decoder")) and unchanged(v, "decoder", old_dec)
    old_enc, enc_grads = frozen(v, "encoder"), [p.grad.clone() for p in params(v, "encoder")]
    v._step("decoder", v.decoder_losses(x, enc)["decoder"])
    assert nonzero([p.grad for p in params(v, "decoder")]) and not unchanged(v, "decoder", old_dec)
    assert unchanged(v, "encoder", old_enc)  # the decoder's loss does not change the encoder
    assert all(torch.equal(p.grad, g) for p, g in zip(params(v, "encoder"), enc_grads, strict=True))


# -- the loss terms ----------------------------------------------------------------------------


def test_loss_helpers_by_hand():
    x, y = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    assert float(rec_error(x, y)[0]) == pytest.approx(12 * 0.25)  # [0, 1] scale: (1/2)^2 per pixel
    rec, kl = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 1.0])
    # mean exp(-2 s (beta_rec rec + beta_neg kl)), s = 0.5, beta_rec 2, beta_neg 4
    assert float(exp_elbo(rec, kl, 0.5, 2.0, 4.0)) == pytest.approx(0.5 * (math.exp(-6) + math.exp(-4)))
    # The exponent is never positive: huge ELBO gaps underflow to 0 with finite gradients.
    rec = torch.tensor([1e9, 0.0], requires_grad=True)
    value = exp_elbo(rec, torch.zeros(2), 1.0, 1.0, 1.0)
    value.backward()
    assert float(value.detach()) == pytest.approx(0.5) and torch.isfinite(rec.grad).all()


def kl64(mu, logvar):
    mu, logvar = mu.double(), logvar.double()
    return (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).sum(1)


def sse64(a, b):
    return (((a.double() - b.double()) / 2) ** 2).flatten(1).sum(1)


@pytest.mark.parametrize("gamma_r", [0.3, 0.0])
def test_losses_match_a_float64_hand_computation(gamma_r):
    w = {"beta_rec": 0.7, "beta_kl": 1.3, "beta_neg": 50.0, "gamma_r": gamma_r}
    v, x = make(NAME, **w), images(4)
    s = 1 / (3 * 32 * 32)
    assert v.scale == s
    with torch.no_grad():
        e = v.encoder_losses(x)
        d = v.decoder_losses(x, e)
    real = s * (w["beta_rec"] * sse64(x, e["x_r"]).mean() + w["beta_kl"] * kl64(e["mu"], e["logvar"]).mean())

    def expelbo(f, f2, mu, logvar):
        return torch.exp(-2 * s * (w["beta_rec"] * sse64(f, f2) + w["beta_neg"] * kl64(mu, logvar))).mean()

    fake = 0.5 * 0.5 * (expelbo(e["x_r"], e["x_rr"], e["mu_r"], e["logvar_r"])
                        + expelbo(e["x_p"], e["x_pp"], e["mu_p"], e["logvar_p"]))
    assert float(e["encoder"]) == pytest.approx(float(real + fake), rel=1e-5)
    assert 0 < float(fake) < 0.5  # the exp terms are live, not underflowed, on this input

    kl_fakes = 0.5 * (kl64(d["mu_r"], d["logvar_r"]).mean() + kl64(d["mu_p"], d["logvar_p"]).mean())
    expected = s * (w["beta_rec"] * sse64(x, e["x_r"]).mean() + w["beta_kl"] * kl_fakes)
    if gamma_r:
        rec_fakes = 0.5 * (sse64(e["x_r"], d["x_rr"]).mean() + sse64(e["x_p"], d["x_pp"]).mean())
        expected = expected + s * gamma_r * w["beta_rec"] * rec_fakes
    else:
        assert "x_rr" not in d  # the gamma_r term's decoder passes are skipped
    assert float(d["decoder"]) == pytest.approx(float(expected), rel=1e-5)


def test_invalid_weights_are_rejected():
    with pytest.raises(ValueError, match="beta_neg"):
        make(NAME, beta_neg=-1.0)


# -- learning ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_halves_reconstruction_error():
    # beta_rec 10 and lr 1e-3: the reference's beta_rec 1 on a per-image squared error in [0, 1]
    # units is a weak likelihood (sigma^2 = 1/2) that takes far more steps than a unit test has.
    torch.manual_seed(0)
    v, x = make(NAME, latent=16, beta_rec=10.0, lr=1e-3), images(16)
    mse = lambda: float((v.reconstruct(x) - x).pow(2).mean())  # noqa: E731
    start = mse()
    for step in range(1, 151):
        v.train_step(x)
        if step % 10 == 0 and mse() <= start / 2:
            break
    assert mse() <= start / 2, (start, mse())


@torch.no_grad()
def scores(v, x):
    """E's KL and negative ELBO (with beta_neg, as in its exp terms) on reals x and on fakes x_p."""
    e, c = v.encoder_losses(x), v.config
    real = kl64(e["mu"], e["logvar"]).mean(), sse64(x, e["x_r"]).mean()
    fake = kl64(e["mu_p"], e["logvar_p"]).mean(), sse64(e["x_p"], e["x_pp"]).mean()
    return [(float(kl), float(c.beta_rec * rec + c.beta_neg * kl)) for kl, rec in (real, fake)]


@pytest.mark.slow
@pytest.mark.parametrize("term", ["encoder", "real"])
def test_encoder_scores_fakes_below_reals(term):
    """The adversarial part: encoder steps on L_E (decoder frozen) push the ELBO of decoded prior
    draws below that of real images, through the KL that beta_neg weights; stepping on the real
    term alone (the control) does not. (The frozen decoder's outputs are near-constant images that
    are trivially reconstructed, so the encoder's lever is the KL, not the reconstruction.)"""
    v, x = make(NAME), images(32)
    old_dec = frozen(v, "decoder")
    (kl_real0, _), (kl_fake0, _) = scores(v, x)
    assert kl_fake0 < 2 * kl_real0  # no gap at the start
    for _ in range(30):
        v._step("encoder", v.encoder_losses(x)[term])
    assert unchanged(v, "decoder", old_dec)
    (kl_real, nelbo_real), (kl_fake, nelbo_fake) = scores(v, x)
    if term == "encoder":
        assert kl_fake > 3 * kl_real and kl_fake > 20 * kl_fake0, (kl_real, kl_fake)
        assert nelbo_fake > 2 * nelbo_real, (nelbo_real, nelbo_fake)
    else:
        assert kl_fake < 2 * kl_real and nelbo_fake < nelbo_real, (kl_real, kl_fake)


@pytest.mark.parametrize("gamma_r", [1e-8, 0.0])  # 0 takes the branch without the gamma_r passes
def test_decoder_step_lowers_the_encoders_kl_of_its_fakes(gamma_r):
    """Dec moves to fool E: with E fixed and the same draws, one decoder step on the KL part of
    L_D (beta_rec 0) lowers the KL E assigns to the decoded prior draws."""
    v, x = make(NAME, beta_rec=0.0, gamma_r=gamma_r, lr=1e-3), images(16)
    for _ in range(10):  # a few encoder steps first, so that E tells fakes apart
        v._step("encoder", v.encoder_losses(x)["encoder"])
    old_enc = frozen(v, "encoder")
    state = v.generator.get_state()
    e = v.encoder_losses(x)
    before = v.decoder_losses(x, e)
    # Both fakes' KL terms reach Dec through E's forward pass of them.
    assert reaches(before["kl_fake"], v, "decoder") and reaches(before["kl_rec"], v, "decoder")
    v._step("decoder", before["decoder"])
    v.generator.set_state(state)  # same z, z_p and eps
    with torch.no_grad():
        after = v.decoder_losses(x, v.encoder_losses(x))
    assert unchanged(v, "encoder", old_enc)
    assert float(after["kl_fake"]) < float(before["kl_fake"].detach())
    assert float(after["decoder"]) < float(before["decoder"].detach())
