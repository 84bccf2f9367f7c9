"""alpha-GAN (plugins/alpha_gan.py): gradient routing, the paper's loss forms, learning.

Small networks (width 8, latent 8-16, a 32-unit code discriminator) on 32x32 synthetic images.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
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

NETS = ("encoder", "generator", "discriminator", "code_discriminator")


def small(**options):
    return make("alpha-gan", hidden=32, **options)


def unreached(loss, v, name):
    """The loss has no path at all to network ``name``'s parameters."""
    return all(g is None for g in grads_of(loss, v, name))


# -- gradient routing ------------------------------------------------------------------------


def test_each_loss_reaches_only_its_network():
    v, x = small(), images(8)
    for name in NETS:
        losses = v.losses(x)
        for opt in v.optimizers.values():
            opt.zero_grad(set_to_none=True)
        v.backward(losses, [name])
        assert nonzero([p.grad for p in params(v, name)]), name
        for other in set(NETS) - {name}:
            assert all(p.grad is None for p in params(v, other)), (name, other)


def test_terms_reach_the_networks_the_paper_says():
    v, x = small(), images(8)
    t = v.losses(x)
    # reconstruction: E and G; the code-GAN term: E only (no path to G or D at all)
    assert reaches(t["recon"], v, "encoder") and reaches(t["recon"], v, "generator")
    assert reaches(t["gan_code"], v, "encoder")
    for name in ("generator", "discriminator"):
        assert unreached(t["gan_code"], v, name)
    # The image-GAN terms and L_D do reach E through G in the graph, and L_C reaches E, so it
    # is the routing in backward() (checked above and below) that keeps them out of E's update.
    assert reaches(t["gan_image"], v, "encoder") and reaches(t["gan_image"], v, "generator")
    assert reaches(t["discriminator"], v, "encoder") and reaches(t["discriminator"], v, "generator")
    assert reaches(t["code_discriminator"], v, "encoder")
    assert unreached(t["code_discriminator"], v, "generator")


def test_train_step_applies_each_network_its_own_gradient():
    v, x = small(recon_weight=3.0), images(8)
    v.train_step(images(8, seed=1))  # a step first: gradients left over must not leak
    ref = copy_of(v)  # same parameters, optimizer moments and generator state
    records = spy_on_steps(v)
    v.train_step(x)
    assert [n for n, _ in records] == list(NETS)  # Algorithm 1's order, one step each
    assert_not_incremented_after_step(v, records)

    t = ref.losses(x)  # the same forward pass: same parameters, same prior draws
    expected = {
        "encoder": grads_of(3.0 * t["recon"] + t["gan_code"], ref, "encoder"),
        "generator": grads_of(3.0 * t["recon"] + t["gan_image"], ref, "generator"),
        "discriminator": grads_of(t["discriminator"], ref, "discriminator"),
        "code_discriminator": grads_of(t["code_discriminator"], ref, "code_discriminator"),
    }
    for name, grads in expected.items():
        assert nonzero(grads), name
        assert same(stepped_grads(records, name), grads), name
    # Not vacuous: the whole generator loss would give E a different gradient than E's own.
    assert not same(grads_of(t["generator"], ref, "encoder"), expected["encoder"])


# -- the paper's loss forms ------------------------------------------------------------------


def test_default_adversarial_term_is_the_negative_logit():
    v = small()
    assert v.config.adv_loss == "logit"
    logits = torch.tensor([-6.0, -1.5, 0.0, 0.7, 4.0], dtype=torch.float64, requires_grad=True)
    term = v.adversarial_term(logits)
    d = torch.sigmoid(logits)
    paper = (-torch.log(d) + torch.log(1 - d)).mean()  # Algorithm 1: -log D + log(1 - D)
    assert torch.allclose(term, paper) and torch.allclose(term, -logits.mean())
    (grad,) = torch.autograd.grad(term, logits)
    assert torch.allclose(grad, torch.full_like(grad, -1 / 5))  # never fades, fooled D or not

    ns = small(adv_loss="nonsaturating")
    assert torch.allclose(ns.adversarial_term(logits), -torch.log(d).mean())


def close(p, q):
    return torch.allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("adv_loss", ["logit", "nonsaturating"])
def test_losses_are_algorithm_1(adv_loss):
    v, x = small(adv_loss=adv_loss, recon_weight=2.5), images(8)
    t = v.losses(x)
    real, rec, gen = t["logits_real"], t["logits_rec"], t["logits_gen"]
    prior, code = t["logits_prior"], t["logits_code"]

    def a(logits):  # the adversarial term, written out
        return -logits.mean() if adv_loss == "logit" else -F.logsigmoid(logits).mean()

    assert close(t["gan_image"], a(rec) + a(gen))
    assert close(t["gan_code"], a(code))
    assert close(t["encoder"], 2.5 * t["recon"] + a(code))
    assert close(t["generator"], 2.5 * t["recon"] + a(rec) + a(gen))
    # real : reconstructed : sampled weighted 1 : 1 : 1; C calls the prior real, the codes fake
    log_sig = F.logsigmoid
    assert close(t["discriminator"], -(log_sig(real).mean() + log_sig(-rec).mean() + log_sig(-gen).mean()))
    assert close(t["code_discriminator"], -(log_sig(prior).mean() + log_sig(-code).mean()))


def test_bad_options_are_clear_errors():
    for options, match in (({"adv_loss": "hinge"}, "adv_loss"), ({"recon_weight": -1.0}, "recon_weight"),
                           ({"hidden": 0}, "hidden")):
        with pytest.raises(ValueError, match=match):
            make("alpha-gan", **options)


def test_encode_decode_reconstruct():
    v, x = small(), images(4)
    z = v.encode(x)
    assert z.shape == (4, 8) and z.dtype == torch.float32
    assert torch.allclose(v.reconstruct(x), v.decode(z), atol=1e-6)  # reconstruct = G(E(x))
    assert all(net.training for net in v.networks.values())


# -- learning --------------------------------------------------------------------------------


def test_each_adversarial_step_fools_its_discriminator():
    """One step of E on L_E raises C's logits on the codes; one step of G on L_G raises D's
    logits on the fakes; the other networks stay as they were."""
    for net, term in (("encoder", "gan_code"), ("generator", "gan_image")):
        v, x = small(recon_weight=0.0), images(16)  # lambda 0: the adversarial term alone
        state = v.generator.get_state()
        before = v.losses(x)
        frozen = {n: [p.detach().clone() for p in params(v, n)] for n in set(NETS) - {net}}
        v.backward(before, [net])
        v.optimizers[net].step()
        v.generator.set_state(state)  # same prior draws
        after = v.losses(x)
        assert after[term] < before[term], net  # "logit": -(mean logits) fell, so the logits rose
        if net == "encoder":
            assert after["logits_code"].mean() > before["logits_code"].mean()
        else:
            rose = after["logits_rec"].mean() + after["logits_gen"].mean()
            assert rose > before["logits_rec"].mean() + before["logits_gen"].mean()
        for n, old in frozen.items():
            assert all(torch.equal(p, q) for p, q in zip(params(v, n), old, strict=True)), n


def test_code_discriminator_leaves_chance():
    """C alone, on the codes of a fixed encoder: it learns to call prior draws real, codes fake."""
    v, x = small(latent=16, lr=1e-3), images(32)
    C = v.networks["code_discriminator"]
    fixed = v.latent(32, 16, torch.Generator().manual_seed(1))

    @torch.no_grad()
    def accuracy():  # codes in train mode, as C sees them in training
        codes = v.networks["encoder"](x)
        return 0.5 * float((C(fixed) > 0).float().mean() + (C(codes) < 0).float().mean())

    history = [accuracy()]
    assert history[0] <= 0.6  # starts at chance
    for _ in range(80):
        v.backward(v.losses(x), ["code_discriminator"])
        v.optimizers["code_discriminator"].step()
        history.append(accuracy())
        if history[-1] >= 0.85:
            break
    assert max(history) >= 0.85, history


@pytest.mark.slow
def test_reconstruction_error_halves():
    torch.manual_seed(0)
    v, x = small(latent=16, lr=1e-3), images(32)  # default lambda; a larger lr keeps it short
    l1 = lambda: float((v.reconstruct(x) - x).abs().mean())  # noqa: E731  (eval mode, as evaluated)
    start = l1()
    for step in range(1, 81):
        v.train_step(x)
        if step % 10 == 0 and step >= 40 and l1() <= start / 2:
            break
    assert l1() <= start / 2, (start, l1())
