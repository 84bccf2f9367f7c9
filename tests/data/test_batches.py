"""bench.data.batches: on-device batches, epochs, flips and resume."""

from __future__ import annotations

import pytest
import torch

from bench.data.batches import DeviceBatches
from bench.data.synthetic import synthetic_images


def test_device_batches_cover_an_epoch_and_flip():
    images = synthetic_images(64)
    batches = DeviceBatches(images, 16, "cpu", flip=False, seed=0)
    epoch = torch.cat([next(batches) for _ in range(4)])
    expected = images.float() / 127.5 - 1
    assert epoch.min() >= -1 and epoch.max() <= 1
    # every image exactly once per epoch
    key = lambda t: sorted(t.flatten(1).sum(1).tolist())  # noqa: E731
    assert key(epoch) == pytest.approx(key(expected))
    flipped = DeviceBatches(images[:1].repeat(64, 1, 1, 1), 64, "cpu", flip=True, seed=0)
    batch = next(flipped)
    n_flipped = sum(torch.equal(b, expected[0].flip(2)) for b in batch)
    assert 16 < n_flipped < 48


def test_device_batches_state_round_trip():
    images = synthetic_images(40)
    a = DeviceBatches(images, 16, "cpu", seed=3)
    next(a)
    state = a.state_dict()
    b = DeviceBatches(images, 16, "cpu", seed=99)
    b.load_state_dict(state)
    for _ in range(5):
        assert torch.equal(next(a), next(b))


def test_batch_larger_than_dataset_is_refused():
    with pytest.raises(ValueError, match="larger than the training set"):
        DeviceBatches(synthetic_images(8), 16, "cpu")
