"""WGAN-GP and LSGAN: the losses against hand-computed values, gradient routing (each optimizer
applies exactly its own loss's gradient, replayed on a copy), and short learning checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from variant_checks import (  # noqa: F401
    RES,
    assert_not_incremented_after_step,
    copy_of,
    grads_of,
    images,
    make,
    nonzero,
    one_thread,
    params,
    reaches,
    same,
    spy_on_steps,
    stepped_grads,
)


def all_stepped(records, name):
    """The gradients each step of optimizer ``name`` applied, in order."""
    return [[g for _, g in entries] for n, entries in records if n == name]


def apply(v, name, grads):
    """Step network ``name``'s optimizer with the given gradients."""
    for p, g in zip(params(v, name), grads, strict=True):
        p.grad = g
    v.optimizers[name].step()


def freeze(v, name):
    """Adam with lr 0: ``train_step`` runs unchanged, network ``name`` keeps its weights."""
    for group in v.optimizers[name].param_groups:
        group["lr"] = 0.0


def thaw(v, name):
    for group in v.optimizers[name].param_groups:
        group["lr"] = v.config.lr


def batches(v, n, size):
    """Endless ``train_step``s on random batches of ``size`` from ``n`` fixed synthetic images."""
    data, picks = images(n), torch.Generator().manual_seed(0)
    while True:
        yield v.train_step(data[torch.randint(0, n, (size,), generator=picks)])


# -- WGAN-GP --------------------------------------------------------------------------------


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


# -- LSGAN ----------------------------------------------------------------------------------

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


def test_lsgan_default_is_the_papers_binary_coding():
    v = make("lsgan")
    assert v.config.coding == "binary" and (v.a, v.b, v.c) == (0.0, 1.0, 1.0)
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
