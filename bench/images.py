"""Image grids as PNG files, laid out exactly as torchvision's ``make_grid``/``save_image`` do,
without importing torchvision (whose import pulls in torch._dynamo: about 2 s of every run)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 0.0) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[C, rows * (H + padding) + padding, cols * (W + padding) + padding]``,
    ``nrow`` images a row, in order (one image is returned as it is, as torchvision does)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {tuple(images.shape)}")
    if len(images) == 1:
        return images[0]
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(n):
        y, x = divmod(k, cols)
        top, left = y * (h + padding) + padding, x * (w + padding) + padding
        grid[:, top : top + h, left : left + w] = images[k]
    return grid


def grid_array(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 0.0,
               value_range: tuple[float, float] | None = None):
    """Images (float; in [0, 1], or in ``value_range``, which is mapped to [0, 1] after clamping) as
    one grid, an ``[H, W, C]`` uint8 array; a grid ``[C, H, W]`` is taken as it is."""
    x = images.detach().float().cpu()
    if value_range is not None:
        low, high = value_range
        x = (x.clamp(low, high) - low) / max(high - low, 1e-5)
    grid = make_grid(x, nrow, padding, pad_value) if x.ndim == 4 else x
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8, padding: int = 2, pad_value: float = 0.0,
              value_range: tuple[float, float] | None = None) -> Path:
    """Save images as one PNG grid (``grid_array``)."""
    array = grid_array(images, nrow, padding, pad_value, value_range)
    path = Path(path)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path)
    return path
