"""Every built-in learns at its defaults (issue 29): 300 steps on a fixed CIFAR-10 subset (1,024
images average-pooled to 16x16) at width 8 must beat the untrained variant on
bench.testing.learning's proxies (random-feature Fréchet distance of samples; reconstruction MSE
where the variant reconstructs): one proxy below its share of the untrained value
(``LEARNS_BELOW``). A default that keeps a variant from learning fails here, not on a user's GPU."""

from __future__ import annotations

import pytest
import torch
from helpers import cifar_root, make, requires_cifar, variant_class

from bench.plugins import load_plugins
from bench.testing import make_variant
from bench.testing.learning import RandomFeatures, check_learns, learning_proxies

BUILTINS = sorted(load_plugins(entry_points=False).models.names())


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread is as fast for these networks, and far faster when the cores are busy."""
    from bench.testing.contract import one_thread

    with one_thread():
        yield


@pytest.fixture(scope="module")
def cifar_subset():
    from bench.data import open_dataset

    datasets = load_plugins(entry_points=False).datasets
    images = open_dataset(datasets, "cifar10", data_dir=str(cifar_root()), subset=1024).split("train").images
    return torch.nn.functional.avg_pool2d(images.float() / 127.5 - 1, 2)  # 16x16: a quarter of the cost


def tiny(name: str, **options):
    """``name`` at its defaults but for width 8, latent 16, 16x16 images."""
    return make_variant(variant_class(name), 0, resolution=16, width=8, latent=16, **options)


@pytest.mark.slow
@requires_cifar
@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_learns_at_its_defaults(name, cifar_subset):
    check_learns(tiny(name), cifar_subset, steps=300, batch_size=32)


@pytest.mark.slow
@requires_cifar
@pytest.mark.parametrize("name", ["gan", "vae"])
def test_a_variant_that_cannot_learn_fails_the_check(name, cifar_subset):
    """lr 1e-7: the weights barely move (batch norm's running statistics still do)."""
    with pytest.raises(AssertionError, match="did not learn in 300 steps"):
        check_learns(tiny(name, lr=1e-7), cifar_subset, steps=300, batch_size=32)


def test_the_proxy_tells_real_images_from_noise():
    """Planted: real-like images (smooth colour fields) are nearer one another than noise is."""
    g = torch.Generator().manual_seed(0)
    smooth = lambda: torch.nn.functional.interpolate(  # noqa: E731
        torch.rand(256, 3, 4, 4, generator=g) * 2 - 1, size=32, mode="bilinear")
    from bench.metrics.fidelity import fid_from_features

    f = RandomFeatures()
    real, alike, noise = smooth(), smooth(), torch.rand(256, 3, 32, 32, generator=g) * 0.2 - 0.1
    near = fid_from_features(f(alike).double(), f(real).double())
    far = fid_from_features(f(noise).double(), f(real).double())
    assert near < 0.2 * far, (near, far)


def test_learning_proxies_have_reconstruction_only_where_the_variant_reconstructs():
    x = torch.rand(16, 3, 32, 32) * 2 - 1
    assert set(learning_proxies(make("gan"), x)) == {"feature_fd"}
    assert set(learning_proxies(make("vae"), x)) == {"feature_fd", "recon_mse"}
