"""Does a variant learn at all? A check cheap enough for CI, with no Inception network.

A default that stops a variant from learning (a discriminator that wins at once, a coding that
keeps the generator in its first texture phase) should fail a test, not a user's GPU-day. The
check trains a small variant for a few hundred steps on real images and compares it with its
untrained self on two proxies:

* ``feature_fd``: the Fréchet distance between the features of its samples and of the real
  images under a fixed, randomly initialised convolutional network (``RandomFeatures``: per-channel
  means at three scales and standard deviations at the last, so colour, contrast and texture
  all move it). Random-weight features are a weak judge of quality, but they tell an untrained
  generator's grey noise from images with the data's colours and structure, which is all a
  learning check needs;
* ``recon_mse``: for a variant that reconstructs, the mean squared error of ``reconstruct(x)``
  (pixels in [0, 1]).

The variant learns if one of its proxies falls below its share of the untrained value
(``LEARNS_BELOW``). Set on bench's built-ins at width 8, latent 16, 16x16 images (CIFAR-10
average-pooled), 300 steps of batch 32 on 1,024 images (issue 29): trained, ``feature_fd`` fell
to 0.03-0.25 of its untrained value for every variant with an adversarial term and to 0.82 for
``vae``, whose samples are still blurs, while its ``recon_mse`` fell to 0.28 (0.26-0.51 for every
variant with a trained reconstruction); with lr 1e-7 (no learning) ``gan``'s and ``vae``'s
``feature_fd`` still fell to 0.55 and 0.57 (batch norm's running statistics alone change
eval-mode samples) and ``vae``'s ``recon_mse`` stayed at 1.02. Hence 0.4 and 0.8. (At 32x32 the
two groups overlapped: ``soft-intro-vae`` 0.70 / 0.82 against the frozen ``gan``'s 0.79.)
"""

from __future__ import annotations

import torch
from torch import nn

from bench.metrics.fidelity import fid_from_features
from bench.variant import Variant

# proxy -> the share of its untrained value a learning variant gets below (see above)
LEARNS_BELOW = {"feature_fd": 0.4, "recon_mse": 0.8}


class RandomFeatures(nn.Module):
    """Three 3x3 convolutions (16, 32, 64 channels), each followed by ReLU and 2x2 average pooling,
    with weights drawn from one seed: ``[B, 3, H, W]`` in [-1, 1] -> ``[B, 176]`` (the means of
    every stage's channels and the standard deviations of the last stage's)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.stages = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in ((3, 16), (16, 32), (32, 64)))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for conv in self.stages:
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                conv.bias.zero_()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means, h = [], x.float()
        for conv in self.stages:
            h = nn.functional.avg_pool2d(torch.relu(conv(h)), 2)
            means.append(h.mean((2, 3)))
        return torch.cat([*means, h.std((2, 3))], 1)


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] (a dataset split) or float [-1, 1] images as float32 [-1, 1]."""
    return images.float() / 127.5 - 1.0 if images.dtype == torch.uint8 else images.float()


def learning_proxies(variant: Variant, real: torch.Tensor, features: RandomFeatures | None = None,
                     seed: int = 0) -> dict[str, float]:
    """``feature_fd`` of ``len(real)`` samples against ``real`` and, where the variant
    reconstructs, ``recon_mse`` of ``real``: the numbers ``check_learns`` compares."""
    features = features or RandomFeatures()
    real = as_float_images(real)
    samples = variant.sample(len(real), torch.Generator(variant.device).manual_seed(seed)).cpu()
    proxies = {"feature_fd": fid_from_features(features(samples).double(), features(real).double())}
    if variant.reconstruct is not None:
        x_hat = variant.reconstruct(real).cpu()
        proxies["recon_mse"] = float(((x_hat - real) / 2).pow(2).mean())
    return proxies


def check_learns(variant: Variant, images: torch.Tensor, steps: int = 300, batch_size: int = 32,
                 reference: int = 512, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Train ``variant`` for ``steps`` steps on batches drawn (seeded) from ``images`` and return
    proxy -> (untrained, trained); raises AssertionError naming the variant and its proxies when
    none fell below its ``LEARNS_BELOW`` share. The first ``reference`` images are the proxies'
    real images."""
    images = as_float_images(images).to(variant.device)
    real = images[:reference]
    features = RandomFeatures()
    before = learning_proxies(variant, real, features, seed)
    variant.train()
    picks = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        variant.train_step(images[torch.randint(0, len(images), (batch_size,), generator=picks)])
    after = learning_proxies(variant, real, features, seed)
    result = {k: (before[k], after[k]) for k in before}
    assert any(a < LEARNS_BELOW[k] * b for k, (b, a) in result.items()), (
        f"{type(variant).__name__} did not learn in {steps} steps: "
        + ", ".join(f"{k} {b:.4g} -> {a:.4g} (learning: < {LEARNS_BELOW[k]} x untrained)"
                    for k, (b, a) in result.items())
    )
    return result
