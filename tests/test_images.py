"""bench.images lays out and quantises grids exactly as torchvision's make_grid/save_image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid as tv_make_grid
from torchvision.utils import save_image

from bench.images import make_grid, save_grid


@pytest.mark.parametrize("n, nrow, padding, pad_value", [(64, 8, 2, 0.0), (13, 4, 6, 1.0), (1, 8, 2, 0.0),
                                                          (10, 10, 2, 0.5)])
def test_grids_equal_torchvisions(tmp_path, n, nrow, padding, pad_value):
    images = torch.rand(n, 3, 16, 12, generator=torch.Generator().manual_seed(n)) * 2.4 - 1.2
    torch.testing.assert_close(make_grid(images, nrow, padding, pad_value),
                               tv_make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value))
    save_grid(images, tmp_path / "ours.png", nrow, padding, pad_value, value_range=(-1, 1))
    save_image(images.clone(), tmp_path / "theirs.png", nrow=nrow, padding=padding, pad_value=pad_value,
               normalize=True, value_range=(-1, 1))
    ours, theirs = (np.asarray(Image.open(tmp_path / f"{name}.png")) for name in ("ours", "theirs"))
    assert ours.shape == theirs.shape and (ours == theirs).all()


@pytest.mark.slow
def test_the_run_path_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, bench.run; print('torchvision' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
