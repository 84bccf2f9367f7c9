"""VAE (plugins/vae.py): gradient routing and a short learning check."""

from __future__ import annotations

import pytest
import torch
from helpers import images, make

from bench.testing.probes import (
    assert_not_incremented_after_step,
    grads_of,
    reaches,
    spy_on_steps,
)


def test_vae_routing():
    v, x = make("vae"), images(8)
    losses = v.losses(x)
    assert reaches(losses["recon"], v, "encoder") and reaches(losses["recon"], v, "decoder")
    assert reaches(losses["kl"], v, "encoder")
    assert all(g is None for g in grads_of(losses["kl"], v, "decoder"))
    records = spy_on_steps(v)
    v.train_step(x)
    assert_not_incremented_after_step(v, records)


@pytest.mark.slow
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
