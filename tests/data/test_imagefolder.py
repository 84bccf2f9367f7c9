"""bench.data.imagefolder: folders of images, their splits, and errors that say what to do."""

from __future__ import annotations

import pytest
from helpers import write_images

from bench.data import DatasetError, DatasetRequest
from bench.data.builtin import load_imagefolder


def test_imagefolder_resizes_and_splits(tmp_path):
    write_images(tmp_path / "train", 5, size=(48, 40))
    write_images(tmp_path / "test", 3, size=(40, 40))
    data = load_imagefolder(DatasetRequest("imagefolder", str(tmp_path), resolution=16))
    assert data.train.images.shape == (5, 3, 16, 16) and data.split("test").images.shape == (3, 3, 16, 16)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="imagefolder needs a path"):
        load_imagefolder(DatasetRequest("imagefolder"))
    with pytest.raises(DatasetError, match="is not a folder"):
        load_imagefolder(DatasetRequest("imagefolder", str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found under"):
        load_imagefolder(DatasetRequest("imagefolder", str(tmp_path / "empty"))).train


def test_undecodable_image_is_named(tmp_path):
    write_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match="cannot decode image .*broken.png"):
        load_imagefolder(DatasetRequest("imagefolder", str(tmp_path))).train


def test_mixed_sizes_without_resolution_is_refused(tmp_path):
    from bench.data.imagefolder import read_image_folder

    write_images(tmp_path / "a", 1, size=(32, 32))
    write_images(tmp_path / "b", 1, size=(16, 16))
    with pytest.raises(DatasetError, match="different sizes.*--resolution"):
        read_image_folder(tmp_path)
