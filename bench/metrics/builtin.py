"""The built-in metrics, registered through the same hook a third-party metric uses.

Each is a function of an ``EvalContext`` (``bench.evaluation``), which generates the samples,
extracts their Inception pool3 features and loads the reference features once per
evaluation, however many metrics use them. The sample metrics compare ``--eval-samples``
generated images with the reference (``--eval-ref``, ``--ref-samples``): FID, KID and
precision/recall are computed by torch-fidelity's own functions (``bench.metrics.fidelity``),
density/coverage by ``bench.metrics.coverage``. Data copying compares them with fixed subsets
of the train and test splits instead (``bench.metrics.copying``).

This module imports no torch at load time: reports read the column declarations below for run
folders older than the manifest's own ``columns``.
"""

from __future__ import annotations

import math

from bench.hookspecs import hookimpl
from bench.metric import Metric
from bench.store.columns import Column


def fid(ctx) -> dict:
    """FID (Heusel et al. 2017) and FID-infinity (Chong & Forsyth 2020: FID on 15 subsample
    sizes, a line against 1/N, extrapolated to 1/N = 0), from the same features."""
    from bench.metrics.fidelity import fid_from_statistics, fid_infinity_from_features, generated_statistics

    features, reference = ctx.sample_features, ctx.reference_statistics
    return {
        "fid": fid_from_statistics(generated_statistics(features), reference),
        "fid_infinity": fid_infinity_from_features(features, reference, seed=ctx.noise_seed).fid_infinity,
    }


def inception_score(ctx) -> dict:
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over the Inception
    network's 1008-way unbiased logits, from the same pass as the pool3 features; torch-fidelity's
    ``isc_features_to_metric`` with its defaults (10 splits of the shuffled samples, seed 2020),
    so it equals ``calculate_metrics(isc=True)`` on the same images and weights. Needs weights
    with a logits head (``bench.evaluation.select_metrics`` leaves it out, or refuses it, for
    weights whose ``fc`` is NaN)."""
    from bench.metrics.fidelity import inception_score_from_logits

    score = inception_score_from_logits(ctx.sample_logits)
    return {"inception_score_mean": score.mean, "inception_score_std": score.std}


def kid(ctx) -> dict:
    """KID (Binkowski et al. 2018): mean and std over subsets of min(1000, N) images."""
    from bench.metrics.fidelity import kid_from_features

    real = ctx.reference.features
    result = kid_from_features(ctx.sample_features, real,
                               subset_size=min(1000, len(ctx.sample_features), len(real)))
    return {"kid_mean": result.mean, "kid_std": result.std}


def precision_recall(ctx) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3, on Inception features."""
    from bench.metrics.fidelity import precision_recall_from_features

    result = precision_recall_from_features(ctx.sample_features, ctx.reference.features)
    return {"precision": result.precision, "recall": result.recall}


def density_coverage(ctx) -> dict:
    """Density and coverage (Naeem et al. 2020) of the samples against the --eval-ref reference,
    k = 3 as precision/recall: with NND_k(X_i) the distance from real X_i to its k-th nearest
    other real sample, density = 1/(kM) sum_j sum_i 1[|Y_j - X_i| < NND_k(X_i)] (1 for samples
    distributed like the reference, can exceed 1) and coverage = 1/N sum_i 1[exists j:
    |Y_j - X_i| < NND_k(X_i)]. The real radii are kept for the run's next evaluation."""
    from bench.metrics.coverage import NEAREST_K, density_coverage_from_features, real_radii

    reference = ctx.reference
    radii = real_radii(reference.features, NEAREST_K, key=getattr(reference, "key", None))
    result = density_coverage_from_features(ctx.sample_features, reference.features, NEAREST_K, radii=radii)
    return {"density": result.density, "coverage": result.coverage}


def data_copying(ctx) -> dict:
    """Training-data copying: C_T of Meehan et al. 2020 (k-means cells over training features,
    per cell the Mann-Whitney U of generated-to-train against test-to-train nearest-neighbour
    distances, Z-scored; the cells' Z weighted by their share of test images; 0 ideal, << 0
    copying, >> 0 underfitting) and the authenticity of Alaa et al. 2022 (share of samples
    farther from their nearest training image than that image is from its nearest other one),
    also for held-out test images as the no-copying baseline. Saves ``copying.png`` (the 16
    samples nearest a training image beside it) at a trial's final evaluation. Details, subset
    sizes and cost: ``bench.metrics.copying``."""
    from bench.metrics.copying import data_copying_metric

    return data_copying_metric(ctx)


def reconstruction(ctx) -> dict:
    """Pixel MSE (images in [0, 1]) and PSNR of held-out test images, and the FID of the
    reconstructions against their originals (NaN with --eval-samples 0)."""
    import torch

    from bench.metrics.fidelity import fid_from_statistics, generated_statistics

    x, x_hat = ctx.recon_originals_float, ctx.reconstructions
    mse = ((x_hat - x) / 2).pow(2).flatten(1).mean(1).double()
    row = {"recon_mse": float(mse.mean()),
           "recon_psnr": float((10 * torch.log10(1.0 / mse.clamp_min(1e-12))).mean()),
           "recon_fid": math.nan}
    if ctx.settings.samples > 0 and len(x) > 1:
        real = ctx.recon_reference_statistics  # the originals' features are cached like a reference
        row["recon_fid"] = fid_from_statistics(generated_statistics(ctx.reconstruction_features), real)
    return row


BUILTIN_METRICS = {
    "fid": Metric(fid, (Column("fid", "FID", "lower", minimum=0.0),
                        Column("fid_infinity", "FID-infinity", "lower", minimum=0.0)), per_extractor=True),
    "inception-score": Metric(inception_score, (
        Column("inception_score_mean", "Inception Score", "higher", name="inception_score", minimum=1.0),
        Column("inception_score_std", "Inception Score standard deviation over splits", summary=False),
    )),
    "kid": Metric(kid, (Column("kid_mean", "KID", "lower", name="kid", minimum=0.0),
                        Column("kid_std", "KID standard deviation over subsets", summary=False)),
                  per_extractor=True),
    "precision-recall": Metric(precision_recall, (
        Column("precision", "precision", "higher", minimum=0.0, maximum=1.0),
        Column("recall", "recall", "higher", minimum=0.0, maximum=1.0),
    ), per_extractor=True),
    "density-coverage": Metric(density_coverage, (
        Column("density", "density (can exceed 1)", "higher", minimum=0.0),
        Column("coverage", "coverage", "higher", minimum=0.0, maximum=1.0),
    ), per_extractor=True),
    "data-copying": Metric(data_copying, (
        Column("copying_ct", "data-copying C_T (0 ideal, < 0 copying)", None),
        Column("authenticity", "authenticity", "higher", minimum=0.0, maximum=1.0),
        Column("authenticity_heldout", "authenticity of held-out real images (no-copying baseline)",
               None, summary=False),
    )),
    "reconstruction": Metric(reconstruction, (
        Column("recon_mse", "reconstruction MSE", "lower", "pixels in [0, 1]", minimum=0.0),
        Column("recon_psnr", "reconstruction PSNR", "higher", "dB"),
        Column("recon_fid", "reconstruction FID", "lower", minimum=0.0),
    ), needs="encoder"),
}


@hookimpl
def bench_register_metrics(register):
    for name, metric in BUILTIN_METRICS.items():
        register(name, metric)
