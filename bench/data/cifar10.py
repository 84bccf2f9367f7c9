"""CIFAR-10 from the official torchvision archive or from an image-folder export.

Looked for under ``<data-dir>/cifar10/``, in this order:

1. an image-folder export: ``train/<class>/*`` and ``test/<class>/*``
   (for example the JPEG export of CIFAR-10-images; not bit-identical to the archive);
2. the official archive extracted by torchvision: ``cifar-10-batches-py/``,
   downloaded there first if missing and downloads are allowed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.data.dataset import Dataset, DatasetError, DatasetRequest, ImageSet, resize_square, subset_source
from bench.data.imagefolder import list_images, read_image_folder

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(request: DatasetRequest) -> Dataset:
    root = request.root / "cifar10"
    if (root / "train").is_dir():
        return Dataset(
            "cifar10",
            {split: _export_split(root, split, request.resolution) for split in ("train", "test")},
            limit=request.limit,
        )
    return Dataset(
        "cifar10",
        {split: _archive_split(root, split, request) for split in ("train", "test")},
        limit=request.limit,
    )


def _export_split(root: Path, split: str, resolution: int | None):
    def load(limit: int | None = None) -> ImageSet:
        """The split, or only ``--subset``'s ``limit`` of its images (decoding all 50,000 JPEGs
        takes about 17 s on 2 cores; a subset, its share of that)."""
        folder = root / split
        missing = [c for c in CLASSES if not (folder / c).is_dir()]
        if missing:
            raise DatasetError(
                f"CIFAR-10 image-folder export at {folder} lacks class folders: {', '.join(missing)}. "
                f"Expected {folder}/<class>/*.jpg for the ten classes; re-export it or point "
                "--data-dir / BENCH_DATA_DIR at a complete copy."
            )
        source = f"CIFAR-10 image-folder export {folder} (re-encoded images)"
        total = len(list_images(folder))
        if limit is not None and limit < total:
            return ImageSet(read_image_folder(folder, resolution, limit), subset_source(source, limit), total)
        return ImageSet(read_image_folder(folder, resolution), source)

    return load


def _archive_split(root: Path, split: str, request: DatasetRequest):
    def load() -> ImageSet:
        from torchvision.datasets import CIFAR10

        try:
            data = CIFAR10(str(root), train=split == "train", download=request.download)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, tarfile errors...
            raise DatasetError(
                f"CIFAR-10 not found or unreadable. Looked for an image-folder export at "
                f"{root}/train/<class>/ and for the official archive at {root}/cifar-10-batches-py/"
                + (f"; downloading it there failed ({type(exc).__name__}: {exc})" if request.download
                   else f" ({exc})")
                + ". Fix: point --data-dir or BENCH_DATA_DIR at the folder that contains cifar10/, "
                "or run once with network access so torchvision can download the archive."
            ) from None
        images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
        images = resize_square(images, request.resolution)
        return ImageSet(images, f"CIFAR-10 official archive (torchvision) {root}/cifar-10-batches-py")

    return load
