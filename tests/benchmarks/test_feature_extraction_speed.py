"""FID on the same 1,000 CIFAR-10 images: torch-fidelity's calculate_metrics vs bench's path.

Both run in one session, so their ratio is measured side by side; the test also checks
that the two FIDs agree to 1e-4 relative. The ratio is printed and stored in
``benchmark.extra_info``.
"""

from __future__ import annotations

import os

import pytest
from helpers import cifar_root, requires_cifar, requires_weights, uint8_dataset

from bench.data import DatasetRequest
from bench.data.cifar10 import load_cifar10
from bench.metrics import extract_features, fid_from_features, load_feature_extractor

N = 1000
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def images():
    data = load_cifar10(DatasetRequest("cifar10", data_dir=cifar_root()))
    return data.split("train").images[:N], data.split("test").images[:N]


@requires_cifar
@requires_weights
def test_calculate_metrics(benchmark, images):
    import torch_fidelity

    train, test = images

    def run():
        return torch_fidelity.calculate_metrics(
            input1=uint8_dataset(train), input2=uint8_dataset(test), fid=True, verbose=False,
            feature_extractor_weights_path=os.environ["BENCH_FID_WEIGHTS"], cuda=False,
        )["frechet_inception_distance"]

    RESULTS["reference"] = benchmark.pedantic(run, rounds=1, iterations=1)
    RESULTS["reference_s"] = benchmark.stats.stats.median


@requires_cifar
@requires_weights
def test_bench_feature_path(benchmark, images):
    train, test = images
    extractor = load_feature_extractor(os.environ["BENCH_FID_WEIGHTS"])

    def run():
        return fid_from_features(extract_features(train, extractor), extract_features(test, extractor))

    fid = benchmark.pedantic(run, rounds=1, iterations=1)
    if "reference" in RESULTS:
        ratio = RESULTS["reference_s"] / benchmark.stats.stats.median
        benchmark.extra_info.update(speedup_vs_calculate_metrics=ratio, fid=fid,
                                    fid_reference=RESULTS["reference"])
        print(f"\nFID {fid:.6f} vs calculate_metrics {RESULTS['reference']:.6f}; speed-up {ratio:.2f}x")
        assert fid == pytest.approx(RESULTS["reference"], rel=1e-4)
