"""bench.backbones.dcgan: bench 0.2's DCGAN networks, unchanged (its seeded numbers repeat), their
stages per resolution and their errors. (Every registered variant training and sampling at 16x16
and 64x64 is a contract check: bench.testing.)"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from helpers import FIXTURES

from bench.backbones.dcgan import DCGAN, ConvEncoder, Decoder
from bench.plugins import load_plugins
from bench.testing.contract import make_variant, one_thread, synthetic_batch

# Made by seeded_numbers() below, run on bench 0.2 (commit 8b6877f) before backbones existed.
REFERENCE = FIXTURES / "dcgan-reference.json"
# bench 0.2's defaults where a default has changed since (issue 29): the networks must not have
BENCH_0_2_SETTINGS = {"bigan": {"preset": "ali"}, "lsgan": {"coding": "binary"}}


def seeded_numbers(cls, **settings) -> dict:
    """A variant's initial parameters (a hash), its losses over two steps and a sample's sum."""
    variant = make_variant(cls, seed=3, **settings)
    digest = hashlib.sha256()
    for _, net in sorted(variant.networks.items()):
        for key, tensor in sorted(net.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    losses = [{k: float(t) for k, t in sorted(variant.train_step(synthetic_batch(8, seed=step)).items())}
              for step in range(2)]
    sample = variant.sample(4, torch.Generator().manual_seed(1))
    return {"init_sha256": digest.hexdigest(), "losses": losses, "sample_sum": float(sample.double().sum())}


@pytest.mark.slow
def test_every_builtin_gives_bench_0_2s_numbers_on_dcgan():
    """Same parameter names, same initial values bit for bit, same losses and samples: committed
    runs resume and seeded trials repeat."""
    reference = json.loads(REFERENCE.read_text())
    with one_thread():
        models = load_plugins(entry_points=False).models
        assert sorted(reference) == sorted(models.names())
        for name, expected in reference.items():
            got = seeded_numbers(models.get(name).obj, **BENCH_0_2_SETTINGS.get(name, {}))
            assert got["init_sha256"] == expected["init_sha256"], name
            for step, (a, b) in enumerate(zip(got["losses"], expected["losses"], strict=True)):
                assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5) for k in a), \
                    (name, step, a, b)
            assert got["sample_sum"] == pytest.approx(expected["sample_sum"], rel=1e-4, abs=1e-4), name


def test_other_resolutions_add_or_remove_stages():
    assert len(Decoder(64, 8, 4).net) == len(Decoder(32, 8, 4).net) + 3  # one more stage
    assert ConvEncoder(16, 1, 4).body[0].out_channels == 4 * 4  # 8w at 4x4, one stage fewer
    for resolution in (8, 16, 64):
        images = Decoder(resolution, 8, 4)(torch.randn(2, 8))
        assert images.shape == (2, 3, resolution, resolution)
        assert ConvEncoder(resolution, 5, 4)(images).shape == (2, 5)


def test_parameter_counts_at_the_default_width():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(Decoder(32, 128, 64)) == 3_677_955 and count(ConvEncoder(32, 1, 64)) == 2_637_441


def test_between_goes_before_every_convolution_but_the_first():
    encoder = ConvEncoder(32, 1, 4, norm="none").eval()
    x, seen = torch.randn(2, 3, 32, 32), []
    h = encoder.features(x, between=lambda t: seen.append(tuple(t.shape)) or t)
    assert seen == [(2, 8, 16, 16), (2, 16, 8, 8)]
    torch.testing.assert_close(h, encoder.features(x))
    torch.testing.assert_close(encoder(x), encoder.head(h).flatten(1))


def test_unsupported_resolution_is_a_clear_error():
    with pytest.raises(ValueError, match="power of two >= 8"):
        Decoder(48)
    assert not DCGAN().supports(48) and DCGAN().supports(8)
    with pytest.raises(ValueError, match="does not support 48x48 images; it supports powers of two"):
        DCGAN().check("dcgan", 48)
    with pytest.raises(ValueError, match="has no 'layer' normalisation"):
        DCGAN().check("dcgan", 32, "layer")
