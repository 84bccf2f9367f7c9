"""Kernel timings: each variant's train step, sampling, the data path, Inception, FID statistics.

Outside the default test run (tests/conftest.py skips this folder unless asked):

    pytest tests/benchmarks --benchmark-only \
        --benchmark-storage=results/benchmarks --benchmark-autosave
    pytest tests/benchmarks --benchmark-only \
        --benchmark-storage=results/benchmarks --benchmark-compare   # against the last save

or `tox -e bench`. Real-data benchmarks read BENCH_DATA_DIR and BENCH_FID_WEIGHTS.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench import perf
from bench.config import RunConfig
from bench.data.synthetic import synthetic_images
from bench.plugins import load_plugins
from bench.trainer import make_batches

MODELS = ["gan", "vae", "vaegan", "arvae"]
BATCH = 128


SETTINGS = RunConfig(batch_size=BATCH).train_settings()  # the trainer's defaults (channels_last on)


def make_variant(name):
    return perf.make_variant(load_plugins().models.get(name).obj, (3, 32, 32), "cpu", SETTINGS)


@pytest.fixture(scope="module")
def batch():
    return next(make_batches(synthetic_images(BATCH), SETTINGS, "cpu", 0))


@pytest.mark.parametrize("name", MODELS)
def test_train_step(benchmark, name, batch):
    variant = make_variant(name)
    variant.train_step(batch)  # warm-up
    benchmark.group = "train_step batch 128"
    benchmark(variant.train_step, batch)


@pytest.mark.parametrize("name", MODELS)
def test_sample_1000(benchmark, name):
    variant = make_variant(name)
    benchmark.group = "sample(1000)"
    benchmark.pedantic(variant.sample, args=(1000,), rounds=3, warmup_rounds=1)


def test_data_path(benchmark):
    batches = make_batches(synthetic_images(4096), SETTINGS, "cpu", 0)
    benchmark.group = "data path"
    benchmark(next, batches)


@pytest.mark.skipif(not os.environ.get("BENCH_FID_WEIGHTS"), reason="needs BENCH_FID_WEIGHTS")
def test_inception_features_per_100_images(benchmark):
    from bench.metrics import extract_features, load_feature_extractor

    extractor = load_feature_extractor(os.environ["BENCH_FID_WEIGHTS"])
    images = synthetic_images(100)
    benchmark.group = "inception"
    benchmark.pedantic(extract_features, args=(images, extractor), rounds=2, warmup_rounds=1)


def test_fid_statistics_from_features(benchmark):
    from bench.metrics import fid_from_features

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(10_000, 2048, generator=g), torch.randn(10_000, 2048, generator=g)
    benchmark.group = "fid from features"
    benchmark.pedantic(fid_from_features, args=(a, b), rounds=2)
