"""WAE-MMD: the IMQ MMD estimator against a brute-force reference, gradient routing, and learning."""

from __future__ import annotations

import itertools

import pytest
import torch
from bench_plugins.wae import IMQ_SCALES, imq_mmd
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


def brute_force_mmd(q, p, sigma2):
    """The unbiased IMQ MMD^2 summed over the scales, as a float64 double loop over pairs."""
    q, p = q.double().tolist(), p.double().tolist()
    d = len(q[0])

    def k(a, b, c):
        return c / (c + sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True)))

    total = 0.0
    for s in IMQ_SCALES:
        c = s * 2.0 * d * sigma2
        qq = sum(k(q[i], q[j], c) for i, j in itertools.permutations(range(len(q)), 2))
        pp = sum(k(p[i], p[j], c) for i, j in itertools.permutations(range(len(p)), 2))
        qp = sum(k(a, b, c) for a in q for b in p)
        n, m = len(q), len(p)
        total += qq / (n * (n - 1)) + pp / (m * (m - 1)) - 2.0 * qp / (n * m)
    return total


@pytest.mark.parametrize("sigma2", [1.0, 2.5])
def test_imq_mmd_matches_a_double_loop(sigma2):
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(5, 3, generator=g) * 2 + 0.5, torch.randn(7, 3, generator=g)
    expected = brute_force_mmd(q, p, sigma2)
    assert imq_mmd(q.double(), p.double(), sigma2).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert imq_mmd(q, p, sigma2).item() == pytest.approx(expected, rel=1e-4, abs=1e-6)  # float32
    # symmetric in its two samples; differentiable (checked against finite differences)
    assert imq_mmd(p.double(), q.double(), sigma2).item() == pytest.approx(expected, rel=1e-10)
    qd = q.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: imq_mmd(a, p.double(), sigma2), (qd,))


def test_imq_mmd_is_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same_dist = imq_mmd(a, b).item()
    shifts = [imq_mmd(a, b + shift).item() for shift in (0.25, 0.5, 1.0)]
    assert abs(same_dist) < 5e-3, same_dist  # unbiased: ~0 (may be slightly negative)
    assert shifts[0] > 10 * abs(same_dist) and shifts[0] < shifts[1] < shifts[2], (same_dist, shifts)
    # the diagonals are excluded: a sample against itself gives 2 (W - 1) / n per scale, W its mean
    # off-diagonal kernel value, so slightly below 0 (the biased estimate would be exactly 0)
    assert -2 * len(IMQ_SCALES) / 400 < imq_mmd(a, a).item() < -1e-4


def test_wae_routing():
    v, x = make("wae"), images(8)
    t = v.losses(x)
    assert reaches(t["recon"], v, "encoder") and reaches(t["recon"], v, "decoder")
    assert reaches(t["mmd"], v, "encoder")
    assert all(g is None for g in grads_of(t["mmd"], v, "decoder"))  # MMD: codes only
    assert t["mmd"].item() > 0 and t["recon"].item() > 0


def test_wae_train_step_applies_the_gradient_of_its_loss():
    v, x = make("wae", lam=10.0), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)
    t = ref.losses(x)  # replayed: same parameters, same prior draws
    for name in ("encoder", "decoder"):
        expected = grads_of(t["recon"] + 10.0 * t["mmd"], ref, name)
        assert nonzero(expected)
        assert same(stepped_grads(records, name), expected), name
    # the MMD term is in the encoder's gradient (so the comparison above tests lambda)
    assert not same(grads_of(t["recon"], ref, "encoder"), grads_of(t["loss"], ref, "encoder"))


@pytest.mark.slow
def test_wae_halves_reconstruction_error_and_matches_the_prior():
    """Recon error (eval mode) halves and the codes' MMD to prior draws falls from ~1.8 to
    <= 0.1. With lam=0 the recon error falls alike but the MMD stays near 0.5-0.7: it is the
    penalty that shapes Q_Z."""
    torch.manual_seed(0)
    v, x = make("wae"), images(32)
    prior = torch.randn(256, v.config.latent, generator=torch.Generator().manual_seed(5))

    def measure():
        return float((v.reconstruct(x) - x).pow(2).mean()), float(imq_mmd(v.encode(x), prior))

    start_mse, start_mmd = measure()
    assert start_mmd > 1.0
    history = []
    for step in range(1, 121):
        v.train_step(x)
        if step % 10 == 0:
            history.append(measure())
            if history[-1][0] <= start_mse / 2 and history[-1][1] <= 0.1:
                break
    mse, mmd = history[-1]
    assert mse <= start_mse / 2 and mmd <= 0.1, (start_mse, start_mmd, history)


def test_wae_encode_decode_and_bad_options():
    v, x = make("wae"), images(4)
    z = v.encode(x)
    assert z.shape == (4, v.config.latent) and z.dtype == torch.float32
    assert torch.equal(v.decode(z), v.reconstruct(x))
    assert all(net.training for net in v.networks.values())
    with pytest.raises(ValueError, match="lam"):
        make("wae", lam=-1.0)
