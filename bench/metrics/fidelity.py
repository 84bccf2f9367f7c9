"""FID, KID, precision/recall, Inception Score and FID-infinity from extracted features.

Every metric is torch-fidelity's own function with torch-fidelity's default settings, so a
number here equals ``torch_fidelity.calculate_metrics`` on the same images. Convention, as
in torch-fidelity: the first argument holds the generated samples, the second the real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import (
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    isc_features_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)
from torch_fidelity.metric_prc import (
    KEY_METRIC_F_SCORE,
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
    prc_features_to_metric,
)

from bench.metrics.errors import MetricsError
from bench.metrics.features import ImageSource, extract_features_dict
from bench.metrics.inception import LOGITS, require_logits_head

Features = torch.Tensor | np.ndarray
Statistics = Mapping[str, np.ndarray]  # torch-fidelity's {"mu": [D], "sigma": [D, D]}


class KID(NamedTuple):
    mean: float
    std: float


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float
    f_score: float


class InceptionScore(NamedTuple):
    mean: float
    std: float


class FIDInfinity(NamedTuple):
    fid_infinity: float  # the fit's intercept at 1/N = 0
    slope: float  # d FID / d(1/N)
    sizes: list[int]  # the subsample sizes N_i
    fids: list[float]  # FID at each N_i
    seed: int  # seeds the random subsets


def _features(x: Features) -> torch.Tensor:
    """A 2-D CPU tensor, dtype unchanged (torch-fidelity's functions need exactly that)."""
    t = torch.as_tensor(x).detach().cpu()
    if t.ndim != 2 or len(t) < 2:
        raise MetricsError(f"features must be [N >= 2, D], got {tuple(t.shape)}")
    return t


def fid_statistics(features: Features) -> dict[str, np.ndarray]:
    """torch-fidelity's FID statistics ``{"mu", "sigma"}`` of ``[N, D]`` features."""
    return fid_features_to_statistics(_features(features))


def sqrtm_psd(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix, in float64 (eigenvalues below 0, from
    rounding, are taken as 0)."""
    w, v = np.linalg.eigh(np.asarray(sigma, dtype=np.float64))
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


# How a reference's covariance factor R (R^T R = Sigma) was made; "cholesky" is upper triangular.
FACTOR_KINDS = ("features", "cholesky", "sqrt")


def covariance_factor(sigma: np.ndarray, features: Features | None = None) -> tuple[np.ndarray, str]:
    """``(R, kind)`` with R^T R = Sigma, in float64, ``[k, D]``: the centred features / sqrt(N - 1)
    when there are at most D of them (k = N: Sigma has rank below N), else the upper Cholesky
    factor of Sigma, or its symmetric square root if Sigma is singular."""
    if features is not None:
        x = np.asarray(torch.as_tensor(features).detach().cpu().double().numpy())
        if len(x) <= x.shape[1]:
            return (x - x.mean(axis=0)) / np.sqrt(len(x) - 1), "features"
    sigma = np.asarray(sigma, dtype=np.float64)
    try:
        return np.linalg.cholesky(sigma).T, "cholesky"
    except np.linalg.LinAlgError:
        return sqrtm_psd(sigma), "sqrt"


def with_factor(stats: Statistics, features: Features | None = None) -> dict[str, np.ndarray]:
    """``stats`` plus ``"factor"`` and ``"factor_kind"`` (``covariance_factor``): made once per
    reference, it makes every FID against it a small symmetric eigenvalue problem."""
    out = dict(stats)
    if "factor" not in out:
        out["factor"], out["factor_kind"] = covariance_factor(out["sigma"], features)
    return out


def generated_statistics(features: Features) -> dict[str, np.ndarray]:
    """``fid_statistics`` of generated features, plus their centred features as the covariance
    factor when there are at most D of them: the FID's eigenproblem is then N x N whatever the
    reference's rank (``fid_from_statistics``)."""
    stats = fid_statistics(features)
    if len(features) <= stats["sigma"].shape[0]:
        stats["factor"], stats["factor_kind"] = covariance_factor(stats["sigma"], features)
    return stats


def _congruence(factor: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """R Sigma R^T, symmetric, in float64, for a dense factor (features or a symmetric square
    root; a Cholesky factor goes through dsygst in ``_trace_sqrt``)."""
    product = factor @ sigma @ factor.T
    return (product + product.T) / 2


def _trace_sqrt(factor: np.ndarray, kind: str, sigma: np.ndarray) -> float:
    """tr sqrt(R Sigma R^T): the sum of the square roots of its eigenvalues (negative ones, from
    rounding, taken as 0), in float64.

    A Cholesky factor goes through LAPACK's dsygst, which forms one triangle of R Sigma R^T using
    Sigma's symmetry: half the flops of two triangular products (about 0.20 s against 0.37 s for
    D = 2,048 on the 2-core CPU), which with the eigenvalue solve (0.40-0.50 s) is the whole FID
    when both sides are full rank.
    """
    from scipy.linalg import eigh

    if kind == "cholesky":
        from scipy.linalg.lapack import dsygst

        # itype=2 with the upper factor forms R Sigma R^T in the upper triangle: 0.20 s against
        # 0.27 s for the lower variant with R^T, medians of 8 at D = 2,048. Sigma^T = Sigma, so
        # its transpose is a Fortran-ordered view; the one copy is the one dsygst overwrites.
        # covariance_factor's R (cholesky(Sigma).T) is Fortran-ordered already.
        product, info = dsygst(np.array(sigma.T, order="F"), np.asfortranarray(factor),
                               itype=2, lower=0, overwrite_a=1)
        if info != 0:
            raise MetricsError(f"LAPACK dsygst failed (info={info}) on the FID's covariances")
        upper = True
    else:
        product, upper = _congruence(factor, sigma), False
    # the divide-and-conquer driver: the fastest here (1,000: 0.057 s against evr's 0.104 s and
    # numpy's 0.074 s; 2,048: 0.40 s against 0.45 s)
    eigenvalues = eigh(product, lower=not upper, eigvals_only=True, driver="evd", overwrite_a=True,
                       check_finite=False)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def fid_from_statistics(stats_1: Statistics, stats_2: Statistics) -> float:
    """Fréchet distance between generated ``stats_1`` and reference ``stats_2`` (``{"mu", "sigma"}``,
    the reference optionally with its ``"factor"``, see ``with_factor``), in float64.

    With R^T R = Sigma_2, the matrices Sigma_1 Sigma_2 and R Sigma_1 R^T have the same eigenvalues,
    so tr sqrt(Sigma_1 Sigma_2) is the sum of the square roots of the eigenvalues of the symmetric
    k x k matrix R Sigma_1 R^T: a symmetric eigenvalue problem instead of torch-fidelity's general
    one (``np.linalg.eigvals`` of Sigma_1 Sigma_2), the same value (to 1e-6 relative on real
    features, a test), and R made once per reference. k is the reference's rank bound: N when it
    has fewer images than feature dimensions, else D (R from a Cholesky factorisation).
    """
    mu1, mu2 = (np.asarray(s["mu"], dtype=np.float64) for s in (stats_1, stats_2))
    if mu1.shape != mu2.shape:
        raise MetricsError(f"feature sizes differ: {mu1.shape} vs {mu2.shape}")
    sigma1 = np.asarray(stats_1["sigma"], dtype=np.float64)
    sigma2 = np.asarray(stats_2["sigma"], dtype=np.float64)
    own = stats_1.get("factor") if stats_1.get("factor_kind") == "features" else None
    ref = stats_2 if "factor" in stats_2 else with_factor(stats_2)
    if own is not None and len(own) < len(ref["factor"]):
        trace_sqrt = _trace_sqrt(np.asarray(own, dtype=np.float64), "features", sigma2)
    else:
        trace_sqrt = _trace_sqrt(np.asarray(ref["factor"], dtype=np.float64), ref["factor_kind"], sigma1)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid_from_statistics_torch_fidelity(stats_1: Statistics, stats_2: Statistics) -> float:
    """torch-fidelity's own ``fid_statistics_to_metric`` (the reference the fast path is checked
    and benchmarked against); dtypes promoted only if they differ."""
    s1 = {k: np.asarray(stats_1[k]) for k in ("mu", "sigma")}
    s2 = {k: np.asarray(stats_2[k]) for k in ("mu", "sigma")}
    if s1["mu"].shape != s2["mu"].shape:
        raise MetricsError(f"feature sizes differ: {s1['mu'].shape} vs {s2['mu'].shape}")
    for k in ("mu", "sigma"):
        if s1[k].dtype != s2[k].dtype:
            common = np.result_type(s1[k], s2[k])
            s1[k], s2[k] = s1[k].astype(common), s2[k].astype(common)
    return fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID]


def _subset_fid(features: np.ndarray, ref: Statistics) -> float:
    """FID of ``[n, D]`` features against reference statistics, fast when n < D.

    With Y the centred features, Sigma_g = Y^T Y / (n - 1), and the trace term
    tr sqrt(Sigma_r^1/2 Sigma_g Sigma_r^1/2) is the sum of square roots of the eigenvalues
    of the n x n matrix Y Sigma_r Y^T / (n - 1): the same non-zero spectrum, found without
    a D x D matrix square root. For n >= D it is ``fid_from_statistics``'s D x D problem.
    """
    n, d = features.shape
    if n >= d:
        return fid_from_statistics(fid_statistics(torch.from_numpy(features)), ref)
    mu_r = np.asarray(ref["mu"], dtype=np.float64)
    sigma_r = np.asarray(ref["sigma"], dtype=np.float64)
    mu_g = features.mean(axis=0)
    y = features - mu_g
    trace_sqrt = _trace_sqrt(y / np.sqrt(n - 1), "features", sigma_r)
    trace_g = np.einsum("ij,ij->", y, y) / (n - 1)
    return float(((mu_g - mu_r) ** 2).sum() + trace_g + np.trace(sigma_r) - 2 * trace_sqrt)


def fid_from_features(features_1: Features, features_2: Features) -> float:
    """FID between two feature sets, as ``calculate_metrics(fid=True)`` computes it."""
    return fid_from_statistics(fid_statistics(features_1), fid_statistics(features_2))


def kid_from_features(
    features_1: Features,
    features_2: Features,
    subsets: int = DEFAULTS["kid_subsets"],
    subset_size: int = DEFAULTS["kid_subset_size"],
    seed: int = DEFAULTS["rng_seed"],
) -> KID:
    """KID mean and std over ``subsets`` random subsets (torch-fidelity's polynomial kernel)."""
    f1, f2 = _features(features_1), _features(features_2)
    if subset_size > min(len(f1), len(f2)):
        raise MetricsError(
            f"KID subset size {subset_size} is larger than the feature sets "
            f"({len(f1)} and {len(f2)}); lower subset_size or use more samples"
        )
    out = kid_features_to_metric(
        f1, f2, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False
    )
    return KID(out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD])


def precision_recall_from_features(
    generated: Features, real: Features, k: int = DEFAULTS["prc_neighborhood"]
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls of size ``k``.

    Note: torch-fidelity's own default for precision/recall is VGG16 features; fed Inception
    pool3 features this equals ``calculate_metrics(prc=True, feature_extractor=
    "inception-v3-compat")``.
    """
    g, r = _features(generated), _features(real)
    if k >= min(len(g), len(r)):
        raise MetricsError(f"precision/recall needs more than k={k} samples per set")
    out = prc_features_to_metric(g, r, prc_neighborhood=k, verbose=False)
    return PrecisionRecall(
        out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL], out[KEY_METRIC_F_SCORE]
    )


def inception_score_from_logits(
    logits: Features, splits: int = DEFAULTS["isc_splits"], seed: int = DEFAULTS["rng_seed"]
) -> InceptionScore:
    """Inception Score from ``logits_unbiased`` features; refuses NaN logits."""
    t = _features(logits)
    if not torch.isfinite(t).all():
        raise MetricsError("logits contain NaN or inf: Inception Score cannot be computed")
    if len(t) < splits:
        raise MetricsError(f"Inception Score over {splits} splits needs at least {splits} images, "
                           f"got {len(t)}")
    shuffle = DEFAULTS["samples_shuffle"]
    out = isc_features_to_metric(t, splits=splits, shuffle=shuffle, rng_seed=seed)
    return InceptionScore(out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD])


def inception_score(
    source: ImageSource,
    extractor,
    *,
    splits: int = DEFAULTS["isc_splits"],
    seed: int = DEFAULTS["rng_seed"],
    **extract_kwargs,
) -> InceptionScore:
    """Inception Score of images; refuses (before any Inception pass) weights without a head."""
    require_logits_head(extractor)
    logits = extract_features_dict(source, extractor, **extract_kwargs)[LOGITS]
    return inception_score_from_logits(logits, splits=splits, seed=seed)


def fid_infinity_from_features(
    generated: Features,
    reference: Features | Statistics,
    *,
    num_points: int = 15,
    min_samples: int | None = None,
    seed: int = 0,
) -> FIDInfinity:
    """FID extrapolated to infinitely many generated samples (Chong & Forsyth, CVPR 2020).

    FID is computed on random subsets (without replacement, a fresh one per size, from
    ``seed``) of ``num_points`` sizes evenly spaced from ``min_samples`` (default
    ``min(5000, N // 2)``; the paper uses 5,000 of 50,000) to N; a least-squares line of FID
    against 1/N is fitted and its value at 1/N = 0 returned. ``reference``: real features or
    their ``{"mu", "sigma"}``. No further Inception passes; each point costs one FID.
    """
    gen = _features(generated)
    n = len(gen)
    ref = (with_factor(reference) if isinstance(reference, Mapping)
           else with_factor(fid_statistics(reference), reference))
    if min_samples is None:
        min_samples = min(5000, n // 2)
    if not 2 <= min_samples < n:
        raise MetricsError(
            f"FID-infinity needs 2 <= min_samples < N; got min_samples={min_samples}, N={n}"
        )
    sizes = np.unique(np.linspace(min_samples, n, num_points).astype(np.int64))
    if len(sizes) < 2:
        raise MetricsError("FID-infinity needs at least two distinct subsample sizes")
    rng = np.random.default_rng(seed)
    fids = []
    for size in sizes:
        index = np.sort(rng.permutation(n)[:size])
        fids.append(_subset_fid(gen[torch.from_numpy(index)].double().numpy(), ref))
    slope, intercept = np.polyfit(1.0 / sizes, np.asarray(fids), deg=1)
    return FIDInfinity(float(intercept), float(slope), sizes.tolist(), fids, seed)
