"""Deterministic procedural images (no files): for smoke runs and tests.

Each image is a two-colour gradient background with a filled disc and a
rectangle of random colours, sizes and positions, drawn from a fixed seed.
"""

from __future__ import annotations

import torch

from bench.data.dataset import Dataset, DatasetError, DatasetRequest, ImageSet

DEFAULT_TRAIN, DEFAULT_TEST = 4096, 1024


def synthetic_images(n: int, resolution: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    r = resolution
    ys, xs = torch.meshgrid(torch.linspace(0, 1, r), torch.linspace(0, 1, r), indexing="ij")
    c0, c1, disc_c, rect_c = (torch.rand(n, 3, 1, 1, generator=g) for _ in range(4))
    angle = torch.rand(n, 1, 1, generator=g) * 6.2832
    t = (xs * torch.cos(angle) + ys * torch.sin(angle)).clamp(0, 1)[:, None]
    img = c0 + (c1 - c0) * t
    cx, cy = (torch.rand(n, 1, 1, generator=g) * 0.8 + 0.1 for _ in range(2))
    rad = torch.rand(n, 1, 1, generator=g) * 0.25 + 0.1
    disc = ((xs - cx) ** 2 + (ys - cy) ** 2 < rad**2)[:, None]
    x0, y0 = (torch.rand(n, 1, 1, generator=g) * 0.6 for _ in range(2))
    w, h = (torch.rand(n, 1, 1, generator=g) * 0.3 + 0.1 for _ in range(2))
    rect = ((xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h))[:, None]
    img = torch.where(disc, disc_c, img)
    img = torch.where(rect, rect_c, img)
    return (img * 255).round().to(torch.uint8)


def load_synthetic(request: DatasetRequest) -> Dataset:
    """``synthetic`` or ``synthetic:N`` (N training images)."""
    try:
        n_train = int(request.argument) if request.argument else DEFAULT_TRAIN
    except ValueError:
        n_train = 0
    if n_train < 1:
        raise DatasetError(f"--dataset synthetic:{request.argument}: the part after ':' is the number of "
                           "training images, a whole number of at least 1 (e.g. synthetic:4096)")
    r = request.resolution or 32

    def split(n: int, seed: int, name: str):
        return lambda: ImageSet(synthetic_images(n, r, seed), f"synthetic {name} (seed {seed}, {n} images)")

    return Dataset(
        "synthetic",
        {"train": split(n_train, 0, "train"), "test": split(DEFAULT_TEST, 1, "test")},
        limit=request.limit,
    )
