"""Gradient-routing probes for a variant's own tests: which network a loss reaches, and what
gradient each optimizer applied in a ``train_step``. bench's tests of the built-ins use them to
check each paper's update rule; a plugin author can do the same::

    from bench.testing.probes import reaches, spy_on_steps, stepped_grads
"""

from __future__ import annotations

import functools

import torch

from bench.testing.contract import through_state_dict as copy_of  # noqa: F401 (re-exported)


def params(v, name):
    return list(v.networks[name].parameters())


def grads_of(loss, v, name):
    """d loss / d (network ``name``'s parameters); None where the loss does not reach."""
    return torch.autograd.grad(loss, params(v, name), retain_graph=True, allow_unused=True)


def nonzero(grads):
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads)


def reaches(loss, v, name):
    """Whether ``loss`` gives any non-zero gradient to network ``name``."""
    return nonzero(grads_of(loss, v, name))


def same(grads_a, grads_b):
    return all(
        (a is None and b is None) or (a is not None and b is not None and torch.allclose(a, b, atol=1e-6))
        for a, b in zip(grads_a, grads_b, strict=True)
    )


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
    """The gradients optimizer ``name`` applied at its one step."""
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


def all_stepped(records, name):
    """The gradients each step of optimizer ``name`` applied, in order (``stepped_grads`` for many)."""
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
    """Undo ``freeze``: network ``name``'s learning rate back to ``v.config.lr``."""
    for group in v.optimizers[name].param_groups:
        group["lr"] = v.config.lr
