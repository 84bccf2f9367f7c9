"""Image-quality metrics: FID, KID, precision/recall, Inception Score, FID-infinity.

Images enter as ``uint8 [N, 3, H, W]`` (or float [-1, 1] samples, quantised once as a saved
PNG would be); features come from torch-fidelity's FID Inception network and every number is
computed by torch-fidelity's own functions, so it matches ``torch_fidelity.calculate_metrics``::

    from bench.metrics import load_feature_extractor, extract_features, fid_from_features

    extractor = load_feature_extractor()  # --fid-weights / $BENCH_FID_WEIGHTS / download
    ref = reference_features(dataset.train, extractor, split="train", num_images=10_000)
    fid = fid_from_features(extract_features(samples, extractor), ref.features)

The names below are imported on first use, so that ``bench.metrics.builtin`` (the registered
metric declarations, which reports read) loads without torch or torch-fidelity.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "errors": ["MetricsError"],
    "features": ["extract_features", "extract_features_dict", "iter_batches", "to_uint8"],
    "fidelity": ["KID", "FIDInfinity", "InceptionScore", "PrecisionRecall", "fid_from_features",
                 "fid_from_statistics", "fid_infinity_from_features", "fid_statistics",
                 "generated_statistics",
                 "inception_score", "inception_score_from_logits", "kid_from_features",
                 "precision_recall_from_features"],
    "inception": ["NO_LOGITS_HEAD", "WEIGHTS_ENV", "has_logits_head", "load_feature_extractor",
                  "require_logits_head", "resolve_weights_path", "weights_sha256"],
    "reference_cache": ["CACHE_ENV", "Reference", "ReferenceKey", "default_cache_dir",
                        "reference_features"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'bench.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bench.metrics.{module}"), name)
