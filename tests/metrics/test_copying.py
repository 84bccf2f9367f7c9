"""bench.metrics.copying: C_T (Meehan et al. 2020) and authenticity (Alaa et al. 2022).

The statistics are checked against direct transcriptions of the published formulas on toy
sets, on planted copies versus honest generators in feature space, and end to end through the
real Evaluator: with a pixel "feature extractor" (no weights, milliseconds) and, where the
Inception weights and CIFAR-10 are there, with Inception on 120 images (about 15 s on 2 idle
CPU cores).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from helpers import requires_cifar, requires_weights
from PIL import Image
from scipy.stats import mannwhitneyu, norm
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from bench.data import Dataset, ImageSet
from bench.evaluation import EvalSettings, Evaluator
from bench.metrics.builtin import BUILTIN_METRICS
from bench.metrics.copying import (
    PICTURE,
    Cells,
    CopyingReference,
    authenticity,
    c_t,
    c_t_statistic,
    cell_count,
    in_cell_distances,
    kmeans_cells,
    mann_whitney_u,
    zu_statistic,
)

# ---------------------------------------------------------------- formulas on toy sets


def test_zu_is_the_z_scored_mann_whitney_u_with_continuity_correction():
    rng = np.random.default_rng(0)
    generated, test = rng.random(30), rng.random(40) + 0.1
    m, n = len(generated), len(test)
    u = (generated[:, None] > test[None, :]).sum()  # pairs where the generated point is farther
    expected = (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)
    assert zu_statistic(generated, test) == pytest.approx(expected, rel=1e-12)
    # scipy's own normal approximation (continuity-corrected, one-sided) gives the same z
    p = mannwhitneyu(generated, test, alternative="less", method="asymptotic", use_continuity=True).pvalue
    assert zu_statistic(generated, test) == pytest.approx(norm.ppf(p), rel=1e-9)
    # ties count one half
    assert zu_statistic([1.0], [1.0]) == pytest.approx((0.5 - 0.5 + 0.5) / math.sqrt(3 / 12))


def test_mann_whitney_u_is_scipys_statistic_with_ties():
    rng = np.random.default_rng(1)
    for x, y in [(rng.random(50), rng.random(70)), (rng.integers(0, 5, 40).astype(float),
                                                     rng.integers(0, 5, 33).astype(float))]:
        assert mann_whitney_u(x, y) == mannwhitneyu(x, y).statistic


def _ct_by_the_paper(train, test, generated, centroids, tau):
    """C_T transcribed from Meehan et al. with brute-force numpy: cells by nearest centroid,
    in-cell nearest-training distances, U by counting pairs, test-share weights over Pi_tau."""
    def cell(x):
        return np.argmin(((x[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)

    def in_cell_nn(x, x_cells, t_cells):
        d = np.sqrt(((x[:, None, :] - train[None]) ** 2).sum(-1))
        d[x_cells[:, None] != t_cells[None, :]] = np.inf
        return d.min(axis=1)

    t_cells, p_cells, q_cells = cell(train), cell(test), cell(generated)
    lp, lq = in_cell_nn(test, p_cells, t_cells), in_cell_nn(generated, q_cells, t_cells)
    num = den = 0.0
    for k in range(len(centroids)):
        q_share, p_share = (q_cells == k).mean(), (p_cells == k).mean()
        if q_share <= tau:
            continue
        a, b = lq[q_cells == k], lp[p_cells == k]
        u = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
        zu = (u - len(a) * len(b) / 2 + 0.5) / math.sqrt(len(a) * len(b) * (len(a) + len(b) + 1) / 12)
        num, den = num + p_share * zu, den + p_share
    return num / den


def test_c_t_equals_a_transcription_of_the_published_formula():
    rng = np.random.default_rng(1)
    centroids = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    train = np.concatenate([c + rng.standard_normal((60, 2)) for c in centroids])
    test = np.concatenate([c + rng.standard_normal((40, 2)) for c in centroids])
    # cell 0: copies, cell 1: honest, cell 2: only 5 samples, below tau = 20/m
    generated = np.concatenate([train[:50] + 0.01 * rng.standard_normal((50, 2)),
                                centroids[1] + rng.standard_normal((45, 2)),
                                centroids[2] + rng.standard_normal((5, 2))])
    cells = Cells(torch.from_numpy(centroids), np.zeros(0, dtype=np.int64))
    cells.train_labels = cells.assign(train)
    test_labels = cells.assign(test)
    reference = CopyingReference(torch.from_numpy(train), torch.from_numpy(test), cells, test_labels,
                                 in_cell_distances(test, test_labels, train, cells), torch.zeros(0), math.nan)
    result = c_t_statistic(generated, reference)
    assert result.tau == pytest.approx(20 / 100)
    assert result.included.tolist() == [True, True, False]
    expected = _ct_by_the_paper(train, test, generated, centroids, 20 / 100)
    assert result.c_t == pytest.approx(expected, rel=1e-9)
    assert result.zu[0] < -5 and abs(result.zu[1]) < 3
    # tau above every cell's share: no cell qualifies
    assert math.isnan(c_t_statistic(generated, reference, tau=0.9).c_t)


def test_authenticity_of_a_hand_computed_case():
    # training points 0, 1, 3, 10: nearest other training point at 1, 1, 2, 7
    train = np.array([[0.0], [1.0], [3.0], [10.0]])
    generated = np.array([[0.2], [2.2], [6.0], [15.0], [-2.0]])
    result = authenticity(generated, train)
    # 0.2 -> 0 (0.2 <= 1), 2.2 -> 3 (0.8 <= 2), 6 -> 3 (3 > 2), 15 -> 10 (5 <= 7), -2 -> 0 (2 > 1)
    assert result.nearest_index.tolist() == [0, 2, 2, 3, 0]
    assert result.nearest_distance == pytest.approx([0.2, 0.8, 3.0, 5.0, 2.0])
    assert result.train_radius == pytest.approx([1, 2, 2, 7, 1])
    assert result.authentic.tolist() == [False, False, True, False, True]
    assert result.share == pytest.approx(2 / 5)
    # a training image held twice has radius 0; an exact copy of it is still unauthentic
    assert authenticity(np.array([[3.0]]), np.array([[0.0], [3.0], [3.0]])).share == 0.0


def test_cells_partition_the_training_data():
    rng = np.random.default_rng(2)
    train = np.concatenate([c + rng.standard_normal((100, 8)) for c in (0.0, 10.0, 20.0)]).astype(np.float32)
    cells = kmeans_cells(train, 3, seed=0)
    assert len(cells) == 3 and sorted(np.bincount(cells.train_labels)) == [100, 100, 100]
    assert np.array_equal(cells.train_labels, kmeans_cells(train, 3, seed=0).train_labels)  # fixed seed
    assert len(kmeans_cells(train[:2], 5)) <= 2  # never more cells than training points
    assert [cell_count(m) for m in (50, 1000, 10_000, 100_000)] == [1, 5, 50, 50]


# ---------------------------------------------------------------- planted copies in feature space


def _mixture(n: int, rng, d: int = 32) -> np.ndarray:
    centres = np.random.default_rng(42).standard_normal((10, d)) * 3
    return (centres[rng.integers(10, size=n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_planted_copies_drive_c_t_far_below_zero_and_authenticity_to_zero():
    rng = np.random.default_rng(3)
    train, test = _mixture(2000, rng), _mixture(1000, rng)
    copies = train[rng.choice(2000, 1000, replace=False)] + 0.02 * rng.standard_normal((1000, 32))
    honest, noise = _mixture(1000, rng), rng.standard_normal((1000, 32)).astype(np.float32) * 6

    assert c_t(copies, test, train) < -10
    assert authenticity(copies, train).share < 0.01
    honest_ct = c_t(honest, test, train)
    assert abs(honest_ct) < 3  # about N(0, 1) for a fresh draw of the data distribution
    baseline = authenticity(test, train).share
    assert abs(authenticity(honest, train).share - baseline) < 0.06
    assert c_t(noise, test, train) > 5  # fresh noise: far from the data, underfitting, not copying
    # a generator that copies some of the time sits in between
    partly = np.concatenate([copies[:300], honest[300:]])
    assert c_t(copies, test, train) < c_t(partly, test, train) < honest_ct


# ---------------------------------------------------------------- end to end through the Evaluator


class PixelExtractor(FeatureExtractorBase):
    """4x4-average-pooled pixels as the "pool3 features": no weights, instant."""

    def __init__(self):
        super().__init__("pixels", ["2048"])
        self.weights_sha256 = "p" * 64

    @staticmethod
    def get_provided_features_list():
        return ("2048",)

    def forward(self, x):
        return (torch.nn.functional.avg_pool2d(x.float(), 4).flatten(1),)


class Generator:
    """A "variant" that only samples: draws from ``draw(n, generator)``."""

    device = torch.device("cpu")

    def __init__(self, draw):
        self.draw = draw

    def sample(self, n, generator):
        return self.draw(n, generator)

    def has_encoder(self):
        return False


def _copier(train: torch.Tensor, noise: float = 2.0):
    """Returns training images (uint8) with slight noise, as float [-1, 1] samples."""

    def draw(n, generator):
        index = torch.randperm(len(train), generator=generator)[:n]
        x = train[index].float() + noise * torch.randn(n, *train.shape[1:], generator=generator)
        return (x / 127.5 - 1).clamp(-1, 1)

    return draw


def _noise(n, generator):
    return torch.rand(n, 3, 32, 32, generator=generator) * 2 - 1


def _evaluator(dataset: Dataset, samples: int, weights: str | None = None) -> Evaluator:
    settings = EvalSettings(samples=samples, ref="test", ref_samples=None, fid_weights=weights,
                            untrained=False)
    metrics = {name: BUILTIN_METRICS[name] for name in ("density-coverage", "data-copying")}
    return Evaluator(settings, dataset, torch.device("cpu"), metrics)


def _split(images: torch.Tensor, name: str):
    return lambda: ImageSet(images, name)


def _read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def _pairs(picture: np.ndarray, count: int, size: int = 32, per_row: int = 4, padding: int = 6):
    """(generated, training) crops of the pairs in a ``save_copying_picture`` grid."""
    width = 2 * size + 2
    out = []
    for i in range(count):
        top = padding + (i // per_row) * (size + padding)
        left = padding + (i % per_row) * (width + padding)
        out.append((picture[top : top + size, left : left + size],
                    picture[top : top + size, left + size + 2 : left + width]))
    return out


@pytest.fixture
def noise_dataset(monkeypatch, tmp_path):
    """Train and test splits of uniform-noise images, so that fresh noise is an honest generator."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (800, 3, 32, 32), generator=gen, dtype=torch.uint8)
    return Dataset("noise", {"train": _split(images[:400], "noise train"),
                             "test": _split(images[400:], "noise test")})


def test_planted_copies_end_to_end_with_a_pixel_extractor(noise_dataset, tmp_path):
    evaluator = _evaluator(noise_dataset, samples=400)
    evaluator.extractor = PixelExtractor()
    train = noise_dataset.split("train").images

    copied = evaluator.evaluate(Generator(_copier(train)), noise_seed=1, output_dir=tmp_path)
    assert "metric_errors" not in copied, copied.get("metric_errors")
    assert copied["copying_ct"] < -10 and copied["authenticity"] < 0.01
    honest = evaluator.evaluate(Generator(_noise), noise_seed=1, output_dir=None)
    assert abs(honest["copying_ct"]) < 3
    assert abs(honest["authenticity"] - honest["authenticity_heldout"]) < 0.1
    assert copied["authenticity_heldout"] == honest["authenticity_heldout"]  # the same held-out images
    # fresh noise is distributed like this data set: density about 1, coverage well above 0
    assert 0.7 < honest["density"] < 1.3 and honest["coverage"] > 0.5

    # the picture: 16 pairs, 4 a row, each generated sample beside the training image it copies
    picture = _read_png(tmp_path / PICTURE)
    assert picture.shape == (6 + 4 * (32 + 6), 6 + 4 * (66 + 6), 3)
    for generated, nearest in _pairs(picture, 16):
        assert np.abs(generated - nearest).mean() < 4  # the planted noise (std 2 levels)


def test_no_test_split_gives_nan_c_t_and_no_dataset_gives_nan_columns(noise_dataset, tmp_path):
    only_train = Dataset("noise", {"train": _split(noise_dataset.split("train").images, "noise train")})
    settings = EvalSettings(samples=100, ref="train", ref_samples=None, fid_weights=None, untrained=False)
    copying = {"data-copying": BUILTIN_METRICS["data-copying"]}
    evaluator = Evaluator(settings, only_train, torch.device("cpu"), copying)
    evaluator.extractor = PixelExtractor()
    row = evaluator.evaluate(Generator(_noise), noise_seed=0, output_dir=tmp_path)
    assert "metric_errors" not in row
    assert math.isnan(row["copying_ct"]) and math.isnan(row["authenticity_heldout"])
    assert 0 <= row["authenticity"] <= 1 and (tmp_path / PICTURE).is_file()

    evaluator = Evaluator(settings, None, torch.device("cpu"), copying)
    evaluator.extractor = PixelExtractor()
    images = (torch.rand(50, 3, 32, 32) * 255).to(torch.uint8)
    row = evaluator.evaluate_images(images)  # `bench eval` of images, no dataset
    assert all(math.isnan(row[k]) for k in ("copying_ct", "authenticity", "authenticity_heldout"))


# ---------------------------------------------------------------- real Inception, real images


def _cifar(split: str, per_class: int, skip: int = 0) -> torch.Tensor:
    from pathlib import Path

    root = Path(os.environ["BENCH_DATA_DIR"]) / "cifar10" / split
    files = [f for c in sorted(p for p in root.iterdir() if p.is_dir())
             for f in sorted(c.glob("*.jpg"))[skip : skip + per_class]]
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.slow
@requires_weights
@requires_cifar
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_planted_copies_of_cifar10_with_inception(monkeypatch, tmp_path):
    """30 training and 30 test images; 30 copies (slight noise) versus 30 other CIFAR-10 images
    (an ideal generator: real images it never saw). 120 images through Inception."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    train, test, unseen = _cifar("train", 3), _cifar("test", 3), _cifar("test", 3, skip=3)
    dataset = Dataset("cifar10-toy", {"train": _split(train, "train"), "test": _split(test, "test")})
    evaluator = _evaluator(dataset, samples=30, weights=os.environ["BENCH_FID_WEIGHTS"])

    copied = evaluator.evaluate(Generator(_copier(train)), noise_seed=0, output_dir=tmp_path)
    assert "metric_errors" not in copied, copied.get("metric_errors")
    fresh = evaluator.evaluate(Generator(lambda n, g: unseen[:n].float() / 127.5 - 1), noise_seed=0)
    assert copied["copying_ct"] < -4 and copied["authenticity"] < 0.1  # -6.6 at most with 30 and 30
    assert fresh["copying_ct"] > -3 and fresh["authenticity"] > 0.3
    picture = _read_png(tmp_path / PICTURE)
    for generated, nearest in _pairs(picture, 16):
        assert np.abs(generated - nearest).mean() < 4


# ---------------------------------------------------------------- the report


def test_the_report_shows_each_variants_copying_picture(tmp_path):
    from run_folders import column_table, make_columns_run, read_md

    from bench.report import build_report

    trials = (("gan", {}, [1.0, 2.0]), ("vae", {}, [1.0]))
    run = make_columns_run(tmp_path, trials=trials, columns=column_table())
    Image.fromarray(np.full((20, 40, 3), 200, np.uint8)).save(run / "trials" / "gan-s0" / PICTURE)
    build_report([run])
    md = read_md(run)
    assert "](<plots/copying.png>)" in md
    assert "16 generated samples closest to a training image (left of each pair)" in md
    assert (run / "plots" / "copying.png").is_file()
    assert "no trial has a copying.png" not in md  # runs without the picture say nothing


def test_split_features_slice_a_whole_split_reference_without_inception(noise_dataset):
    """When the run's reference is a whole split, a subset of that split costs no feature pass and
    equals the subset's own features; it gets the subset's own cache key."""
    from bench.evaluation import EvalContext
    from bench.metrics.features import extract_features

    evaluator = _evaluator(noise_dataset, samples=100)  # the reference: the whole test split
    extractor, seen = PixelExtractor(), []
    forward = extractor.forward
    extractor.forward = lambda x: (seen.append(len(x)), forward(x))[1]
    evaluator.extractor = extractor
    whole = evaluator.reference
    before = sum(seen)
    subset, index = EvalContext(evaluator).split_features("test", 100, seed=3)
    assert sum(seen) == before  # no images through the extractor
    direct = extract_features(noise_dataset.split("test").images[index], PixelExtractor())
    assert torch.equal(subset.features, direct)
    assert subset.key.num_images == 100 and subset.key.subset_seed == 3 and subset.key != whole.key
