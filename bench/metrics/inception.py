"""The FID Inception network: torch-fidelity's ``FeatureExtractorInceptionV3``, loaded once.

The weights file is taken from, in this order: the ``weights_path`` argument (the CLI's
``--fid-weights``), ``$BENCH_FID_WEIGHTS``, then torch-fidelity's own download into the
torch hub cache (``$TORCH_HOME/hub/checkpoints/``, shared with torch-fidelity itself).

The returned extractor carries three extra attributes that the rest of ``bench.metrics``
reads: ``weights_path``, ``weights_sha256`` (keys the reference cache) and
``has_logits_head`` (some converted weights have a NaN ``fc`` layer; then only pool3
features are extracted and Inception Score refuses to run).
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import torch

from bench.metrics.errors import MetricsError

# torch-fidelity is imported where the network is built: its package imports torchvision and
# more (about 2 s), which a run without sample metrics, or `bench list`, never needs.

WEIGHTS_ENV = "BENCH_FID_WEIGHTS"
BACKEND_ENV = "BENCH_INCEPTION_BACKEND"  # the default of --inception-backend
# auto: OpenVINO on the CPU (about 1.5x PyTorch's kernels there, features equal to 1e-6 of their
# scale), PyTorch on a GPU or for a compiled network.
BACKENDS = ("auto", "torch", "openvino")
EXTRACTOR_NAME = "inception-v3-compat"  # torch-fidelity's registry name for this network
POOL3 = "2048"  # FID, KID and precision/recall features
LOGITS = "logits_unbiased"  # Inception Score features
NO_LOGITS_HEAD = (
    "these weights have no logits head (fc is NaN): Inception Score cannot be computed; "
    "FID, KID and precision/recall are unaffected"
)
_HOW_TO_POINT = (
    f"pass --fid-weights PATH or set {WEIGHTS_ENV}=PATH to a local copy of the FID Inception "
    "weights (inception-2015-12-05, torch-fidelity FeatureExtractorInceptionV3 layout)"
)


def resolve_weights_path(weights_path: str | os.PathLike | None = None) -> Path:
    """The weights file to use: argument, else ``$BENCH_FID_WEIGHTS``, else downloaded."""
    if weights_path is not None:
        source = "--fid-weights / weights_path"
    elif os.environ.get(WEIGHTS_ENV):
        weights_path, source = os.environ[WEIGHTS_ENV], f"${WEIGHTS_ENV}"
    else:
        return _download_default_weights()
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise MetricsError(
            f"FID Inception weights not found: {path} (given by {source}) "
            f"{'is not a file' if path.exists() else 'does not exist'}. Fix: {_HOW_TO_POINT}, "
            "or set neither to let torch-fidelity download its own copy."
        )
    return path


# Tensors every FID Inception state dict has, with their shapes: enough to tell the weights from
# another file before hours of training, without building the network.
_SIGNATURE = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
              "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1)}


def check_weights_file(path: Path) -> None:
    """Raise MetricsError unless ``path`` holds FID Inception weights (read lazily, memory-mapped)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise MetricsError(f"--fid-weights {path} cannot be read as torch weights ({type(exc).__name__}); "
                           f"Fix: {_HOW_TO_POINT}.") from None
    shapes = {k: tuple(state[k].shape) for k in _SIGNATURE if isinstance(state, dict) and k in state
              and torch.is_tensor(state[k])}
    if shapes != _SIGNATURE:
        raise MetricsError(f"--fid-weights {path} does not hold the FID Inception network's weights "
                           f"(no {', '.join(_SIGNATURE)} of the right shapes); Fix: {_HOW_TO_POINT}.")


def _download_default_weights() -> Path:
    """torch-fidelity's weights in the torch hub cache, downloaded there if missing."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    name = URL_INCEPTION_V3.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if path.is_file():
        return path
    match = torch.hub.HASH_REGEX.search(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with redirect_stdout(sys.stderr):
            torch.hub.download_url_to_file(
                URL_INCEPTION_V3, str(path), hash_prefix=match.group(1) if match else None,
                progress=False,
            )
    except Exception as exc:  # URLError, HTTPError, timeouts, hash mismatch, read-only cache...
        raise MetricsError(
            f"no FID Inception weights given and downloading torch-fidelity's copy from "
            f"{URL_INCEPTION_V3} to {path} failed ({type(exc).__name__}: {exc}); this machine "
            f"may be offline. Fix: {_HOW_TO_POINT}."
        ) from None
    return path


_SHA256_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, hashed once per process (memoised by real path, mtime and size)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_mtime_ns, stat.st_size)
    if key not in _SHA256_MEMO:
        _SHA256_MEMO[key] = _file_sha256(real)
    return _SHA256_MEMO[key]


def _head_is_valid(state: dict) -> bool:
    head = [state.get("fc.weight"), state.get("fc.bias")]
    return all(torch.is_tensor(t) and bool(torch.isfinite(t).all()) for t in head)


_HEAD_MEMO: dict[tuple[str, int, int], bool] = {}


def file_has_logits_head(path: str | os.PathLike) -> bool:
    """Whether the FID weights at ``path`` have a usable logits head (``fc`` finite), read
    memory-mapped (only ``fc`` is touched) and memoised by real path, mtime and size; False for a
    file that is no state dict."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_mtime_ns, stat.st_size)
    if key not in _HEAD_MEMO:
        try:
            state = torch.load(real, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            state = None
        _HEAD_MEMO[key] = isinstance(state, dict) and _head_is_valid(state)
    return _HEAD_MEMO[key]


def load_feature_extractor(
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    *,
    channels_last: bool = True,
    compile: bool = False,
    backend: str | None = None,
    log=None,
) -> torch.nn.Module:
    """The FID Inception network on ``device``, in eval mode, with frozen weights: torch-fidelity's
    network whose input resize is done separably (``bench.metrics.inception_network``).

    It extracts pool3 features (``"2048"``), plus ``"logits_unbiased"`` only if the weights
    have a valid logits head. ``channels_last`` stores the convolution weights in NHWC, which
    is about twice as fast on CPU and gives the same features to ~1e-6 relative.
    ``backend`` (else ``$BENCH_INCEPTION_BACKEND``, else "auto"): who runs the convolutions, see
    ``resolve_backend``; the result records it as ``.backend``.
    """
    backend = resolve_backend(backend, device, compile)
    from bench.metrics.inception_network import InceptionFeatures

    path = resolve_weights_path(weights_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        has_head = _head_is_valid(state)
        del state
        features = [POOL3, LOGITS] if has_head else [POOL3]
        extractor = InceptionFeatures(
            EXTRACTOR_NAME, features, feature_extractor_weights_path=str(path)
        )
    except Exception as exc:
        raise MetricsError(
            f"cannot load FID Inception weights from {path} ({type(exc).__name__}: {exc}). "
            f"Fix: {_HOW_TO_POINT}."
        ) from None
    extractor.to(device)
    if channels_last:
        extractor.to(memory_format=torch.channels_last)
    extractor.weights_path = str(path)
    extractor.weights_sha256 = weights_sha256(path)
    extractor.has_logits_head = has_head
    extractor.backend = backend
    if backend == "openvino":
        from bench.metrics.inception_openvino import OpenVINOInception
        from bench.store.layout import default_cache_dir

        return OpenVINOInception(extractor, default_cache_dir(), log)
    if compile:
        return compile_extractor(extractor)
    return extractor


def resolve_backend(backend: str | None, device: str | torch.device = "cpu", compile: bool = False) -> str:
    """"torch" or "openvino" for ``backend`` (None: ``$BENCH_INCEPTION_BACKEND``, else "auto":
    OpenVINO on the CPU where it is installed and the network is not compiled, else PyTorch),
    or a MetricsError saying what to change."""
    from bench.metrics.inception_openvino import openvino_available

    backend = backend or os.environ.get(BACKEND_ENV) or "auto"
    if backend not in BACKENDS:
        raise MetricsError(f"unknown Inception backend {backend!r} (from --inception-backend or "
                           f"${BACKEND_ENV}); choose one of {', '.join(BACKENDS)}")
    on_cpu = torch.device(device).type == "cpu"
    if backend == "auto":
        return "openvino" if on_cpu and not compile and openvino_available() else "torch"
    if backend == "openvino":
        if not on_cpu:
            raise MetricsError(f"the OpenVINO Inception backend runs on the CPU, not {device}; "
                               "use --inception-backend torch")
        if compile:
            raise MetricsError("compile=True compiles the PyTorch network; it does not apply to the "
                               "OpenVINO backend")
        if not openvino_available():
            raise MetricsError("--inception-backend openvino needs OpenVINO: pip install openvino "
                               "(or choose torch)")
    return backend


COMPILED_BATCH = 64  # a compiled extractor sees only this batch size (partial batches are padded)


def compile_extractor(extractor):
    """``torch.compile`` with inductor's freezing (batch norm folded into the convolutions,
    weights pre-packed, ReLU fused: oneDNN post-ops on the CPU) for one static batch size, so
    it compiles once (about a minute on a 2-core CPU, cached on disk by inductor after that).
    Features agree with the eager network to ~1e-5 of their scale (a test)."""
    compiled = torch.compile(extractor, dynamic=False, options={"freezing": True})
    compiled.static_batch = COMPILED_BATCH
    return compiled


def has_logits_head(extractor) -> bool:
    """Whether ``extractor``'s weights have a usable logits head (``fc`` not NaN)."""
    recorded = getattr(extractor, "has_logits_head", None)
    if recorded is not None:
        return bool(recorded)
    fc = getattr(extractor, "fc", None)
    return fc is not None and _head_is_valid({"fc.weight": fc.weight, "fc.bias": fc.bias})


def require_logits_head(extractor) -> None:
    """Raise ``MetricsError`` unless Inception Score can be computed with ``extractor``."""
    if not has_logits_head(extractor):
        raise MetricsError(NO_LOGITS_HEAD)
    if LOGITS not in extractor.get_requested_features_list():
        raise MetricsError(
            f"this feature extractor does not extract {LOGITS!r}, which Inception Score needs; "
            "create it with bench.metrics.load_feature_extractor"
        )
