"""bench.backbones.resnet: SNGAN's CIFAR ResNet, its sizes, its normalisations and its errors."""

from __future__ import annotations

import pytest
import torch

from bench.backbones.resnet import ResNet, ResNetDecoder, ResNetEncoder


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_the_default_width_are_sngans():
    """ngf 256, ndf 128 at width 64 (Miyato et al. 2018; Mimicry's sngan_32: 4.3M and 1.1M). By
    hand: G = 128*16*256 + 16*256 (linear) + 3 x (2 x (256*256*9 + 256) + 2*2*256 + 256*256 + 256)
    (up blocks) + 2*256 + 256*3*9 + 3 = 4,276,739; D = 3,584 + 147,584 + 512 (first block)
    + 2 x 147,584 + 16,512 (down block) + 2 x 2 x 147,584 (two plain blocks) + 129 = 1,053,825."""
    assert count(ResNetDecoder(32, 128, 64)) == 4_276_739
    assert count(ResNetEncoder(32, 1, 64, "spectral")) == 1_053_825
    # 64x64: one more up block in G (1,246,976) and one more down block in D (311,680)
    assert count(ResNetDecoder(64, 128, 64)) == 4_276_739 + 1_246_976
    assert count(ResNetEncoder(64, 1, 64, "spectral")) == 1_053_825 + 311_680


@pytest.mark.parametrize("resolution", [32, 64])
def test_shapes_and_features(resolution):
    torch.manual_seed(0)
    images = ResNetDecoder(resolution, 8, 4)(torch.randn(3, 8))
    assert images.shape == (3, 3, resolution, resolution) and images.abs().max() <= 1
    for norm in ResNet.norms:
        encoder = ResNetEncoder(resolution, 5, 4, norm).eval()
        h = encoder.features(images)
        assert h.shape == (3, 8, 8, 8) and (h >= 0).all()  # 2*width channels at 8x8, after a ReLU
        torch.testing.assert_close(encoder(images), encoder.head(h))


def test_between_goes_before_every_block_but_the_first():
    encoder = ResNetEncoder(32, 1, 4, "none")
    seen = []
    encoder.features(torch.randn(2, 3, 32, 32), between=lambda h: seen.append(tuple(h.shape)) or h)
    assert seen == [(2, 8, 16, 16), (2, 8, 8, 8), (2, 8, 8, 8)]


def test_pooling_is_a_sum_under_spectral_norm_and_a_mean_otherwise():
    h = torch.rand(2, 8, 8, 8)
    for norm, pooled in (("spectral", h.sum((2, 3))), ("none", h.mean((2, 3))), ("batch", h.mean((2, 3)))):
        encoder = ResNetEncoder(32, 1, 4, norm).eval()
        torch.testing.assert_close(encoder.head(h), encoder.linear(pooled))


def test_the_norms_are_where_they_are_said_to_be():
    def kinds(norm):
        return {type(m).__name__ for m in ResNetEncoder(32, 1, 4, norm).modules()}

    assert "BatchNorm2d" in kinds("batch") and "GroupNorm" in kinds("layer")
    assert not {"BatchNorm2d", "GroupNorm"} & kinds("none")
    spectral = ResNetEncoder(32, 1, 4, "spectral")
    convs = [m for m in spectral.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)


def test_unsupported_resolution_and_norm_are_clear_errors():
    backbone = ResNet()
    assert backbone.supports(32) and backbone.supports(64) and not backbone.supports(16)
    with pytest.raises(ValueError, match="does not support 16x16 images; it supports 32x32 and 64x64"):
        backbone.check("resnet", 16)
    with pytest.raises(ValueError, match="builds 32x32 and 64x64 images, not 48x48"):
        ResNetDecoder(48)
    with pytest.raises(ValueError, match="norm must be one of"):
        ResNetEncoder(32, 1, 4, "instance")
