"""bench.metrics.coverage: density and coverage (Naeem et al. 2020) and the k-NN search.

Checked against the authors' reference implementation (the ``prdc`` package, in the test
extra) and a brute-force transcription of the paper's formulas on fixed toy sets; planted
cases (generated = real, generated far away); the same k-NN balls as precision/recall.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.defaults import DEFAULTS

import bench.metrics.coverage as coverage
from bench.metrics import MetricsError, precision_recall_from_features
from bench.metrics.coverage import (
    NEAREST_K,
    density_coverage_from_features,
    k_nearest,
    kth_neighbour_distance,
    real_radii,
)


def _toy(seed: int = 0, real: int = 200, fake: int = 150, d: int = 16):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((real, d)), 0.8 * rng.standard_normal((fake, d)) + 0.3


def _by_the_paper(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, eqs. for density and coverage, with full distance matrices."""
    rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    nnd = np.sort(rr, axis=1)[:, k]  # column 0 is the point itself
    rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    inside = rf < nnd[:, None]
    return inside.sum() / (k * len(fake)), inside.any(axis=1).mean()


@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_and_coverage_equal_the_paper_formulas(k):
    real, fake = _toy()
    density, cover = _by_the_paper(real, fake, k)
    result = density_coverage_from_features(fake, real, k)
    assert result.density == pytest.approx(density, rel=1e-12)
    assert result.coverage == pytest.approx(cover, rel=1e-12)
    assert 0 < result.coverage < 1 and result.density > 0  # a case where neither is trivial


@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_and_coverage_equal_the_authors_reference_implementation(k):
    prdc = pytest.importorskip("prdc")  # the authors' package (pip install prdc, in the test extra)
    real, fake = _toy(seed=1)
    result = density_coverage_from_features(fake, real, k)
    reference = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    assert result.density == pytest.approx(reference["density"], rel=1e-12)
    assert result.coverage == pytest.approx(reference["coverage"], rel=1e-12)


def test_planted_cases():
    real, _ = _toy(seed=2)
    same = density_coverage_from_features(real, real)
    assert same.coverage == 1.0
    # each real point's ball holds itself and its k-1 nearest neighbours (the k-th is on the
    # open ball's boundary): exactly k per ball, so density 1
    assert same.density == pytest.approx(1.0)
    far = density_coverage_from_features(real + 100.0, real)
    assert far == (0.0, 0.0)
    # all generated samples on one real point: density = (balls holding that point) / k, coverage small
    collapsed = density_coverage_from_features(np.repeat(real[:1], 50, axis=0), real)
    assert collapsed.coverage <= 0.1
    assert collapsed.density == pytest.approx((np.linalg.norm(real - real[0], axis=1)
                                               < kth_neighbour_distance(real, 3).numpy()).sum() / 3)


def test_the_same_k_and_balls_as_precision():
    assert NEAREST_K == DEFAULTS["prc_neighborhood"] == 3
    real, fake = _toy(seed=3)
    real, fake = torch.from_numpy(real).float(), torch.from_numpy(fake).float()
    radii = real_radii(real)
    in_some_ball = (torch.cdist(fake, real) < radii[None]).any(dim=1).float().mean()
    assert float(in_some_ball) == pytest.approx(precision_recall_from_features(fake, real).precision)


def test_chunks_and_dtypes_do_not_change_the_result(monkeypatch):
    real, fake = _toy(seed=4)
    whole = density_coverage_from_features(fake, real)
    monkeypatch.setattr(coverage, "MAX_ELEMENTS", 37)  # many small chunks, one row at a time
    assert density_coverage_from_features(fake, real) == whole
    distances, indices = k_nearest(fake, real, 4)
    full = np.sqrt(((fake[:, None] - real[None]) ** 2).sum(-1))
    assert np.array_equal(indices.numpy(), np.argsort(full, axis=1)[:, :4])
    assert np.allclose(distances.numpy(), np.sort(full, axis=1)[:, :4])
    single = density_coverage_from_features(fake.astype(np.float32), real.astype(np.float32))
    assert single.density == pytest.approx(whole.density, abs=0.01)
    assert single.coverage == pytest.approx(whole.coverage, abs=0.01)


def test_radii_are_kept_per_reference_key_and_bad_input_is_refused():
    real, fake = _toy(seed=5)
    first = real_radii(real, 3, key="ref-a")
    assert real_radii(np.zeros((3, 16)), 3, key="ref-a") is first  # same key: not recomputed
    assert not torch.equal(real_radii(real, 2, key="ref-a"), first)  # another k is another entry
    with pytest.raises(MetricsError, match="k < the number of real samples"):
        density_coverage_from_features(fake, real[:3])
    with pytest.raises(MetricsError, match="feature sizes differ"):
        density_coverage_from_features(fake[:, :8], real)
    with pytest.raises(MetricsError, match="radii must be one per real sample"):
        density_coverage_from_features(fake, real, radii=torch.ones(5))
