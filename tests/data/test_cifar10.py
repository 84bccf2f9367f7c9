"""bench.data.cifar10: the official archive and image-folder exports, and errors that say what to do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cifar_root, requires_cifar, write_images
from PIL import Image

from bench.data import DatasetError, DatasetRequest
from bench.data.cifar10 import CLASSES, load_cifar10


def test_missing_cifar_says_where_it_looked_and_what_to_do(tmp_path):
    data = load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path, download=False))
    with pytest.raises(DatasetError) as err:
        data.train
    message = str(err.value)
    assert str(tmp_path / "cifar10" / "train") in message
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in message
    assert "--data-dir" in message and "BENCH_DATA_DIR" in message


def test_corrupted_cifar_archive_is_a_clear_error(tmp_path):
    batches = tmp_path / "cifar10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in ["data_batch_1", "batches.meta"]:
        (batches / name).write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not found or unreadable"):
        load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path, download=False)).train


def test_incomplete_cifar_export_names_missing_classes(tmp_path):
    write_images(tmp_path / "cifar10" / "train" / "cat", 2, suffix=".jpg")
    with pytest.raises(DatasetError, match="lacks class folders: airplane, automobile, bird, deer"):
        load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path)).train


def test_cifar_archive_format_is_read(tmp_path, monkeypatch):
    """A fake archive in torchvision's pickle layout (its integrity check disabled) loads."""
    import pickle

    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0] * 4}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASSES)}, f)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    data = load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path, download=False))
    assert data.train.images.shape == (20, 3, 32, 32) and data.split("test").images.shape[0] == 4
    assert "official archive" in data.train.source


@pytest.mark.slow
@requires_cifar
def test_cifar_export_from_shared():
    data = load_cifar10(DatasetRequest("cifar10", data_dir=cifar_root(), limit=2000))
    train = data.train
    assert train.images.shape == (2000, 3, 32, 32)
    assert "image-folder export" in train.source and "fixed subset of 2000" in train.source
    # the same fixed subset on every load
    full = load_cifar10(DatasetRequest("cifar10", data_dir=cifar_root(), limit=2000)).train
    assert torch.equal(full.images, train.images)


def test_a_subset_of_an_export_decodes_only_its_images(tmp_path, monkeypatch):
    """--subset N decodes N of the export's images (not all 50,000 then N of them): the same ones."""
    import bench.data.imagefolder as imagefolder
    from bench.data.cifar10 import _export_split
    from bench.data.dataset import fixed_subset

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in CLASSES:
            (tmp_path / "cifar10" / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    tmp_path / "cifar10" / split / cls / f"{i}.png")
    full = _export_split(tmp_path / "cifar10", "train", None)()
    decoded = []
    real_load = imagefolder.load_image
    monkeypatch.setattr(imagefolder, "load_image", lambda p, r=None: decoded.append(p) or real_load(p, r))
    train = load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path, limit=7)).train
    assert len(decoded) == 7 and train.total == 30
    assert torch.equal(train.images, full.images[fixed_subset(30, 7)])
    assert train.source == f"{full.source}; fixed subset of 7 (seed 0)"
    with pytest.raises(DatasetError, match="--subset 31: the training split of cifar10 has only 30 images"):
        load_cifar10(DatasetRequest("cifar10", data_dir=tmp_path, limit=31)).train  # noqa: B018
