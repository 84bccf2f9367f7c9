"""Checks shared by the variant tests: small variants on synthetic 32x32 images, and the
gradient-routing probes (which network a loss reaches, what gradient an optimizer applied).

    from variant_checks import make, images, reaches, grads_of, spy_on_steps, ...
"""

from __future__ import annotations

import functools
import io

import pytest
import torch

from bench.data.synthetic import synthetic_images
from bench.plugins import load_plugins

RES = 32
SMALL = {"width": 8, "latent": 8}
EXTRA = {"arvae": {"hidden": 32}, "alpha-gan": {"hidden": 32}}  # small latent discriminators


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: one thread is as fast, and far faster when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def plugins():
    return load_plugins()


def variant_class(name):
    return plugins().models.get(name).obj


def make(name, seed=0, **options):
    cls = variant_class(name)
    config = cls.Config(**{**SMALL, **EXTRA.get(name, {}), **options})
    return cls((3, RES, RES), config, seed=seed)


def images(n, seed=0):
    return synthetic_images(n, RES, seed).float() / 127.5 - 1


def params(v, name):
    return list(v.networks[name].parameters())


def grads_of(loss, v, name):
    """d loss / d (network ``name``'s parameters); None where the loss does not reach."""
    return torch.autograd.grad(loss, params(v, name), retain_graph=True, allow_unused=True)


def reaches(loss, v, name):
    """Whether ``loss`` gives any non-zero gradient to network ``name``."""
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads_of(loss, v, name))


def nonzero(grads):
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads)


def same(grads_a, grads_b):
    return all(
        (a is None and b is None) or (a is not None and b is not None and torch.allclose(a, b, atol=1e-6))
        for a, b in zip(grads_a, grads_b, strict=True)
    )


def copy_of(v):
    """An independent variant in exactly ``v``'s state (through a serialised checkpoint)."""
    buffer = io.BytesIO()
    torch.save(v.state_dict(), buffer)
    buffer.seek(0)
    other = type(v)(v.image_shape, v.config, seed=12345)  # different init, overwritten
    other.load_state_dict(torch.load(buffer, weights_only=False))
    return other


def spy_on_steps(v):
    """Record, at every optimizer step, the gradients that optimizer is about to apply."""
    records = []  # (optimizer name, [(param, grad clone)])

    def hook(opt, args, kwargs, name):
        ps = [p for group in opt.param_groups for p in group["params"]]
        records.append((name, [(p, None if p.grad is None else p.grad.clone()) for p in ps]))

    for name, opt in v.optimizers.items():
        opt.register_step_pre_hook(functools.partial(hook, name=name))
    return records


def stepped_grads(records, name):
    (grads,) = [[g for _, g in entries] for n, entries in records if n == name]
    return grads


def assert_not_incremented_after_step(v, records):
    """Each parameter's final .grad is what the last optimizer stepping it applied."""
    last = {}
    for _, entries in records:
        for p, g in entries:
            last[p] = g
    assert len(last) == sum(len(params(v, n)) for n in v.networks)
    for p, g in last.items():
        assert g is not None
        assert torch.equal(p.grad, g), "a later phase added to a gradient after its step"
