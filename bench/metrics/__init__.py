"""Image-quality metrics: FID, KID, precision/recall, Inception Score, FID-infinity.

Images enter as ``uint8 [N, 3, H, W]`` (or float [-1, 1] samples, quantised once as a saved
PNG would be); features come from torch-fidelity's FID Inception network and every number is
computed by torch-fidelity's own functions, so it matches ``torch_fidelity.calculate_metrics``::

    from bench.metrics import load_feature_extractor, extract_features, fid_from_features

    extractor = load_feature_extractor()  # --fid-weights / $BENCH_FID_WEIGHTS / download
    ref = reference_features(dataset.train, extractor, split="train", num_images=10_000)
    fid = fid_from_features(extract_features(samples, extractor), ref.features)
"""

from bench.metrics.errors import MetricsError
from bench.metrics.features import extract_features, extract_features_dict, iter_batches, to_uint8
from bench.metrics.fidelity import (
    KID,
    FIDInfinity,
    InceptionScore,
    PrecisionRecall,
    fid_from_features,
    fid_from_statistics,
    fid_infinity_from_features,
    fid_statistics,
    inception_score,
    inception_score_from_logits,
    kid_from_features,
    precision_recall_from_features,
)
from bench.metrics.inception import (
    NO_LOGITS_HEAD,
    WEIGHTS_ENV,
    has_logits_head,
    load_feature_extractor,
    require_logits_head,
    resolve_weights_path,
    weights_sha256,
)
from bench.metrics.reference_cache import (
    CACHE_ENV,
    Reference,
    ReferenceKey,
    default_cache_dir,
    reference_features,
)

__all__ = [
    "CACHE_ENV",
    "FIDInfinity",
    "InceptionScore",
    "KID",
    "MetricsError",
    "NO_LOGITS_HEAD",
    "PrecisionRecall",
    "Reference",
    "ReferenceKey",
    "WEIGHTS_ENV",
    "default_cache_dir",
    "extract_features",
    "extract_features_dict",
    "fid_from_features",
    "fid_from_statistics",
    "fid_infinity_from_features",
    "fid_statistics",
    "has_logits_head",
    "inception_score",
    "inception_score_from_logits",
    "iter_batches",
    "kid_from_features",
    "load_feature_extractor",
    "precision_recall_from_features",
    "reference_features",
    "require_logits_head",
    "resolve_weights_path",
    "to_uint8",
    "weights_sha256",
]
