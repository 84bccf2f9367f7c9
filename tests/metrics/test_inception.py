"""bench.metrics.inception: bench's Inception forward (separable resize) against torch-fidelity's,
and the backend choice.

The OpenVINO backend's features and FID against torch-fidelity's are checked on real CIFAR-10 in
tests/metrics/test_fidelity.py, beside the PyTorch path's."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import requires_weights, weights_with_logits_head
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

import bench.metrics.inception_openvino as openvino_module
from bench.metrics import MetricsError, load_feature_extractor
from bench.metrics.inception import BACKEND_ENV, resolve_backend
from bench.metrics.inception_network import resize_like_tensorflow1x


@pytest.mark.parametrize("shape", [(16, 3, 32, 32), (2, 3, 64, 48), (1, 3, 299, 299), (3, 1, 300, 17)])
def test_separable_resize_is_bit_identical_to_torch_fidelitys(shape):
    images = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    expected = interpolate_bilinear_2d_like_tensorflow1x(images, size=(299, 299), align_corners=False)
    ours = resize_like_tensorflow1x(images)
    assert ours.shape == expected.shape and torch.equal(ours, expected)


@pytest.mark.slow
@requires_weights
def test_bench_forward_gives_torch_fidelitys_features_and_logits(tmp_path):
    """Pool3 and the unbiased logits, with a valid (random) logits head, are torch-fidelity's own
    numbers: the same layers on bit-identical resized pixels."""
    headed = weights_with_logits_head(os.environ["BENCH_FID_WEIGHTS"], tmp_path)
    ours = load_feature_extractor(headed, channels_last=False, backend="torch")
    plain = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                        feature_extractor_weights_path=str(headed))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = plain(images), ours(images)
    assert ours.get_requested_features_list() == ["2048", "logits_unbiased"]
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == torch.float32 and g.shape == e.shape
        assert (g - e).abs().max() <= 1e-6 * e.abs().max()


def test_unknown_backend_is_a_clear_error(monkeypatch):
    with pytest.raises(MetricsError, match="unknown Inception backend 'onnx'.*auto, torch, openvino"):
        resolve_backend("onnx")
    monkeypatch.setenv(BACKEND_ENV, "tensorrt")
    with pytest.raises(MetricsError, match=rf"'tensorrt'.*\${BACKEND_ENV}"):
        resolve_backend(None)


def test_auto_is_openvino_on_the_cpu_where_installed_and_the_environment_can_choose(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: True)
    assert resolve_backend(None, "cpu") == resolve_backend("auto", "cpu") == "openvino"
    assert resolve_backend(None, "cuda") == "torch"  # OpenVINO's CPU kernels only
    assert resolve_backend(None, "cpu", compile=True) == "torch"  # compiling is PyTorch's
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: False)
    assert resolve_backend(None, "cpu") == "torch"
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: True)
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert resolve_backend(None, "cpu") == "torch"
    monkeypatch.setenv(BACKEND_ENV, "openvino")
    assert resolve_backend(None, "cpu") == "openvino"
    with pytest.raises(MetricsError, match="compiles the PyTorch network"):
        resolve_backend(None, "cpu", compile=True)


def test_openvino_where_it_cannot_run_says_what_to_do(monkeypatch):
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: False)
    with pytest.raises(MetricsError, match=r"needs OpenVINO: pip install openvino"):
        resolve_backend("openvino")
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: True)
    with pytest.raises(MetricsError, match="runs on the CPU, not cuda.*--inception-backend torch"):
        resolve_backend("openvino", "cuda")


def test_run_without_openvino_stops_before_training(cli, monkeypatch):
    monkeypatch.setattr(openvino_module, "openvino_available", lambda: False)
    result = cli("run", "--models", "gan", "--dataset", "synthetic:64", "--budget", "2steps",
                 "--eval-samples", "8", "--inception-backend", "openvino", "--no-progress",
                 expect_exit=1)
    assert "needs OpenVINO" in result.output and "Traceback" not in result.output
    assert "gan-s0" not in result.output  # no trial started
