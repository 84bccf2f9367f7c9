"""WGAN-GP (plugins/wgan_gp.py): the gradient penalty on planted critics, gradient routing (each optimizer
applies exactly its own loss's gradient, replayed on a copy), and a short learning check."""

from __future__ import annotations

import pytest
import torch
from helpers import batches, images, make
from torch import nn

from bench.testing.contract import RESOLUTION as RES
from bench.testing.probes import (
    all_stepped,
    apply,
    assert_not_incremented_after_step,
    copy_of,
    freeze,
    grads_of,
    nonzero,
    params,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
    thaw,
)


class LinearCritic(nn.Module):
    """C(x) = <w, x> + 1: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, norm):
        super().__init__()
        w = torch.randn(3 * RES * RES, generator=torch.Generator().manual_seed(0))
        self.w = nn.Parameter(w * norm / w.norm())

    def forward(self, x):
        return (x.flatten(1) @ self.w + 1.0)[:, None]


class QuadraticCritic(nn.Module):
    """C(x) = 1/2 ||x||^2: its input gradient at x^ is x^ itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True)


@pytest.mark.parametrize("norm", [3.0, 1.0])
def test_wgan_gp_penalty_on_a_planted_critic_with_known_gradient_norm(norm):
    v, real, fake = make("wgan-gp"), images(4), images(4, seed=1)
    v.networks["critic"] = critic = LinearCritic(norm)
    losses = v.critic_losses(real, fake)
    w = critic.w.detach()
    expected_w = (real.flatten(1) @ w).mean() - (fake.flatten(1) @ w).mean()
    torch.testing.assert_close(losses["gradient_penalty"], torch.tensor((norm - 1) ** 2))
    torch.testing.assert_close(losses["wasserstein"], expected_w)
    torch.testing.assert_close(losses["critic"], -expected_w + 10.0 * (norm - 1) ** 2)
    # dL_C/dw: the Wasserstein part plus lambda * 2 (||w|| - 1) w / ||w|| - the penalty reaches
    # the critic's weights through the input gradient (double backpropagation).
    (grad,) = torch.autograd.grad(losses["critic"], critic.w)
    expected = fake.flatten(1).mean(0) - real.flatten(1).mean(0) + 10.0 * 2 * (norm - 1) * w / norm
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)  # penalty part: norm 20 (norm - 1)


def test_wgan_gp_penalty_interpolates_each_sample_with_its_own_eps():
    v, real, fake = make("wgan-gp"), images(6), images(6, seed=1)
    v.networks["critic"] = QuadraticCritic()
    state = v.generator.get_state()
    got = v.critic_losses(real, fake)["gradient_penalty"]
    v.generator.set_state(state)  # the same eps: one U[0, 1] per image, from the variant's generator
    eps = torch.rand(6, 1, 1, 1, generator=v.generator)
    mixed = eps * real + (1 - eps) * fake
    expected = ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("real_batch", ["reuse", "split"])
def test_wgan_gp_train_step_applies_each_network_its_own_gradient(real_batch):
    v, x = make("wgan-gp", real_batch=real_batch), images(10)
    v.train_step(images(10, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)
    records = spy_on_steps(v)
    reported = v.train_step(x)
    assert_not_incremented_after_step(v, records)  # the G phase left the critic's .grad alone

    # Replay on the copy: same weights, same optimizer state, same random draws.
    critic_steps = all_stepped(records, "critic")
    reals = ref.critic_batches(x)
    assert len(critic_steps) == len(reals) == 5
    fakes, totals = [], {"critic": 0.0, "wasserstein": 0.0, "gradient_penalty": 0.0}
    for real, applied in zip(reals, critic_steps, strict=True):
        fakes.append(ref.generated(real.shape[0]))
        losses = ref.critic_losses(real, fakes[-1])
        expected = grads_of(losses["critic"], ref, "critic")
        assert reaches(losses["gradient_penalty"], ref, "critic")
        assert same(applied, expected)
        apply(ref, "critic", expected)
        totals = {k: t + losses[k].detach() for k, t in totals.items()}
    assert not torch.allclose(fakes[0], fakes[1])  # fresh z for every critic step

    G = ref.networks["generator"]
    loss_g = ref.generator_loss(G(ref.latent(reals[0].shape[0], ref.config.latent)))
    assert reaches(loss_g, ref, "critic")  # so the routing into G alone is not vacuous
    expected_g = grads_of(loss_g, ref, "generator")
    assert nonzero(expected_g) and same(stepped_grads(records, "generator"), expected_g)
    apply(ref, "generator", expected_g)
    for name in ("critic", "generator"):
        for p, q in zip(params(v, name), params(ref, name), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for key, total in totals.items():  # the reported losses are the means over the critic steps
        torch.testing.assert_close(reported["loss_critic" if key == "critic" else key], total / 5)
    torch.testing.assert_close(reported["loss_g"], loss_g.detach())


def test_wgan_gp_critic_loss_does_not_reach_the_generator():
    v, x = make("wgan-gp"), images(4)
    fake = v.networks["generator"](v.latent(4, v.config.latent))  # attached to G's graph
    losses = v.critic_losses(x, fake)
    assert reaches(losses["critic"], v, "critic")
    assert all(g is None for g in grads_of(losses["critic"], v, "generator"))


def test_wgan_gp_split_gives_each_critic_step_its_own_images():
    v = make("wgan-gp", real_batch="split")
    x = images(10)
    chunks = v.critic_batches(x)
    assert [len(c) for c in chunks] == [2] * 5 and torch.equal(torch.cat(chunks), x)
    x = images(12)  # k = 3: 15 slots, the last slice wraps around to the first images
    chunks = v.critic_batches(x)
    assert [len(c) for c in chunks] == [3] * 5
    assert torch.equal(torch.cat(chunks), torch.cat([x, x[:3]]))
    assert [len(c) for c in v.critic_batches(images(3))] == [1] * 5  # B < n_critic still works
    reuse = make("wgan-gp")
    assert all(c is x for c in reuse.critic_batches(x))


@pytest.mark.slow
def test_wgan_gp_critic_estimate_grows_then_the_generator_closes_it():
    v = make("wgan-gp", latent=16)
    G, C = v.networks["generator"], v.networks["critic"]
    fixed, z = images(16, seed=1), v.latent(16, 16, torch.Generator().manual_seed(1))

    @torch.no_grad()
    def estimate():  # W = E[C(x)] - E[C(G(z))] on fixed images and latents
        return float(C(fixed).mean() - C(G(z)).mean())

    steps = batches(v, 64, 16)
    # G fixed: the critic alone learns to tell the data from G's samples, W grows from ~0.
    freeze(v, "generator")
    g_weights = [p.detach().clone() for p in G.parameters()]
    history = [estimate()]
    for _ in range(8):
        next(steps)
        history.append(estimate())
    assert all(torch.equal(p, q) for p, q in zip(G.parameters(), g_weights, strict=True))
    assert abs(history[0]) < 0.01 and history[-1] > 0.1, history
    assert all(b > a for a, b in zip(history, history[1:], strict=False)), history
    # Critic fixed: G's steps raise the critic's score of its samples (L_G falls), closing the gap.
    thaw(v, "generator")
    freeze(v, "critic")
    for _ in range(8):
        next(steps)
    assert estimate() < 0.8 * history[-1], (history, estimate())


def test_wgan_gp_rejects_bad_options():
    for options in ({"n_critic": 0}, {"gp_weight": -1.0}, {"real_batch": "fresh"}, {"beta2": 1.0}):
        with pytest.raises(ValueError, match="wgan-gp"):
            make("wgan-gp", **options)
