"""Datasets: sources, errors that say what to do, on-device batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cifar_root, requires_cifar
from PIL import Image

from bench.data import DatasetError, DatasetRequest
from bench.data.batches import DeviceBatches
from bench.data.builtin import load_imagefolder
from bench.data.cifar10 import CLASSES, load_cifar10
from bench.data.synthetic import load_synthetic, synthetic_images


def write_images(folder: Path, count: int, size=(32, 32), suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}{suffix}")


def test_synthetic_is_deterministic_and_well_formed():
    a = load_synthetic(DatasetRequest("synthetic", "64"))
    b = load_synthetic(DatasetRequest("synthetic", "64"))
    assert a.train.images.shape == (64, 3, 32, 32) and a.train.images.dtype == torch.uint8
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.content_hash == b.train.content_hash != a.split("test").content_hash
    assert a.train.images.float().std() > 20  # not a blank image


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


@requires_cifar
def test_cifar_export_from_shared():
    data = load_cifar10(DatasetRequest("cifar10", data_dir=cifar_root(), limit=2000))
    train = data.train
    assert train.images.shape == (2000, 3, 32, 32)
    assert "image-folder export" in train.source and "fixed subset of 2000" in train.source
    # the same fixed subset on every load
    full = load_cifar10(DatasetRequest("cifar10", data_dir=cifar_root(), limit=2000)).train
    assert torch.equal(full.images, train.images)


def test_device_batches_cover_an_epoch_and_flip():
    images = synthetic_images(64)
    batches = DeviceBatches(images, 16, "cpu", flip=False, seed=0)
    epoch = torch.cat([next(batches) for _ in range(4)])
    expected = images.float() / 127.5 - 1
    assert epoch.min() >= -1 and epoch.max() <= 1
    # every image exactly once per epoch
    key = lambda t: sorted(t.flatten(1).sum(1).tolist())  # noqa: E731
    assert key(epoch) == pytest.approx(key(expected))
    flipped = DeviceBatches(images[:1].repeat(64, 1, 1, 1), 64, "cpu", flip=True, seed=0)
    batch = next(flipped)
    n_flipped = sum(torch.equal(b, expected[0].flip(2)) for b in batch)
    assert 16 < n_flipped < 48


def test_device_batches_state_round_trip():
    images = synthetic_images(40)
    a = DeviceBatches(images, 16, "cpu", seed=3)
    next(a)
    state = a.state_dict()
    b = DeviceBatches(images, 16, "cpu", seed=99)
    b.load_state_dict(state)
    for _ in range(5):
        assert torch.equal(next(a), next(b))


def test_batch_larger_than_dataset_is_refused():
    with pytest.raises(ValueError, match="larger than the training set"):
        DeviceBatches(synthetic_images(8), 16, "cpu")
