"""The built-in datasets, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from pathlib import Path

from bench.data.cifar10 import load_cifar10
from bench.data.dataset import Dataset, DatasetError, DatasetRequest, ImageSet
from bench.data.imagefolder import read_image_folder
from bench.data.synthetic import load_synthetic
from bench.hookspecs import hookimpl


def load_imagefolder(request: DatasetRequest) -> Dataset:
    """``imagefolder:PATH``: every image below PATH, center-cropped and resized to --resolution.

    If PATH has ``train/`` and ``test/`` subfolders they become the two splits.
    """
    if not request.argument:
        raise DatasetError("imagefolder needs a path: --dataset imagefolder:/path/to/images")
    root = Path(request.argument).expanduser()
    if not root.is_dir():
        raise DatasetError(f"imagefolder: {root} is not a folder; give an existing folder of images")
    resolution = request.resolution or 32

    def split(folder: Path):
        return lambda: ImageSet(read_image_folder(folder, resolution), f"image folder {folder}")

    if (root / "train").is_dir() and (root / "test").is_dir():
        splits = {"train": split(root / "train"), "test": split(root / "test")}
    else:
        splits = {"train": split(root)}
    return Dataset("imagefolder", splits, limit=request.limit)


@hookimpl
def bench_register_datasets(register):
    register("cifar10", load_cifar10)
    register("imagefolder", load_imagefolder)
    register("synthetic", load_synthetic)
