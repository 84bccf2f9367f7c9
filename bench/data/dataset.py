"""The dataset types every loader returns."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import torch

DATA_DIR_ENV = "BENCH_DATA_DIR"


class DatasetError(Exception):
    """A dataset is missing, empty or unreadable; the message says where and what to do."""


@dataclasses.dataclass(frozen=True)
class DatasetRequest:
    """What the user asked for: ``name[:argument]`` plus options."""

    name: str
    argument: str | None = None  # e.g. the folder of ``imagefolder:PATH``
    data_dir: Path | None = None  # --data-dir, else $BENCH_DATA_DIR
    resolution: int | None = None  # square side to resize/crop to; None = the dataset's own
    limit: int | None = None  # use a fixed random subset of N training images
    download: bool = True

    @property
    def root(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir)
        if os.environ.get(DATA_DIR_ENV):
            return Path(os.environ[DATA_DIR_ENV])
        return Path("data")


def parse_dataset_spec(spec: str) -> tuple[str, str | None]:
    """``"imagefolder:/x/y"`` -> ``("imagefolder", "/x/y")``; ``"cifar10"`` -> ``("cifar10", None)``."""
    name, sep, arg = spec.partition(":")
    return name, (arg if sep else None)


def open_dataset(registry, spec: str, *, data_dir: str | None = None, resolution: int | None = None,
                 subset: int | None = None, download: bool = True) -> Dataset:
    """The dataset ``spec`` (``name[:argument]``) from a registry of loaders, with its training
    split loaded now, so that data errors come before anything else happens."""
    name, argument = parse_dataset_spec(spec)
    if name not in registry:
        raise DatasetError(
            f"unknown dataset {name!r}; registered: {', '.join(registry.names())} "
            "(imagefolder takes a path: imagefolder:/path/to/images)"
        )
    request = DatasetRequest(name=name, argument=argument, data_dir=Path(data_dir) if data_dir else None,
                             resolution=resolution, limit=subset, download=download)
    dataset = registry.get(name).obj(request)
    dataset.split("train")
    return dataset


def content_hash(images: torch.Tensor) -> str:
    """sha256 of the pixels (uint8, NCHW, C-contiguous), first 16 hex digits."""
    data = images.contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclasses.dataclass
class ImageSet:
    images: torch.Tensor  # uint8 [N, 3, H, W], CPU
    source: str  # where it came from, for the manifest and reports
    total: int | None = None  # the split's size, when its loader decoded only a subset of it

    def __post_init__(self):
        x = self.images
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise DatasetError(
                f"a dataset split must be uint8 [N, 3, H, W], got {x.dtype} {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise DatasetError(f"no images in {self.source}")
        self._hash = None

    @property
    def content_hash(self) -> str:
        if self._hash is None:
            self._hash = content_hash(self.images)
        return self._hash


def fixed_subset(total: int, limit: int) -> torch.Tensor:
    """The indices (sorted) of ``--subset``'s fixed random ``limit`` of ``total`` images, seed 0:
    folder exports are sorted by class, so the first N images would be a single class."""
    gen = torch.Generator().manual_seed(0)
    return torch.randperm(total, generator=gen)[:limit].sort().values


def subset_source(source: str, limit: int) -> str:
    return f"{source}; fixed subset of {limit} (seed 0)"


class Dataset:
    """A named dataset with lazily loaded splits (``train`` always, ``test`` if it has one)."""

    def __init__(self, name: str, splits: dict[str, Callable[[], ImageSet]], limit: int | None = None):
        if "train" not in splits:
            raise ValueError(f"dataset {name!r} has no 'train' split")
        self.name = name
        self._loaders = splits
        self._loaded: dict[str, ImageSet] = {}
        self.limit = limit

    @property
    def splits(self) -> list[str]:
        return list(self._loaders)

    def split(self, name: str) -> ImageSet:
        if name not in self._loaders:
            raise DatasetError(
                f"dataset {self.name!r} has no {name!r} split (it has: {', '.join(self._loaders)})"
            )
        if name not in self._loaded:
            loader, limit = self._loaders[name], self.limit if name == "train" else None
            # a loader that takes ``limit`` decodes only the subset (the same images: fixed_subset)
            loaded = loader(limit=limit) if limit is not None and _takes_limit(loader) else loader()
            total = loaded.total or len(loaded.images)
            if limit is not None and limit > total:
                raise DatasetError(f"--subset {limit}: the training split of {self.name} has only "
                                   f"{total} images; give at most {total}, or "
                                   "leave --subset out to train on all of them")
            if limit is not None and limit < total and loaded.total is None:
                keep = fixed_subset(total, limit)
                loaded = ImageSet(loaded.images[keep], subset_source(loaded.source, limit))
            self._loaded[name] = loaded
        return self._loaded[name]

    @property
    def train(self) -> ImageSet:
        return self.split("train")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def describe(self) -> dict:
        """What the manifest records about the training data."""
        train = self.train
        return {
            "name": self.name,
            "source": train.source,
            "num_images": int(train.images.shape[0]),
            "image_shape": list(self.image_shape),
            "content_hash": train.content_hash,
        }


def resize_square(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Resize ``uint8 [N, 3, H, W]`` square images to ``resolution`` (antialiased bicubic)."""
    if resolution is None or images.shape[-1] == resolution == images.shape[-2]:
        return images
    out = torch.nn.functional.interpolate(
        images.float(), size=(resolution, resolution), mode="bicubic", antialias=True
    )
    return out.round().clamp(0, 255).to(torch.uint8)


def _takes_limit(loader) -> bool:
    try:
        return "limit" in inspect.signature(loader).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False
