"""Helpers the tests share (fixtures and hooks are in conftest.py): where the real data and
weights are, tiny run options, and small builders. Imported as ``from helpers import ...``
(``tests/`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

# Small networks keep CPU tests fast (the architecture is the same at any width);
# sample-quality evaluation (Inception passes) only where a test asks for it.
TINY = ["--set", "gan.width=8", "--set", "gan.latent=16", "--eval-samples", "0"]

FIXTURES = Path(__file__).parent / "fixtures"


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


def weights_with_logits_head(weights: str, folder: Path, scale: float = 0.01) -> Path:
    """A copy of the FID weights with a valid (random, seeded, N(0, scale^2)) logits head: the
    shared file has a NaN one, and Inception Score and the logits path need a real one."""
    import torch

    state = torch.load(weights, map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    state["fc.weight"] = torch.randn(state["fc.weight"].shape, generator=gen) * scale
    state["fc.bias"] = torch.zeros_like(state["fc.bias"])
    path = Path(folder) / "with-head.pth"
    torch.save(state, path)
    return path


def uint8_dataset(images):
    """uint8 CHW images as a torch Dataset: the input torch-fidelity's calculate_metrics accepts."""
    import torch

    class UInt8Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return images[i]

    return UInt8Images()


def train_settings(budget: str = "10m", **overrides):
    """The trainer's settings as a run with these options would give them (``RunConfig`` holds
    every default)."""
    from bench.config import RunConfig

    return RunConfig(budget=budget, **overrides).train_settings()


def one_line_error(out: str, *needles: str) -> None:
    """``out`` is one ``Error: ...`` line, without a traceback, holding every needle."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, (needle, out)


def only_run(results: Path) -> Path:
    runs = sorted(results.iterdir())
    assert len(runs) == 1, runs
    return runs[0]


# -- the built-in variants, small (bench.testing's sizes: width 8, latent 8, 32x32 images) --------


@functools.cache
def plugins():
    """The plugins of this environment, loaded once per test process."""
    from bench.plugins import load_plugins

    return load_plugins()


def variant_class(name: str):
    return plugins().models.get(name).obj


def make(name: str, seed: int = 0, **options):
    """The registered variant ``name``, built small on the CPU, with config ``options``."""
    from bench.testing import make_variant

    return make_variant(variant_class(name), seed, **options)


def images(n: int, seed: int = 0):
    """``n`` synthetic 32x32 images as the trainer feeds them: float32 in [-1, 1]."""
    from bench.testing import synthetic_batch

    return synthetic_batch(n, seed)


def batches(v, n: int, size: int):
    """Endless ``train_step``s of ``v`` on random batches of ``size`` from ``n`` fixed synthetic images."""
    import torch

    data, picks = images(n), torch.Generator().manual_seed(0)
    while True:
        yield v.train_step(data[torch.randint(0, n, (size,), generator=picks)])


# -- files a test writes ----------------------------------------------------------------------

# A few steps of a tiny run on synthetic images, quiet.
SYNTH_RUN = ["--dataset", "synthetic:128", "--budget", "4steps", "--batch-size", "16", "--log-every", "2",
             "--no-progress"]


def write_plugin(folder: Path, filename: str, text: str) -> Path:
    """A plugin file (``text`` dedented) in ``folder``, for ``--plugin`` or ``load_plugins``."""
    import textwrap

    path = Path(folder) / filename
    path.write_text(textwrap.dedent(text))
    return path


def write_images(folder: Path, count: int, size=(32, 32), suffix=".png"):
    """``count`` random images of ``size`` in ``folder``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}{suffix}")


def lognormal_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """The reference for the report's intervals of non-negative quantities, from the formula in
    float64: the modified Cox interval for the mean of a log-normal quantity (Olsson 2005)."""
    import math

    import numpy as np
    from scipy import stats

    y = np.log(np.asarray(values, dtype=np.float64))
    n, s2 = len(y), y.var(ddof=1)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * math.sqrt(s2 / n + s2**2 / (2 * (n - 1)))
    return math.exp(y.mean() + s2 / 2 - half), math.exp(y.mean() + s2 / 2 + half)


def fixed_peak(*args, **kwargs):
    """A stand-in for ``bench.run.cached_peaks``: the MFU denominator as a constant, where the
    matmul benchmark is not what a test is about. Patch this, never ``measure_peaks``: a fake
    measurement would be cached as this machine's peak and read by real runs that share
    BENCH_CACHE_DIR."""
    return {"matmul": 1e11}, "fixed by the test"
