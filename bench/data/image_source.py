"""Images from anywhere, for ``bench eval``: a folder of image files or an ``.npz`` of uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.dataset import DatasetError
from bench.data.imagefolder import read_image_folder


def load_image_source(path: Path) -> torch.Tensor:
    """``uint8 [N, 3, H, W]`` from a folder of images or an ``.npz`` holding one uint8 array.

    The array may be ``[N, H, W, 3]`` (as saved by most generators) or ``[N, 3, H, W]``.
    """
    path = Path(path)
    if path.is_dir():
        return read_image_folder(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist; give a folder of images or an .npz file")
    if path.suffix != ".npz":
        raise DatasetError(f"{path}: expected a folder of images or an .npz file, not {path.suffix!r}")
    try:
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path} as .npz: {exc}") from None
    if len(arrays) != 1:
        raise DatasetError(
            f"{path} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}); save exactly one, "
            "e.g. np.savez(path, samples)"
        )
    (name, array), = arrays.items()
    if array.dtype != np.uint8:
        raise DatasetError(
            f"{path}:{name} has dtype {array.dtype}; expected uint8 images in [0, 255] "
            "(convert with (x * 127.5 + 128).clip(0, 255).astype(np.uint8) for [-1, 1] floats)"
        )
    if array.ndim == 4 and array.shape[-1] == 3:
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] != 3:
        raise DatasetError(
            f"{path}:{name} has shape {array.shape}; expected [N, H, W, 3] or [N, 3, H, W] RGB images"
        )
    if array.shape[0] == 0:
        raise DatasetError(f"{path}:{name} holds no images")
    return torch.from_numpy(np.ascontiguousarray(array))
