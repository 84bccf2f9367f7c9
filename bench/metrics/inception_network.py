"""bench's forward pass of the FID Inception network: torch-fidelity's layers and weights, with the
input resize done separably.

torch-fidelity resizes every image to 299 x 299 with TensorFlow 1's bilinear rule (its "slow",
bit-exact method): four gathers of the full 299 x 299 output and three interpolations over it,
about a tenth of the network's time on a CPU for 32 x 32 images. The same arithmetic done
separably, rows of the small input first, then the gathered rows, gives bit-identical pixels
(each output is the same float operations on the same operands; a test checks equality) for
about a fifth of the cost (0.14 s instead of 0.75 s for 64 images here). Everything after the
resize is torch-fidelity's network unchanged.

This module imports torch-fidelity, so ``bench.metrics.inception`` imports it only when a network
is built.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

INPUT_SIZE = FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE  # 299
POOL3 = "2048"
LOGITS_UNBIASED = "logits_unbiased"

# The layers from the resized image to pool3, in torch-fidelity's order.
BODY = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
        "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
        "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")


@lru_cache(maxsize=16)
def _grid(in_size: int, out_size: int, device: torch.device):
    """TensorFlow 1's source positions for one axis (align_corners=False), computed with exactly
    torch-fidelity's operations: lower index, upper index (clamped), fraction."""
    grid = torch.arange(0, out_size, 1, dtype=torch.float32, device=device)
    grid = grid * torch.tensor(in_size / out_size, dtype=torch.float32)
    lo = grid.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, grid - lo.float()


def resize_like_tensorflow1x(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Bilinear resize of float ``[N, C, H, W]`` to ``size x size``, bit-identical to
    torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x(..., align_corners=False)``.

    torch-fidelity computes out = in_0 + (in_1 - in_0) * dy with in_0 = x[lo_y, lo_x] +
    (x[lo_y, hi_x] - x[lo_y, lo_x]) * dx (and in_1 likewise from row hi_y). in_0 is row lo_y of
    the input interpolated along x, so interpolating the H input rows once and gathering them
    gives the same numbers from H rows of work instead of ``size``.
    """
    lo_x, hi_x, dx = _grid(x.shape[3], size, x.device)
    lo_y, hi_y, dy = _grid(x.shape[2], size, x.device)
    left, right = x[..., lo_x], x[..., hi_x]
    rows = left + (right - left) * dx  # [N, C, H, size]
    top = rows[:, :, lo_y]
    # (bottom - top) * dy + top: the same sum as top + (bottom - top) * dy, in place
    return rows[:, :, hi_y].sub_(top).mul_(dy.view(size, 1)).add_(top)


def check_images(x: torch.Tensor) -> None:
    """What the Inception path takes: uint8 ``[N, 3, H, W]``."""
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected uint8 images [N, 3, H, W], got {x.dtype} {tuple(x.shape)}")


class InceptionFeatures(FeatureExtractorInceptionV3):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (same constructor, weights and layers)
    whose forward resizes separably. Pool3 and the unbiased logits, the two features bench asks
    for, are computed here; any other feature list takes torch-fidelity's own forward."""

    def forward(self, x: torch.Tensor):
        if not set(self.features_list) <= {POOL3, LOGITS_UNBIASED}:
            return super().forward(x)
        x = self.resized(x)
        if self.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.from_resized(x)

    def resized(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` images resized to 299 x 299 and scaled to [-1, 1], as
        torch-fidelity does it (also the OpenVINO backend's input)."""
        check_images(x)
        x = resize_like_tensorflow1x(x.to(self.feature_extractor_internal_dtype))
        return (x - 128) / 128  # torch-fidelity's normalisation, as it writes it

    def from_resized(self, x: torch.Tensor):
        """The requested features of images already resized to 299 x 299 and scaled to [-1, 1]."""
        for name in BODY:
            x = getattr(self, name)(x)
        pool3 = torch.flatten(x, 1)
        features = {POOL3: pool3.to(torch.float32)}
        if LOGITS_UNBIASED in self.features_list:
            features[LOGITS_UNBIASED] = pool3.mm(self.fc.weight.T).to(torch.float32)
        return tuple(features[name] for name in self.features_list)
