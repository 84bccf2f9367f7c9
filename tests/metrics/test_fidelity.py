"""bench.metrics: agreement with torch-fidelity on real CIFAR-10, the reference cache, FID-inf.

Needs the FID Inception weights, and CIFAR-10 for the agreement tests; from the repo root::

    BENCH_FID_WEIGHTS=../shared/fid/inception-2015-12-05-pool3.pth BENCH_DATA_DIR=../shared/data \
        pytest tests/test_metrics_fidelity.py

Inception sees about 220 images in this whole module (on 2 CPU cores about a minute, most of
it torch-fidelity's own pass); the cache and conversion tests use a tiny fake extractor and
the FID-infinity tests synthetic Gaussian features.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from helpers import uint8_dataset, weights_with_logits_head
from PIL import Image
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

import bench.metrics.inception as inception_module
from bench.data import ImageSet
from bench.metrics import (
    NO_LOGITS_HEAD,
    MetricsError,
    extract_features,
    fid_from_features,
    fid_from_statistics,
    fid_infinity_from_features,
    fid_statistics,
    generated_statistics,
    has_logits_head,
    inception_score,
    kid_from_features,
    load_feature_extractor,
    precision_recall_from_features,
    reference_features,
    to_uint8,
    weights_sha256,
)
from bench.metrics.inception_openvino import openvino_available

WEIGHTS = os.environ.get("BENCH_FID_WEIGHTS")
if not WEIGHTS or not Path(WEIGHTS).is_file():
    pytest.skip(
        f"FID Inception weights not found (BENCH_FID_WEIGHTS={WEIGHTS!r}); set BENCH_FID_WEIGHTS "
        "to inception-2015-12-05-pool3.pth to run the metric tests",
        allow_module_level=True,
    )

# torch-fidelity's DataLoader asks for 4 workers on this 2-core machine and says so.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

PER_CLASS = 10  # 100 train vs 100 test images
KID_SUBSET_SIZE = 50
REL = 1e-4


# ---------------------------------------------------------------- real Inception, real images


def _cifar10(split: str) -> torch.Tensor:
    data_dir = os.environ.get("BENCH_DATA_DIR")
    root = Path(data_dir or "") / "cifar10" / split
    if not data_dir or not root.is_dir():
        pytest.skip(f"CIFAR-10 image folders not found at {root}; set BENCH_DATA_DIR")
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    files = [f for c in classes for f in sorted(c.glob("*.jpg"))[:PER_CLASS]]
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def cifar():
    return _cifar10("train"), _cifar10("test")


@pytest.fixture(scope="module")
def extractor():
    # PyTorch's path, explicitly: "auto" would be OpenVINO here, which is checked against it below
    return load_feature_extractor(WEIGHTS, backend="torch")


@pytest.fixture(scope="module")
def our_features(cifar, extractor):
    return tuple(extract_features(images, extractor) for images in cifar)


@pytest.fixture(scope="module")
def fidelity_metrics(cifar):
    import torch_fidelity

    train, test = cifar
    return torch_fidelity.calculate_metrics(
        input1=uint8_dataset(train),
        input2=uint8_dataset(test),
        cuda=False,
        fid=True,
        kid=True,
        prc=True,
        feature_extractor="inception-v3-compat",  # prc defaults to VGG16 otherwise
        feature_extractor_weights_path=WEIGHTS,
        kid_subset_size=KID_SUBSET_SIZE,
        cache=False,
        verbose=False,
    )


@pytest.mark.slow
def test_features_are_torch_fidelitys(cifar, our_features):
    """Our channels_last batches through the extractor match torch-fidelity's plain pass."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    plain = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=WEIGHTS
    )
    with torch.no_grad():
        expected = plain(cifar[0][:8])[0]
    ours = our_features[0]
    assert ours.dtype == expected.dtype == torch.float32 and ours.shape == (len(cifar[0]), 2048)
    assert (ours[:8] - expected).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.slow
def test_metrics_agree_with_calculate_metrics(our_features, fidelity_metrics):
    train, test = our_features
    fid = fid_from_features(train, test)
    kid = kid_from_features(train, test, subset_size=KID_SUBSET_SIZE)
    prc = precision_recall_from_features(train, test)
    m = fidelity_metrics
    print(f"FID ours {fid:.8g} torch-fidelity {m['frechet_inception_distance']:.8g}")
    assert np.isfinite(fid) and fid > 0
    assert fid == pytest.approx(m["frechet_inception_distance"], rel=REL)
    assert kid.mean == pytest.approx(m["kernel_inception_distance_mean"], rel=REL)
    assert kid.std == pytest.approx(m["kernel_inception_distance_std"], rel=REL)
    assert prc.precision == pytest.approx(m["precision"], rel=REL)
    assert prc.recall == pytest.approx(m["recall"], rel=REL)


@pytest.mark.cuda
def test_cuda_features_agree_with_the_cpus(cifar, our_features):
    """The feature pass on CUDA runs in true float32 (TF32 off): the same features as the CPU's
    to 1e-4 of their scale, and an FID within 1e-4 relative, even inside an autocast region."""
    cuda = load_feature_extractor(WEIGHTS, "cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        features = extract_features(cifar[0], cuda)
    cpu = our_features[0]
    assert features.dtype == torch.float32
    assert (features - cpu).abs().max() <= 1e-4 * cpu.abs().max()
    assert fid_from_features(features, our_features[1]) == pytest.approx(
        fid_from_features(cpu, our_features[1]), rel=1e-4)


@pytest.mark.slow
def test_symmetric_fid_equals_torch_fidelitys_on_real_features(our_features):
    """FID from statistics as a symmetric eigenproblem R Sigma_g R^T (R^T R = Sigma_ref), with every
    kind of factor R, against torch-fidelity's fid_statistics_to_metric on the same statistics."""
    from bench.metrics.fidelity import fid_from_statistics_torch_fidelity, with_factor

    train, test = our_features
    for generated, real in ((train, test), (test, train)):
        gen, ref = fid_statistics(generated), fid_statistics(real)
        expected = fid_from_statistics_torch_fidelity(gen, ref)
        by_features, by_sigma = with_factor(ref, real), with_factor(ref)  # 100 < D: Sigma is singular
        assert (by_features["factor_kind"], by_sigma["factor_kind"]) == ("features", "sqrt")
        for reference in (ref, by_features, by_sigma):
            assert fid_from_statistics(gen, reference) == pytest.approx(expected, rel=1e-6)
    # a full-rank reference covariance (as with N > D images): the Cholesky route
    full = fid_statistics(test)
    full["sigma"] = full["sigma"] + 1e-2 * np.eye(len(full["sigma"]))
    gen = fid_statistics(train)
    factored = with_factor(full)
    assert factored["factor_kind"] == "cholesky"
    expected = fid_from_statistics_torch_fidelity(gen, full)
    assert fid_from_statistics(gen, factored) == pytest.approx(expected, rel=1e-6)
    # both full rank (bench's default 10,000 against 10,000): dsygst forms R Sigma_g R^T
    both = {**gen, "sigma": gen["sigma"] + 1e-2 * np.eye(len(gen["sigma"]))}
    assert fid_from_statistics(both, factored) == pytest.approx(
        fid_from_statistics_torch_fidelity(both, full), rel=1e-6)
    # generated statistics with their own (smaller) factor: the N x N problem F Sigma_ref F^T
    own = generated_statistics(train)
    assert own["factor_kind"] == "features" and own["factor"].shape == (len(train), train.shape[1])
    assert fid_from_statistics(own, factored) == pytest.approx(expected, rel=1e-6)
    fewer = train[: len(test) // 2]  # fewer generated than reference images, both below D
    assert fid_from_statistics(generated_statistics(fewer), with_factor(fid_statistics(test), test)) == (
        pytest.approx(fid_from_statistics_torch_fidelity(fid_statistics(fewer), fid_statistics(test)),
                      rel=1e-6))


def test_reference_factor_is_cached_beside_the_features(tmp_path):
    images, fake = _random_images(40), FakeExtractor()
    first = reference_features(images, fake, cache_dir=tmp_path, **BASE)  # 30 images of 6-d features
    stats = first.statistics
    assert stats["factor_kind"] == "cholesky"
    np.testing.assert_allclose(stats["factor"].T @ stats["factor"], stats["sigma"], atol=1e-10)
    cached = list(tmp_path.glob("**/*-factor.pt"))
    assert len(cached) == 1
    again = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    np.testing.assert_array_equal(again.statistics["factor"], stats["factor"])
    cached[0].write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="unreadable"):
        redone = reference_features(images, fake, cache_dir=tmp_path, **BASE).statistics["factor"]
    np.testing.assert_allclose(redone, stats["factor"], atol=1e-12)


def test_inception_score_refuses_headless_weights(cifar, extractor):
    assert not has_logits_head(extractor)
    assert extractor.get_requested_features_list() == ["2048"]
    with pytest.raises(MetricsError, match=re.escape(NO_LOGITS_HEAD)):
        inception_score(cifar[0][:4], extractor)
    assert "FID, KID and precision/recall are unaffected" in NO_LOGITS_HEAD


IS_IMAGES = 20  # 2 per split: torch-fidelity's pass over them is most of the test's time


@pytest.mark.slow
def test_inception_score_of_an_evaluation_is_calculate_metrics(tmp_path, monkeypatch, cifar):
    """The evaluation's Inception Score columns (logits from the same pass as pool3) equal
    torch-fidelity's calculate_metrics(isc=True) on the same images and weights: the shared
    weights given a random logits head (same network, same logits, so the same score). Scale 0.1:
    logits spread enough that the score is well above 1."""
    import torch_fidelity

    from bench.evaluation import EvalSettings, Evaluator, select_metrics
    from bench.metrics.builtin import BUILTIN_METRICS

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    headed = weights_with_logits_head(WEIGHTS, tmp_path, scale=0.1)
    images = cifar[0][:IS_IMAGES]
    settings = EvalSettings(IS_IMAGES, "train", None, str(headed), untrained=False, inception_backend="torch",
                            metrics=("inception-score",))
    metrics = select_metrics(BUILTIN_METRICS, settings)
    assert list(metrics) == ["inception-score"]
    row = Evaluator(settings, None, torch.device("cpu"), metrics).evaluate_images(images)
    expected = torch_fidelity.calculate_metrics(
        input1=uint8_dataset(images), cuda=False, isc=True, feature_extractor_weights_path=str(headed),
        cache=False, verbose=False)
    print(f"IS ours {row['inception_score_mean']:.8g} +- {row['inception_score_std']:.6g}, torch-fidelity "
          f"{expected['inception_score_mean']:.8g} +- {expected['inception_score_std']:.6g}")
    assert row["inception_score_mean"] > 1.1
    assert row["inception_score_mean"] == pytest.approx(expected["inception_score_mean"], rel=REL)
    assert row["inception_score_std"] == pytest.approx(expected["inception_score_std"], rel=1e-3, abs=1e-6)


# ---------------------------------------------------------------- weights resolution


def test_missing_weights_path_names_path_and_both_options(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-weights.pth"
    with pytest.raises(MetricsError) as err:
        load_feature_extractor(missing)
    message = str(err.value)
    assert str(missing) in message and "--fid-weights" in message
    assert "BENCH_FID_WEIGHTS" in message

    monkeypatch.setenv("BENCH_FID_WEIGHTS", str(missing))
    with pytest.raises(MetricsError, match=r"\$BENCH_FID_WEIGHTS") as err:
        load_feature_extractor()
    assert str(missing) in str(err.value) and "--fid-weights" in str(err.value)


def test_offline_download_gives_one_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv("BENCH_FID_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MetricsError) as err:
        load_feature_extractor()
    message = str(err.value)
    assert "--fid-weights" in message and "BENCH_FID_WEIGHTS" in message
    assert "offline" in message and "no network" in message


def test_weights_hash_is_memoised_by_path_mtime_and_size(tmp_path, monkeypatch):
    hashed = []
    real = inception_module._file_sha256
    monkeypatch.setattr(inception_module, "_file_sha256", lambda p: hashed.append(p) or real(p))
    path = tmp_path / "w.pth"
    path.write_bytes(b"abc")
    assert weights_sha256(path) == weights_sha256(str(path)) == hashlib.sha256(b"abc").hexdigest()
    assert len(hashed) == 1
    path.write_bytes(b"abcd")
    assert weights_sha256(path) == hashlib.sha256(b"abcd").hexdigest()
    assert len(hashed) == 2


# ---------------------------------------------------------------- a fake extractor


class FakeExtractor(FeatureExtractorBase):
    """Per-image channel means and std as 'features'; counts the images it is shown."""

    def __init__(self, weights_sha256: str = "a" * 64):
        super().__init__("fake", ["2048"])
        self.weights_sha256 = weights_sha256
        self.seen = 0

    @staticmethod
    def get_provided_features_list():
        return ("2048",)

    def forward(self, x):
        assert x.dtype == torch.uint8
        self.seen += len(x)
        f = x.float()
        return (torch.cat([f.mean((2, 3)), f.flatten(1).std(1, keepdim=True)], 1),)


def _random_images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=gen, dtype=torch.uint8)


def test_float_samples_quantise_like_saved_pngs():
    images = _random_images(23)
    samples = images.float() / 127.5 - 1  # how training sees them
    assert torch.equal(to_uint8(samples), images)
    anchors = to_uint8(torch.tensor([-1.0, 0.0, 1.0, -3.0, 3.0, -1 + 0.6 / 127.5, -1 + 0.4 / 127.5]))
    assert anchors.tolist() == [0, 128, 255, 0, 255, 1, 0]
    with pytest.raises(MetricsError, match="NaN"):
        to_uint8(torch.full((1, 3, 2, 2), float("nan")))

    fake = FakeExtractor()
    expected = extract_features(images, fake, batch_size=7)
    from_floats = extract_features(samples, fake, batch_size=7)
    from_iterable = extract_features((b for b in samples.split(5)), fake, batch_size=7)
    position = [0]

    def sample(n):
        out = samples[position[0] : position[0] + n]
        position[0] += n
        return out

    from_callback = extract_features(sample, fake, batch_size=7, num_samples=len(samples))
    for features in (from_floats, from_iterable, from_callback):
        assert torch.equal(features, expected)
    with pytest.raises(MetricsError, match="num_samples"):
        extract_features(sample, fake)
    with pytest.raises(MetricsError, match="gave only 23"):
        extract_features(iter(samples.split(5)), fake, num_samples=30)


# ---------------------------------------------------------------- reference cache


BASE = {"split": "train", "num_images": 30, "subset_seed": 1}


def test_reference_cache_hits_on_the_same_key(tmp_path):
    images, fake = _random_images(40), FakeExtractor()
    first = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    assert not first.from_cache and fake.seen == 30
    second = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    assert second.from_cache and fake.seen == 30
    assert torch.equal(first.features, second.features) and second.key == first.key
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temp files left
    image_set = ImageSet(images, "random")  # an ImageSet's own content hash is the key's
    third = reference_features(image_set, fake, cache_dir=tmp_path, **BASE)
    assert third.from_cache and third.key.content_hash == image_set.content_hash


@pytest.mark.parametrize("change", ["num_images", "split", "subset_seed", "content", "weights"])
def test_reference_cache_misses_when_any_key_part_changes(tmp_path, change):
    images, fake = _random_images(40), FakeExtractor()
    first = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    args = dict(BASE)
    if change == "content":
        images = images.clone()
        images[0, 0, 0, 0] ^= 1
    elif change == "weights":
        fake.weights_sha256 = "b" * 64
    elif change == "split":
        args["split"] = "test"
    else:
        args[change] += 1
    seen = fake.seen
    again = reference_features(images, fake, cache_dir=tmp_path, **args)
    assert not again.from_cache and fake.seen > seen and again.path != first.path
    assert reference_features(images, fake, cache_dir=tmp_path, **args).from_cache


def test_reference_cache_ignores_corrupt_and_mismatched_entries(tmp_path):
    images, fake = _random_images(40), FakeExtractor()
    good = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    good.path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        redone = reference_features(images, fake, cache_dir=tmp_path, **BASE)
    assert not redone.from_cache and torch.equal(redone.features, good.features)
    assert reference_features(images, fake, cache_dir=tmp_path, **BASE).from_cache  # rewritten

    other = dict(BASE, split="test")
    other_path = reference_features(images, fake, cache_dir=tmp_path, **other).path
    other_path.write_bytes(good.path.read_bytes())  # an entry made for another key
    seen = fake.seen
    with pytest.warns(UserWarning, match="made for"):
        ref = reference_features(images, fake, cache_dir=tmp_path, **other)
    assert not ref.from_cache and fake.seen == seen + 30 and ref.key.split == "test"


def test_reference_cache_is_written_atomically(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent and src != dst and not dst.exists()
        torch.load(src, weights_only=True)  # complete before it gets its name
        renames.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    ref = reference_features(_random_images(40), FakeExtractor(), cache_dir=tmp_path, **BASE)
    assert renames == [ref.path]


def test_interrupted_cache_write_leaves_no_file(tmp_path, monkeypatch):
    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.warns(UserWarning, match="could not write"):
        ref = reference_features(_random_images(40), FakeExtractor(), cache_dir=tmp_path, **BASE)
    assert ref.features.shape == (30, 4) and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- FID-infinity, KID guard


def _gaussians(d: int = 64):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    sigma_1 = a @ a.T + 0.1 * np.eye(d)
    c = np.eye(d) + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d)
    sigma_2 = c @ sigma_1 @ c.T
    mu_1, mu_2 = np.zeros(d), 0.05 * rng.normal(size=d)
    return (mu_1, sigma_1), (mu_2, sigma_2)


def _frechet(mu_1, sigma_1, mu_2, sigma_2) -> float:
    covmean = scipy.linalg.sqrtm(sigma_1 @ sigma_2).real
    return float(((mu_1 - mu_2) ** 2).sum() + np.trace(sigma_1 + sigma_2 - 2 * covmean))


@pytest.mark.slow
def test_fid_infinity_recovers_the_closed_form_distance():
    (mu_1, sigma_1), (mu_2, sigma_2) = _gaussians()
    true = _frechet(mu_1, sigma_1, mu_2, sigma_2)
    rng = np.random.default_rng(1)
    generated = torch.from_numpy(rng.multivariate_normal(mu_1, sigma_1, size=4000))
    reference = {"mu": mu_2, "sigma": sigma_2}  # the exact statistics
    plain = fid_from_statistics(fid_statistics(generated), reference)
    result = fid_infinity_from_features(generated, reference, seed=0)
    print(f"closed form {true:.4f}, FID_4000 {plain:.4f}, FID-inf {result.fid_infinity:.4f}")
    assert len(result.sizes) == 15 and result.sizes[0] == 2000 and result.sizes[-1] == 4000
    assert result.fids[-1] == pytest.approx(plain, rel=1e-12)
    bias = plain - true
    assert bias > 0.2 * true  # plain FID is biased upward at this N ...
    assert result.fids[0] > plain and result.slope > 0  # ... and more so at smaller N
    assert abs(result.fid_infinity - true) < bias / 4
    again = fid_infinity_from_features(generated, reference, seed=0)
    assert again == result  # the seed fixes the subsets


def test_fid_infinity_takes_reference_features_or_statistics():
    (mu_1, sigma_1), (mu_2, sigma_2) = _gaussians(d=16)
    rng = np.random.default_rng(2)
    generated = torch.from_numpy(rng.multivariate_normal(mu_1, sigma_1, size=600))
    real = torch.from_numpy(rng.multivariate_normal(mu_2, sigma_2, size=700))
    from_features = fid_infinity_from_features(generated, real, num_points=5)
    from_stats = fid_infinity_from_features(generated, fid_statistics(real), num_points=5)
    assert from_features == from_stats
    assert from_features.fids[-1] == pytest.approx(fid_from_features(generated, real), rel=1e-12)


def test_kid_subset_larger_than_the_sets_is_a_clear_error():
    features = torch.randn(20, 8)
    with pytest.raises(MetricsError, match="subset size 1000"):
        kid_from_features(features, features)


def test_subset_fid_fast_path_matches_torch_fidelity():
    """The n x n eigenvalue route of FID-infinity's points equals torch-fidelity's sqrtm route."""
    from bench.metrics.fidelity import _subset_fid

    g = torch.Generator().manual_seed(0)
    ref = fid_statistics(torch.randn(3000, 256, generator=g))
    gen = torch.randn(200, 256, generator=g) * 1.3 + 0.2
    expected = fid_from_statistics(fid_statistics(gen), ref)
    assert _subset_fid(gen.double().numpy(), ref) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- the OpenVINO backend


@pytest.mark.slow
@pytest.mark.skipif(not openvino_available(), reason="OpenVINO is not installed (pip install openvino)")
def test_openvino_backend_gives_torch_fidelitys_fid(tmp_path, monkeypatch, cifar, extractor, our_features,
                                                    fidelity_metrics):
    """OpenVINO in float32: the PyTorch path's features to 1e-5 of their scale, calculate_metrics'
    FID to 1e-4; converted once per input size into the cache folder, then read from it."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    said = []
    network = load_feature_extractor(WEIGHTS, backend="openvino", log=said.append)
    assert said and "converting" in said[0] and network.backend == "openvino"
    features = tuple(extract_features(images, network) for images in cifar)
    for ov, torch_path in zip(features, our_features, strict=True):
        assert ov.dtype == torch.float32 and ov.shape == torch_path.shape
        assert (ov - torch_path).abs().max() <= 1e-5 * torch_path.abs().max()
    assert fid_from_features(*features) == pytest.approx(fidelity_metrics["frechet_inception_distance"],
                                                         rel=REL)
    assert len(list((tmp_path / "openvino").glob("*/model.xml"))) == 1
    said.clear()
    again = load_feature_extractor(WEIGHTS, backend="openvino", log=said.append)
    assert said == []  # read from the cache, not converted again
    first = features[0][:5]
    assert (extract_features(cifar[0][:5], again) - first).abs().max() <= 1e-6 * first.abs().max()
    # another input size: its own model (the resize is traced into it), the same features as PyTorch's
    larger = cifar[0][:3].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 64 x 64
    expected = extract_features(larger, extractor)
    assert (extract_features(larger, again) - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert "64x64" in said[0] and len(list((tmp_path / "openvino").glob("*/model.xml"))) == 2
