"""Density and coverage (Naeem et al. 2020), and the nearest-neighbour search they rest on.

Naeem, Oh, Uh, Choi, Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models",
ICML 2020. With real features X_1..X_N, generated features Y_1..Y_M, and
NND_k(X_i) the distance from X_i to its k-th nearest *other* real sample, B(x, r) the open
ball {y : ||y - x|| < r}::

    density  = 1 / (k M) * sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
    coverage = 1 / N     * sum_i 1[exists j : Y_j in B(X_i, NND_k(X_i))]

Density counts how many real neighbourhoods hold each generated sample: 1 on average when the
generated samples are distributed like the real ones, above 1 when they crowd where the real
samples are densest (it is not bounded by 1), near 0 when they lie outside the real manifold.
Coverage is the share of real samples whose neighbourhood holds at least one generated sample
(1 when every mode is reached). The balls are open (strict ``<``), as in the authors' reference
implementation (``prdc``); torch-fidelity's precision/recall counts the boundary (``<=``),
which only matters for exact ties.

Here k = 3, the same k as the improved precision/recall of ``bench.metrics.fidelity`` (whose
real k-NN balls are the same balls), the real samples are the ``--eval-ref`` reference
features and the generated ones the evaluation's samples, all Inception pool3.

Distances are Euclidean, computed by ``torch.cdist`` on the CPU in chunks of at most
``MAX_ELEMENTS`` distances, in the features' own dtype (float32 for Inception features).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import numpy as np
import torch

from bench.metrics.errors import MetricsError

NEAREST_K = 3  # = torch-fidelity's prc_neighborhood, the k of bench's precision/recall
MAX_ELEMENTS = 1 << 25  # distances per cdist chunk (128 MiB of float32)

Features = torch.Tensor | np.ndarray


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


def as_matrix(x: Features, name: str = "features") -> torch.Tensor:
    """A 2-D floating CPU tensor (dtype kept; integers become float64)."""
    t = torch.as_tensor(x).detach().cpu()
    if t.ndim != 2 or len(t) < 1:
        raise MetricsError(f"{name} must be [N >= 1, D], got {tuple(t.shape)}")
    return t if t.is_floating_point() else t.double()


def _common(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape[1] != b.shape[1]:
        raise MetricsError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def _rows_per_chunk(columns: int) -> int:
    return max(1, MAX_ELEMENTS // max(1, columns))


def k_nearest(queries: Features, reference: Features, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(distances, indices)``, each ``[Q, k]``: every query's k nearest reference rows,
    nearest first. A query that is itself a reference row finds itself first (distance 0)."""
    q, r = _common(as_matrix(queries, "queries"), as_matrix(reference, "reference"))
    if not 1 <= k <= len(r):
        raise MetricsError(f"cannot find {k} nearest neighbours among {len(r)} reference samples")
    distances, indices = [], []
    for chunk in q.split(_rows_per_chunk(len(r))):
        d = torch.cdist(chunk, r)
        if k == 1:
            value, index = d.min(dim=1, keepdim=True)
        else:
            value, index = d.topk(k, dim=1, largest=False, sorted=True)
        distances.append(value)
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def kth_neighbour_distance(features: Features, k: int, reference: Features | None = None) -> torch.Tensor:
    """``[N]``: each row's distance to its k-th nearest *other* row of ``reference`` (default:
    ``features`` itself), the rows of ``features`` being rows of ``reference``. As in the
    reference implementation this is the (k+1)-th smallest distance, counting the row itself."""
    reference = features if reference is None else reference
    return k_nearest(features, reference, k + 1)[0][:, k]


# The real radii depend only on the reference: kept for the next evaluation of the same run.
_RADII_CACHE: dict[Hashable, torch.Tensor] = {}


def real_radii(real: Features, k: int = NEAREST_K, key: Hashable | None = None) -> torch.Tensor:
    """NND_k of every real sample; remembered (one entry) under ``key`` when given, e.g. the
    reference's ``ReferenceKey``, since it costs N x N distances."""
    if key is not None and (key, k) in _RADII_CACHE:
        return _RADII_CACHE[(key, k)]
    real = as_matrix(real, "real features")
    if k >= len(real):
        raise MetricsError(f"density and coverage need more than k={k} real samples, got {len(real)}")
    radii = kth_neighbour_distance(real, k)
    if key is not None:
        _RADII_CACHE.clear()
        _RADII_CACHE[(key, k)] = radii
    return radii


def density_coverage_from_features(generated: Features, real: Features, k: int = NEAREST_K, *,
                                   radii: torch.Tensor | None = None) -> DensityCoverage:
    """Density and coverage of ``generated`` against ``real`` features (Naeem et al. 2020), with
    k-NN balls of the real samples; ``radii``: their NND_k if already known (``real_radii``)."""
    fake, real = _common(as_matrix(generated, "generated features"), as_matrix(real, "real features"))
    if k < 1 or k >= len(real):
        raise MetricsError(f"density and coverage need 1 <= k < the number of real samples "
                           f"(k={k}, {len(real)} real samples)")
    radii = real_radii(real, k) if radii is None else torch.as_tensor(radii).to(real.dtype)
    if radii.shape != (len(real),):
        raise MetricsError(f"radii must be one per real sample, got {tuple(radii.shape)} for {len(real)}")
    inside_count = torch.zeros(len(fake), dtype=torch.int64)  # real balls holding each generated sample
    covered = 0  # real samples whose ball holds a generated sample
    rows = _rows_per_chunk(len(fake))
    for real_chunk, radius_chunk in zip(real.split(rows), radii.split(rows), strict=True):
        inside = torch.cdist(real_chunk, fake) < radius_chunk[:, None]
        inside_count += inside.sum(dim=0)
        covered += int(inside.any(dim=1).sum())
    density = float(inside_count.sum()) / (k * len(fake))
    return DensityCoverage(density, covered / len(real))
