"""Reference features, computed once per key and cached on disk.

An entry is keyed by everything that changes the features: the content hash of the whole
split, the split, the number of images N, the seed of the N-image subset, the feature
extractor (name and layer) and the sha256 of its weights file. The key is stored inside the
entry too, and an entry whose stored key differs from the one asked for (or that cannot be
read) is never used: it is recomputed and replaced. Entries are written to a temporary file
in the cache folder and renamed into place, so a reader never sees half a file.

Cache folder: the ``cache_dir`` argument, else ``$BENCH_CACHE_DIR``, else ``~/.cache/bench``.
Features are stored in the extractor's own dtype (float32 for Inception), i.e. losslessly;
50,000 CIFAR-10 images take 400 MB.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.data.dataset import content_hash as pixels_hash
from bench.metrics.errors import MetricsError
from bench.metrics.features import DEFAULT_BATCH_SIZE, extract_features
from bench.metrics.inception import POOL3
from bench.store import atomic_write
from bench.store.layout import CACHE_ENV, default_cache_dir  # noqa: F401  (CACHE_ENV: re-exported)

FORMAT = 1  # bump when the entry layout changes


@dataclasses.dataclass(frozen=True)
class ReferenceKey:
    content_hash: str  # of all pixels of the split, before subsetting
    split: str
    num_images: int
    subset_seed: int
    extractor: str  # "<name>/<feature layer>"
    weights_sha256: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def filename(self) -> str:
        digest = hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()
        return f"ref-{self.split}-n{self.num_images}-{digest[:20]}.pt"


@dataclasses.dataclass
class Reference:
    key: ReferenceKey
    features: torch.Tensor  # [num_images, D], CPU
    path: Path
    from_cache: bool

    @functools.cached_property
    def statistics(self) -> dict[str, np.ndarray]:
        """torch-fidelity's FID statistics of the features, plus the covariance factor every FID
        against this reference uses (``fidelity.with_factor``): the centred features themselves
        when there are at most D of them, else a Cholesky factor, computed once and cached beside
        the features (``<entry>-factor.pt``)."""
        from bench.metrics.fidelity import fid_statistics, with_factor

        stats = fid_statistics(self.features)
        if len(self.features) <= self.features.shape[1]:
            return with_factor(stats, self.features)
        stats["factor"], stats["factor_kind"] = _cached_factor(self.path, self.key, stats["sigma"])
        return stats


def _cached_factor(entry: Path, key: ReferenceKey, sigma: np.ndarray) -> tuple[np.ndarray, str]:
    path = entry.with_name(f"{entry.stem}-factor.pt")
    if path.is_file():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            factor = cached["factor"] if cached.get("key") == key.as_dict() else None
            usable = torch.is_tensor(factor) and tuple(factor.shape) == sigma.shape
            if usable and bool(torch.isfinite(factor).all()) and cached.get("kind") in ("cholesky", "sqrt"):
                return factor.numpy(), cached["kind"]
        except Exception as exc:
            warnings.warn(f"reference cache entry {path} is unreadable (damaged: {type(exc).__name__}); "
                          "it is not trusted and is recomputed", stacklevel=3)
    from bench.metrics.fidelity import covariance_factor

    factor, kind = covariance_factor(sigma)
    try:
        atomic_write(path, lambda f: torch.save({"format": FORMAT, "key": key.as_dict(), "kind": kind,
                                                 "factor": torch.from_numpy(factor)}, f))
    except OSError as exc:  # a read-only cache costs one factorisation per run, nothing more
        warnings.warn(f"could not write reference cache entry {path}: {exc}", stacklevel=3)
    return factor, kind


def extractor_id(extractor) -> tuple[str, str]:
    """``(name/layer, weights sha256)`` of an extractor made by ``load_feature_extractor`` (layer: its
    ``feature_layer``, Inception's pool3 "2048" when it declares none) or a registered extractor's
    ``load`` (``bench.metrics.extractors``)."""
    sha = getattr(extractor, "weights_sha256", None)
    if not sha:
        raise MetricsError(
            "the feature extractor has no recorded weights hash (weights_sha256), so cached "
            "reference features could not be told apart; create it with "
            "bench.metrics.load_feature_extractor"
        )
    return f"{extractor.get_name()}/{getattr(extractor, 'feature_layer', POOL3)}", sha


def subset_indices(total: int, num_images: int, seed: int) -> torch.Tensor | None:
    """A fixed random subset of ``num_images`` of ``total`` (sorted), or None for all."""
    if not 1 < num_images <= total:
        raise MetricsError(f"cannot take {num_images} reference images from a split of {total}")
    if num_images == total:
        return None
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=gen)[:num_images].sort().values


def load_entry(path: Path, key: ReferenceKey) -> torch.Tensor | None:
    """The cached features at ``path`` if the entry is readable and made for ``key``."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        warnings.warn(f"reference cache entry {path} is unreadable (damaged: {type(exc).__name__}); "
                      "it is not trusted and is recomputed", stacklevel=3)
        return None
    features = entry.get("features") if isinstance(entry, dict) else None
    problem = None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        problem = "unknown format"
    elif entry.get("key") != key.as_dict():
        problem = f"it was made for {entry.get('key')}"
    elif not (
        torch.is_tensor(features)
        and features.is_floating_point()
        and features.ndim == 2
        and features.shape[0] == key.num_images
        and features.shape[1] > 0
        and bool(torch.isfinite(features).all())
    ):
        problem = "its features are malformed"
    if problem:
        warnings.warn(f"ignoring reference cache entry {path}: {problem}", stacklevel=3)
        return None
    return features


def save_entry(path: Path, key: ReferenceKey, features: torch.Tensor) -> None:
    """Write an entry atomically (a reader never sees half of it)."""
    features = features.contiguous()
    if features.untyped_storage().nbytes() != features.numel() * features.element_size():
        features = features.clone()  # a view: save only its own values, not the whole storage
    entry = {"format": FORMAT, "key": key.as_dict(), "features": features}
    atomic_write(path, lambda f: torch.save(entry, f))


def reference_features(
    images,
    extractor,
    *,
    split: str,
    num_images: int | None = None,
    subset_seed: int = 0,
    content_hash: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
) -> Reference:
    """Pool3 features of ``num_images`` images of a reference split, from cache or computed.

    ``images``: the whole split, a ``uint8 [N, 3, H, W]`` tensor or a ``bench.data.ImageSet``.
    ``num_images`` (default: all) are a fixed random subset drawn with ``subset_seed``.
    ``content_hash`` defaults to the sha256 of the split's pixels.
    """
    if hasattr(images, "images"):  # an ImageSet: reuse its memoised hash
        content_hash = content_hash or images.content_hash
        images = images.images
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise MetricsError(
            f"reference images must be uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    total = len(images)
    num_images = total if num_images is None else num_images
    index = subset_indices(total, num_images, subset_seed)
    name, sha = extractor_id(extractor)
    key = ReferenceKey(
        content_hash=content_hash or pixels_hash(images),
        split=split,
        num_images=num_images,
        subset_seed=subset_seed,
        extractor=name,
        weights_sha256=sha,
    )
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / key.filename()
    cached = load_entry(path, key)
    if cached is not None:
        return Reference(key, cached, path, from_cache=True)
    subset = images if index is None else images[index]
    features = extract_features(subset, extractor, batch_size=batch_size, device=device)
    try:
        save_entry(path, key, features)
    except OSError as exc:  # a full or read-only disk must not throw away an hour of features
        warnings.warn(f"could not write reference cache entry {path}: {exc}", stacklevel=2)
    return Reference(key, features, path, from_cache=False)
