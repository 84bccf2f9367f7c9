"""Training-data copying: the C_T test of Meehan et al. (2020), the authenticity of Alaa et al.
(2022), and a picture of the generated samples nearest to a training image.

**C_T** (Meehan, Chaudhuri, Dasgupta, "A Non-Parametric Test to Detect Data-Copying in
Generative Models", AISTATS 2020). Training sample T, held-out test sample P_n (n images) and
generated sample Q_m (m images), all Inception pool3 features. T is cut into cells pi by k-means
on T; every test or generated point belongs to the cell of its nearest centroid. In a cell,
L(x) is the distance from x to its nearest training point *of that cell*, and U the
Mann-Whitney U statistic of {L(q)} (generated) against {L(p)} (test): the number of
(generated, test) pairs where the generated point is farther from the training data, ties
counting one half. Z-scored under the null hypothesis (both the same distribution), with the
continuity correction of the authors' code::

    Z_U(pi) = (U - m_pi n_pi / 2 + 1/2) / sqrt(m_pi n_pi (m_pi + n_pi + 1) / 12)
    C_T     = sum_{pi in Pi_tau} P_n(pi) Z_U(pi) / sum_{pi in Pi_tau} P_n(pi)

where P_n(pi), Q_m(pi) are the shares of test and generated points in pi, and Pi_tau the cells
with Q_m(pi) > tau, tau = 20 / m (more than 20 generated samples; the paper's choice). C_T is
about N(0, 1) for a generator that does not copy (as for a fresh draw of real images);
C_T << 0 means generated samples are closer to the training data than new real data are
(copying); C_T >> 0 means they are farther (underfitting, or samples off the data manifold).
0 is ideal, so the column has no "better" direction. With m <= 20 no cell qualifies: NaN. (The
authors' code refuses a cell without test points; here it weighs P_n(pi) = 0, i.e. nothing.)

**Authenticity** (Alaa, van Breugel, Saveliev, van der Schaar, "How Faithful is your Synthetic
Data? Sample-level Metrics for Evaluating and Auditing Generative Models", ICML 2022). A
generated sample g with nearest training point x* is *unauthentic* when it is closer to x*
than x* is to its nearest other training point: ``d(g, x*) <= min_{x != x*} d(x*, x)``;
authenticity is the share of authentic samples (higher: fewer near-copies). It is not 1 for a
perfect generator: ``authenticity_heldout`` is the same share for held-out test images, what a
generator drawing fresh real images scores against the same training sample. This is the
paper's per-sample definition (Sec. 3.3); the authors' released code averages a comparison over
the real samples instead (and indexes the real-to-real distances by a synthetic sample's index).

**What is searched.** The training sample T is a fixed random subset (seed 0) of m images of
the train split (of the images trained on, ``--subset`` included; all of them when fewer), and
P_n one of m images of the test split (n = m, as in the paper's experiments). Their features
come from ``EvalContext.split_features``, cached on disk like any reference: at most 2m extra
images through Inception, once per dataset, and none for a split that ``--eval-ref`` already
uses with ``--ref-samples`` m (the same subset). A copy of a training image outside T is not
seen as one, so on a training set larger than m the statistics under-count copying (C_T still
shifts below 0 by the share of copies that fall in T). Cells: ``clip(m // CELL_SIZE, 1,
MAX_CELLS)`` (the paper: 50 cells for m = 10,000), k-means++ seeding then scipy's ``kmeans2``,
with a fixed seed: the same cells at every evaluation.

Cost (Euclidean distances by chunked ``torch.cdist`` on the CPU, in the features' float32):
per evaluation m x m distances, the generated samples' to T (in-cell ones come cheap beside
them); once per run, kept for the next evaluations of the same T and P_n: k-means and about
2 m x m distances for the training radii and the held-out side.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from bench.metrics.coverage import Features, as_matrix, k_nearest, kth_neighbour_distance
from bench.metrics.errors import MetricsError
from bench.store.layout import COPYING_FILE

PICTURE = COPYING_FILE  # saved in the trial folder at the final evaluation
PAIRS = 16  # generated samples in the picture, each beside its nearest training image
PAIRS_PER_ROW = 4
CELL_SIZE = 200  # generated samples per k-means cell on average
MAX_CELLS = 50
MIN_PER_CELL = 20  # tau = MIN_PER_CELL / m
KEYS = ("copying_ct", "authenticity", "authenticity_heldout")


# ------------------------------------------------------------------------------ cells


@dataclasses.dataclass
class Cells:
    """A k-means partition of the training features."""

    centroids: torch.Tensor  # [K, D]
    train_labels: np.ndarray  # [|T|], every cell has at least one training point

    def __len__(self) -> int:
        return len(self.centroids)

    def assign(self, x: Features) -> np.ndarray:
        """The cell of each row: that of its nearest centroid."""
        return k_nearest(x, self.centroids, 1)[1][:, 0].numpy()


def cell_count(m: int) -> int:
    """Cells for m generated samples: about CELL_SIZE generated samples each, 1 to MAX_CELLS."""
    return int(np.clip(m // CELL_SIZE, 1, MAX_CELLS))


def _kmeans_plus_plus(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability
    proportional to the squared distance to the nearest centre so far."""
    chosen = [int(rng.integers(len(x)))]
    nearest = torch.cdist(x, x[chosen[0]][None])[:, 0].double() ** 2
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0:  # fewer distinct points than k
            break
        index = int(rng.choice(len(x), p=(nearest / total).numpy()))
        chosen.append(index)
        nearest = torch.minimum(nearest, torch.cdist(x, x[index][None])[:, 0].double() ** 2)
    return x[chosen]


def kmeans_cells(train: Features, cells: int, seed: int = 0) -> Cells:
    """k-means (k-means++ seeding, then scipy's ``kmeans2``, 10 iterations) on the training
    features; cells left without a training point are dropped."""
    x = as_matrix(train, "training features")
    cells = max(1, min(int(cells), len(x)))
    if cells == 1:
        return Cells(x.mean(dim=0, keepdim=True), np.zeros(len(x), dtype=np.int64))
    start = _kmeans_plus_plus(x, cells, np.random.default_rng(seed))
    with warnings.catch_warnings():  # an emptied cluster keeps its centre; dropped below
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        centroids, _ = kmeans2(x.numpy(), start.numpy(), iter=10, minit="matrix", missing="warn")
    partition = Cells(torch.from_numpy(np.ascontiguousarray(centroids)), np.zeros(0, dtype=np.int64))
    labels = partition.assign(x)
    used = np.bincount(labels, minlength=len(centroids)) > 0
    partition.centroids = partition.centroids[torch.from_numpy(used)]
    partition.train_labels = partition.assign(x) if not used.all() else labels
    return partition


def in_cell_distances(x: Features, labels: np.ndarray, train: Features, cells: Cells) -> np.ndarray:
    """Each row's distance to its nearest training point in its own cell."""
    x, train = as_matrix(x), as_matrix(train)
    out = np.empty(len(x), dtype=np.float64)
    for cell in np.unique(labels):
        rows = np.flatnonzero(labels == cell)
        members = torch.from_numpy(np.flatnonzero(cells.train_labels == cell))
        out[rows] = k_nearest(x[torch.from_numpy(rows)], train[members], 1)[0][:, 0].double().numpy()
    return out


# ------------------------------------------------------------------------------ C_T


def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> float:
    """The Mann-Whitney U of sample ``x`` against ``y``: the pairs with x_i > y_j, ties counting
    one half (scipy.stats.mannwhitneyu's statistic, a test; counted here by binary search because
    importing scipy.stats costs more than a second at every run's first evaluation)."""
    y = np.sort(y)
    below = np.searchsorted(y, x, side="left")
    at_or_below = np.searchsorted(y, x, side="right")
    return float(below.sum() + 0.5 * (at_or_below - below).sum())


def zu_statistic(generated_distances, test_distances) -> float:
    """Meehan et al.'s Z_U: the Mann-Whitney U of the generated samples' distances against the
    test samples' (``alternative="less"``: copying makes them smaller), Z-scored under the null
    hypothesis with continuity correction (no tie correction, as the authors' code)."""
    g = np.asarray(generated_distances, dtype=np.float64).ravel()
    t = np.asarray(test_distances, dtype=np.float64).ravel()
    m, n = len(g), len(t)
    if m == 0 or n == 0:
        raise MetricsError("Z_U needs at least one generated and one test distance")
    u = mann_whitney_u(g, t)
    return (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)


@dataclasses.dataclass
class CopyingReference:
    """What depends on T and P_n only (kept between evaluations): the cells, each test point's
    cell and in-cell distance to T, every training point's distance to its nearest other one,
    and the held-out images' authenticity."""

    train: torch.Tensor
    test: torch.Tensor
    cells: Cells
    test_labels: np.ndarray
    test_distances: np.ndarray
    train_radius: torch.Tensor
    heldout_authenticity: float


def prepare(train: Features, test: Features, cells: int, seed: int = 0) -> CopyingReference:
    train, test = as_matrix(train, "training features"), as_matrix(test, "test features")
    partition = kmeans_cells(train, cells, seed)
    labels = partition.assign(test)
    radius = kth_neighbour_distance(train, 1) if len(train) > 1 else torch.zeros(len(train))
    heldout = authenticity(test, train, radius).share if len(train) > 1 else math.nan
    return CopyingReference(train, test, partition, labels, in_cell_distances(test, labels, train, partition),
                            radius, heldout)


class CopyingStatistic(NamedTuple):
    c_t: float  # NaN when no cell has more than tau m generated samples
    zu: np.ndarray  # [K] Z_U per cell, NaN where not computed
    test_share: np.ndarray  # [K] P_n(pi)
    generated_share: np.ndarray  # [K] Q_m(pi)
    included: np.ndarray  # [K] bool: in Pi_tau (and holding a test point)
    tau: float


def c_t_statistic(generated: Features, reference: CopyingReference,
                  tau: float | None = None) -> CopyingStatistic:
    """C_T of the generated features against a prepared training / test pair."""
    q = as_matrix(generated, "generated features")
    m, k = len(q), len(reference.cells)
    tau = MIN_PER_CELL / m if tau is None else float(tau)
    labels = reference.cells.assign(q)
    distances = in_cell_distances(q, labels, reference.train, reference.cells)
    test_share = np.bincount(reference.test_labels, minlength=k) / len(reference.test_labels)
    generated_share = np.bincount(labels, minlength=k) / m
    included = (generated_share > tau) & (test_share > 0)  # a cell without test points weighs 0
    zu = np.full(k, np.nan)
    for cell in np.flatnonzero(included):
        test_distances = reference.test_distances[reference.test_labels == cell]
        zu[cell] = zu_statistic(distances[labels == cell], test_distances)
    weight = test_share[included].sum()
    c_t = float(test_share[included] @ zu[included] / weight) if weight > 0 else math.nan
    return CopyingStatistic(c_t, zu, test_share, generated_share, included, tau)


def c_t(generated: Features, test: Features, train: Features, *, cells: int | None = None,
        tau: float | None = None, seed: int = 0) -> float:
    """C_T(P_n, Q_m) with T cut into ``cells`` k-means cells (default ``cell_count(m)``)."""
    m = len(as_matrix(generated, "generated features"))
    reference = prepare(train, test, cell_count(m) if cells is None else cells, seed)
    return c_t_statistic(generated, reference, tau).c_t


# ------------------------------------------------------------------------------ authenticity


class Authenticity(NamedTuple):
    share: float  # of authentic samples
    authentic: np.ndarray  # [m] bool
    nearest_index: np.ndarray  # [m] the row of T nearest to each sample
    nearest_distance: np.ndarray  # [m] its distance
    train_radius: np.ndarray  # [m] that training row's distance to its nearest other training row


def authenticity(generated: Features, train: Features,
                 train_radius: torch.Tensor | None = None) -> Authenticity:
    """Alaa et al.'s authenticity: a sample is unauthentic when its nearest training point x* is
    at least as close to it as to x*'s own nearest other training point. ``train_radius``: that
    distance for every training point, if known (else found for the nearest ones only)."""
    train = as_matrix(train, "training features")
    if len(train) < 2:
        raise MetricsError("authenticity needs at least 2 training samples")
    distance, index = k_nearest(generated, train, 1)
    distance, index = distance[:, 0], index[:, 0]
    if train_radius is None:
        unique, inverse = torch.unique(index, return_inverse=True)
        radius = kth_neighbour_distance(train[unique], 1, reference=train)[inverse]
    else:
        radius = torch.as_tensor(train_radius).to(distance.dtype)[index]
    authentic = (distance > radius).numpy()
    return Authenticity(float(authentic.mean()), authentic, index.numpy(), distance.double().numpy(),
                        radius.double().numpy())


# ------------------------------------------------------------------------------ picture


def _unit(images: torch.Tensor) -> torch.Tensor:
    """Images as float [0, 1] on the CPU, from uint8 or float [-1, 1]."""
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        return images.float() / 255
    return ((images.float() + 1) / 2).clamp(0, 1)


def save_copying_picture(generated: torch.Tensor, train: torch.Tensor, path: str | Path,
                         per_row: int = PAIRS_PER_ROW) -> Path:
    """Pairs (generated | training image) side by side, ``per_row`` pairs a row, in the given
    order; a thin white line inside a pair, a wider one between pairs."""
    from bench.images import save_grid

    g, t = _unit(generated), _unit(train)
    if g.shape != t.shape or g.ndim != 4 or len(g) == 0:
        raise MetricsError(f"pairs need images of one shape, got {tuple(g.shape)} and {tuple(t.shape)}")
    gap = torch.ones(*g.shape[:3], 2)
    pairs = torch.cat([g, gap, t], dim=3)
    path = Path(path)
    save_grid(pairs, path, nrow=per_row, padding=6, pad_value=1.0)
    return path


# ------------------------------------------------------------------------------ the metric

_PREPARED: dict[Hashable, CopyingReference] = {}


def _prepared(train_ref, test_ref, cells: int, seed: int = 0) -> CopyingReference:
    """``prepare`` for two references, remembered (one entry) under their cache keys."""
    keys = (getattr(train_ref, "key", None), getattr(test_ref, "key", None))
    key = (*keys, cells, seed) if None not in keys else None
    if key is not None and key in _PREPARED:
        return _PREPARED[key]
    reference = prepare(train_ref.features, test_ref.features, cells, seed)
    if key is not None:
        _PREPARED.clear()
        _PREPARED[key] = reference
    return reference


def data_copying_metric(ctx) -> dict:
    """The "data-copying" metric: ``copying_ct``, ``authenticity``, ``authenticity_heldout``,
    and ``copying.png`` in the trial folder at a trial's final evaluation. NaN without a
    dataset (or a train split of one image); C_T and the held-out authenticity are NaN without
    a test split."""
    row = dict.fromkeys(KEYS, math.nan)
    dataset = ctx.dataset

    def usable(split: str) -> bool:  # a nearest *other* image needs two
        return dataset is not None and split in dataset.splits and len(dataset.split(split).images) > 1

    if not usable("train"):
        return row
    generated = as_matrix(ctx.sample_features, "generated features")
    m = len(generated)
    train_ref, train_index = ctx.split_features("train", m)
    train = as_matrix(train_ref.features, "training features")
    if usable("test"):
        test_ref, _ = ctx.split_features("test", m)
        reference = _prepared(train_ref, test_ref, cell_count(m))
        row["copying_ct"] = c_t_statistic(generated, reference).c_t
        row["authenticity_heldout"] = reference.heldout_authenticity
        auth = authenticity(generated, train, reference.train_radius)
    else:
        auth = authenticity(generated, train)
    row["authenticity"] = auth.share

    if ctx.output_dir is not None:
        order = np.argsort(auth.nearest_distance, kind="stable")[:PAIRS]
        train_rows = auth.nearest_index[order]
        if train_index is not None:
            train_rows = train_index.numpy()[train_rows]
        images = dataset.split("train").images[torch.from_numpy(train_rows)]
        save_copying_picture(ctx.samples[torch.from_numpy(order).to(ctx.samples.device)], images,
                             Path(ctx.output_dir) / PICTURE)
    return row
