"""bench.nets: the shared DCGAN backbone's stages per resolution and its errors. (Every registered
variant training and sampling at 16x16 and 64x64 is a contract check: bench.testing.)"""

from __future__ import annotations

import pytest
import torch

from bench.nets import ConvEncoder, Decoder


def test_other_resolutions_add_or_remove_stages():
    assert len(Decoder(64, 8, 4).net) == len(Decoder(32, 8, 4).net) + 3  # one more stage
    assert ConvEncoder(16, 1, 4).body[0].out_channels == 4 * 4  # 8w at 4x4, one stage fewer
    for resolution in (8, 16, 64):
        images = Decoder(resolution, 8, 4)(torch.randn(2, 8))
        assert images.shape == (2, 3, resolution, resolution)
        assert ConvEncoder(resolution, 5, 4)(images).shape == (2, 5)


def test_unsupported_resolution_is_a_clear_error():
    with pytest.raises(ValueError, match="power of two >= 8"):
        Decoder(48)
