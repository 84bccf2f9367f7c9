"""bench.data.synthetic: procedural images, deterministic and well formed."""

from __future__ import annotations

import torch

from bench.data import DatasetRequest
from bench.data.synthetic import load_synthetic


def test_synthetic_is_deterministic_and_well_formed():
    a = load_synthetic(DatasetRequest("synthetic", "64"))
    b = load_synthetic(DatasetRequest("synthetic", "64"))
    assert a.train.images.shape == (64, 3, 32, 32) and a.train.images.dtype == torch.uint8
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.content_hash == b.train.content_hash != a.split("test").content_hash
    assert a.train.images.float().std() > 20  # not a blank image
