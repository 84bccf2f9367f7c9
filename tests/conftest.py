"""Shared fixtures. Real data comes from $BENCH_DATA_DIR (CI points it at ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.cli import main

# Small networks keep CPU tests fast (the architecture is the same at any width);
# sample-quality evaluation (Inception passes) only where a test asks for it.
TINY = ["--set", "gan.width=8", "--set", "gan.latent=16", "--eval-samples", "0"]


def cifar_root() -> Path | None:
    root = os.environ.get("BENCH_DATA_DIR")
    if root and (Path(root) / "cifar10" / "train").is_dir():
        return Path(root)
    return None


requires_cifar = pytest.mark.skipif(
    cifar_root() is None, reason="BENCH_DATA_DIR does not hold cifar10/ (CI sets it to ../shared/data)"
)


requires_weights = pytest.mark.skipif(
    not Path(os.environ.get("BENCH_FID_WEIGHTS", "/nonexistent")).is_file(),
    reason="BENCH_FID_WEIGHTS is not a file (CI sets it to the Inception weights in ../shared/fid)",
)


def weights_with_logits_head(weights: str, folder: Path) -> Path:
    """A copy of the FID weights with a valid (random, seeded) logits head: the shared file has a
    NaN one, and Inception Score and the logits path need a real one."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    state["fc.weight"] = torch.randn(state["fc.weight"].shape, generator=gen) * 0.01
    state["fc.bias"] = torch.zeros_like(state["fc.bias"])
    path = Path(folder) / "with-head.pth"
    torch.save(state, path)
    return path


class UInt8Images(torch.utils.data.Dataset):
    """uint8 CHW images as a Dataset: the input torch-fidelity's calculate_metrics accepts."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Invoke ``bench`` in-process with results under a temporary folder."""
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))

    def invoke(*args, expect_exit=0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect_exit, result.output
        return result

    return invoke


@pytest.fixture
def results_dir(tmp_path) -> Path:
    return tmp_path / "results"


def train_settings(budget: str = "10m", **overrides):
    """The trainer's settings as a run with these options would give them (``RunConfig`` holds
    every default)."""
    from bench.config import RunConfig

    return RunConfig(budget=budget, **overrides).train_settings()


def only_run(results: Path) -> Path:
    runs = sorted(results.iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where CUDA is available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_ignore_collect(collection_path, config):
    """tests/benchmarks/ runs only when asked for (--benchmark-only or --benchmark-enable)."""
    wanted = config.getoption("--benchmark-only") or config.getoption("--benchmark-enable")
    if "benchmarks" in collection_path.parts and not wanted:
        return True
    return None
