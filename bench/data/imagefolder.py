"""Read a folder tree of images into one uint8 tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.data.dataset import DatasetError, fixed_subset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm"}


def list_images(folder: Path) -> list[Path]:
    """Every image file below ``folder``, sorted, so the order is reproducible."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_image(path: Path, resolution: int | None) -> np.ndarray:
    """One image as uint8 HWC RGB; center-cropped to a square and resized if ``resolution``."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if resolution is not None and img.size != (resolution, resolution):
                side = min(img.size)
                left, top = (img.width - side) // 2, (img.height - side) // 2
                img = img.crop((left, top, left + side, top + side))
                img = img.resize((resolution, resolution), Image.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(
            f"cannot decode image {path}: {exc}. Remove or replace the file and run again."
        ) from None


def read_image_folder(folder: Path, resolution: int | None = None, limit: int | None = None) -> torch.Tensor:
    """All images below ``folder`` as ``uint8 [N, 3, H, W]``; with ``limit`` (fewer than there are),
    only ``bench.data.dataset.fixed_subset``'s ``limit`` of them, the others never decoded.

    Without ``resolution`` every image must already have the same size.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise DatasetError(
            f"no images found under {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    if limit is not None and limit < len(files):
        files = [files[i] for i in fixed_subset(len(files), limit).tolist()]
    arrays = [load_image(p, resolution) for p in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        odd = next(p for p, a in zip(files, arrays, strict=True) if a.shape != first)
        raise DatasetError(
            f"images under {folder} have different sizes ({files[0].name}: {first[1]}x{first[0]}, "
            f"{odd}: {arrays[files.index(odd)].shape[1]}x{arrays[files.index(odd)].shape[0]}); "
            "pass --resolution to resize them to one square size"
        )
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
