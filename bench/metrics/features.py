"""Inception features straight from image tensors: no DataLoader, no PIL, no files.

Images cross into metrics as ``uint8 [N, 3, H, W]``. A float batch is taken to be in
[-1, 1] and quantised once, to the nearest of the 256 levels, exactly as a PNG of it would
be saved (``x * 127.5 + 128``, clamped, truncated: round-half-up of ``(x + 1) * 127.5``).
torch-fidelity itself never converts: its feature extractors reject anything but uint8.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch

from bench.metrics.errors import MetricsError
from bench.metrics.inception import POOL3

ImageSource = torch.Tensor | Iterable[torch.Tensor] | Callable[[int], torch.Tensor]
DEFAULT_BATCH_SIZE = 64  # torch-fidelity's default


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images unchanged; float images in [-1, 1] quantised as a saved PNG would be."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise MetricsError(
            f"images must be uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}"
        )
    if torch.isnan(images).any():
        raise MetricsError("images contain NaN; the generator's output cannot be evaluated")
    return (images.float() * 127.5 + 128).clamp_(0, 255).to(torch.uint8)


def iter_batches(
    source: ImageSource, batch_size: int = DEFAULT_BATCH_SIZE, num_samples: int | None = None
) -> Iterator[torch.Tensor]:
    """Batches of at most ``batch_size`` images from a tensor, an iterable or a callback.

    A callback is called as ``source(n)`` and must return ``n`` images; it needs
    ``num_samples``. From an iterable, ``num_samples`` (if given) truncates the stream.
    """
    if batch_size < 1:
        raise MetricsError(f"batch_size must be positive, got {batch_size}")
    if torch.is_tensor(source):
        stop = len(source) if num_samples is None else min(num_samples, len(source))
        for start in range(0, stop, batch_size):
            yield source[start : min(start + batch_size, stop)]
    elif callable(source):
        if num_samples is None:
            raise MetricsError("a sampling callback needs num_samples: how many images to draw")
        done = 0
        while done < num_samples:
            n = min(batch_size, num_samples - done)
            batch = source(n)
            if not torch.is_tensor(batch) or len(batch) != n:
                got = tuple(batch.shape) if torch.is_tensor(batch) else type(batch).__name__
                raise MetricsError(f"the sampling callback, asked for {n} images, returned {got}")
            done += n
            yield batch
    else:
        done = 0
        for batch in source:
            if num_samples is not None:
                batch = batch[: num_samples - done]
            for start in range(0, len(batch), batch_size):
                yield batch[start : start + batch_size]
            done += len(batch)
            if num_samples is not None and done >= num_samples:
                break


@contextlib.contextmanager
def exact_float32(device: torch.device):
    """The Inception pass in true float32: on CUDA, TF32 (10-bit mantissa matrix products, on by
    default for cuDNN convolutions) and any enclosing autocast are switched off for it, so that
    features, and FIDs, are comparable with torch-fidelity's and with the CPU's."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast("cuda", enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _device_of(extractor) -> torch.device:
    param = next(extractor.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def extract_features_dict(
    source: ImageSource,
    extractor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    num_samples: int | None = None,
    channels_last: bool = True,
) -> dict[str, torch.Tensor]:
    """Every feature ``extractor`` provides, as CPU tensors ``{name: [N, D]}``.

    The dtype is the extractor's own (float32 for Inception, as in torch-fidelity), so these
    features give torch-fidelity's metrics exactly.
    """
    device = torch.device(device) if device is not None else _device_of(extractor)
    names = list(extractor.get_requested_features_list())
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    static = getattr(extractor, "static_batch", None)  # a compiled extractor: one batch size only
    # the OpenVINO backend splits larger batches across its streams itself
    batch_size = static or max(batch_size, getattr(extractor, "preferred_batch", 0))
    with torch.no_grad(), exact_float32(device):
        for batch in iter_batches(source, batch_size, num_samples):
            x = to_uint8(batch)
            if x.ndim != 4 or x.shape[1] != 3:
                raise MetricsError(f"images must be [N, 3, H, W], got a batch of {tuple(x.shape)}")
            n = len(x)
            if static and n < static:  # pad, rather than compile again for another shape
                x = torch.cat([x, x[-1:].expand(static - n, *x.shape[1:])])
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = extractor.convert_features_tuple_to_dict(extractor(x))
            for name in names:
                chunks[name].append(out[name][:n].cpu())
    if not chunks[names[0]]:
        raise MetricsError("no images to extract features from")
    out = {name: torch.cat(parts) for name, parts in chunks.items()}
    if num_samples is not None and len(out[names[0]]) != num_samples:
        raise MetricsError(
            f"asked for {num_samples} images, the source gave only {len(out[names[0]])}"
        )
    return out


def extract_features(
    source: ImageSource,
    extractor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    num_samples: int | None = None,
    channels_last: bool = True,
) -> torch.Tensor:
    """Pool3 features ``float32 [N, 2048]`` (CPU) of uint8 images or of float [-1, 1] samples (another
    extractor's: its first feature, e.g. DINOv2's CLS token).

    ``source``: a ``[N, 3, H, W]`` tensor, an iterable of such batches (e.g. a generator
    yielding samples), or a callback ``source(n) -> [n, 3, H, W]`` with ``num_samples``.
    """
    return primary(extract_features_dict(
        source, extractor, batch_size=batch_size, device=device, num_samples=num_samples,
        channels_last=channels_last,
    ))


def primary(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """The features sample metrics use: Inception's pool3, else the extractor's first feature."""
    return features[POOL3] if POOL3 in features else next(iter(features.values()))
