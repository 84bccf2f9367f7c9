"""Feature extractors as plugins: the networks sample metrics are computed on.

A plugin registers one ``Extractor`` per name through ``bench_register_extractors(register)``; the
built-ins below register exactly that way:

- ``inception``: the FID Inception network (``bench.metrics.inception``; weights from
  ``--fid-weights``, else torch-fidelity's download), the default, whose columns keep their names
  (``fid``, ``kid_mean``, ...) and whose pass also gives the Inception Score's logits;
- ``dinov2-vit-s-14``, ``dinov2-vit-b-14``, ``dinov2-vit-l-14``: DINOv2 (Oquab et al. 2023) fed as
  dgm-eval feeds it (Stein et al. 2023; ``bench.metrics.dinov2``), weights from
  ``--extractor-weights NAME=PATH`` (env ``BENCH_EXTRACTOR_WEIGHTS`` as ``NAME=PATH,...``), else the
  authors' download.

``--extractors inception,dinov2-vit-s-14`` computes every metric declared ``per_extractor`` (FID
and FID-infinity, KID, precision/recall, density/coverage) once per extractor, from one feature
pass each, against reference features cached per extractor (keyed by its name, layer and weights
hash). Another extractor's columns carry its short name: ``fd_dinov2_s14``,
``precision_dinov2_s14``, ``fd_infinity_dinov2_s14`` ("FD", not "FID": the distance is no longer
on Inception features).

This module imports no torch at load time (``bench list`` reads the declarations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench.hookspecs import hookimpl
from bench.metrics.errors import MetricsError
from bench.store.columns import Column

DEFAULT = "inception"
WEIGHTS_ENV = "BENCH_EXTRACTOR_WEIGHTS"


@dataclasses.dataclass(frozen=True)
class Extractor:
    """A feature extractor's declaration.

    ``load(weights_path, device)`` returns the network: a module taking uint8 ``[N, 3, H, W]`` images
    with torch-fidelity's feature-extractor interface (``get_name``, ``get_requested_features_list``,
    ``convert_features_tuple_to_dict``), its features first, and ``weights_sha256`` (keys the
    reference cache). ``weights_path(given)`` resolves the file (``given`` is ``--extractor-weights``'s,
    or None: download it, or a ``MetricsError`` saying how to pass one); ``check_weights(path)`` raises a
    ``MetricsError`` naming the file unless it holds this network's weights (before any training).
    """

    load: Callable
    input_size: int  # pixels, square: what images are resized to
    feature_size: int
    weights: str  # how its weights are found, for `bench list`
    short: str = ""  # column suffix ("" keeps the metrics' own column names: the default's)
    label: str = ""  # in column labels, e.g. "DINOv2 ViT-S/14"
    weights_path: Callable | None = None
    check_weights: Callable | None = None
    paper: str = ""


def check_extractor(obj) -> None:
    """Raise ValueError unless ``obj`` is a usable Extractor."""
    if not isinstance(obj, Extractor):
        raise ValueError(f"{obj!r} is not a bench.metrics.extractors.Extractor")
    if not callable(obj.load):
        raise ValueError(f"its load {obj.load!r} is not callable")
    if not (isinstance(obj.input_size, int) and obj.input_size > 0 and isinstance(obj.feature_size, int)
            and obj.feature_size > 0):
        raise ValueError("input_size and feature_size must be positive integers")
    if obj.short:
        Column(f"fd_{obj.short}", "check")  # a short name must make valid column keys


# Per-extractor column keys: the Inception-named ones lose "Inception" (FID -> FD, KID -> KD).
_RENAMED = {"fid": "fd", "fid_infinity": "fd_infinity", "kid_mean": "kd_mean", "kid_std": "kd_std",
            "kid": "kd"}


def extractor_column(column: Column, extractor: Extractor) -> Column:
    """``column`` of a per-extractor metric as computed on ``extractor``'s features."""
    if not extractor.short:
        return column
    key = f"{_RENAMED.get(column.key, column.key)}_{extractor.short}"
    name = f"{_RENAMED.get(column.name, column.name)}_{extractor.short}" if column.name else ""
    label = column.label.replace("FID", "FD").replace("KID", "KD")
    return dataclasses.replace(column, key=key, name=name, label=f"{label} ({extractor.label})")


def parse_weights(items) -> dict[str, str]:
    """``--extractor-weights`` values (``NAME=PATH``, repeatable; each may hold several, comma-
    separated, as ``$BENCH_EXTRACTOR_WEIGHTS`` does) as ``{name: absolute path}``."""
    out: dict[str, str] = {}
    for item in items:
        for part in str(item).split(","):
            if not part.strip():
                continue
            name, eq, path = part.strip().partition("=")
            if not eq or not name or not path:
                raise ValueError(f"{part!r}: expected NAME=PATH, e.g. "
                                 "dinov2-vit-s-14=dinov2_vits14_pretrain.pth")
            out[name] = str(Path(path).expanduser().resolve())
    return out


def selected(registry, names) -> dict[str, Extractor]:
    """The declarations of ``names`` (``--extractors``), or a MetricsError listing the registered ones."""
    names = list(names)
    known = registry.names()
    unknown = [n for n in names if n not in registry]
    if unknown or not names:
        raise MetricsError(f"--extractors: unknown feature extractor(s) "
                           f"{', '.join(unknown) or '(none given)'}; "
                           f"registered: {', '.join(known)} (see `bench list`)")
    if DEFAULT not in names:
        raise MetricsError(f"--extractors {','.join(names)}: include {DEFAULT} (FID, Inception Score and "
                           f"data copying stand on it), e.g. --extractors {DEFAULT},{names[0]}")
    return {name: registry.get(name).obj for name in dict.fromkeys(names)}


def check_weights_map(extractors: dict[str, Extractor], weights: dict[str, str]) -> None:
    """``--extractor-weights`` names only selected extractors other than Inception."""
    for name in weights:
        if name == DEFAULT:
            raise MetricsError(f"--extractor-weights {name}=...: the Inception network's weights are "
                               "given with --fid-weights")
        if name not in extractors:
            raise MetricsError(f"--extractor-weights {name}=...: {name} is not among --extractors "
                               f"({', '.join(extractors)})")


def resolve_weights(name: str, extractor: Extractor, weights: dict[str, str],
                    check: bool = True) -> Path | None:
    """The weights file of ``name``: ``--extractor-weights``'s (checked), else its download."""
    if extractor.weights_path is None:
        return None
    given = weights.get(name)
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise MetricsError(f"--extractor-weights {name}={given}: no such file. Fix: give the path of "
                               f"{name}'s checkpoint as --extractor-weights {name}=PATH (or ${WEIGHTS_ENV})")
    else:
        path = extractor.weights_path(None)
    if check and extractor.check_weights is not None:
        extractor.check_weights(path)
    return Path(path)


# ------------------------------------------------------------------------------------ built-ins


def _load_inception(weights_path=None, device="cpu", **options):
    from bench.metrics.inception import load_feature_extractor

    return load_feature_extractor(weights_path, device, **options)


def _dinov2(arch: str, size: str, dim: int) -> Extractor:
    def load(weights_path=None, device="cpu", **_):
        from bench.metrics.dinov2 import load_dinov2

        return load_dinov2(arch, weights_path, device)

    def weights_path(given):
        from bench.metrics.dinov2 import download_weights

        return download_weights(arch)

    def check_weights(path):
        from bench.metrics.dinov2 import check_weights_file

        check_weights_file(arch, path)

    return Extractor(load, 224, dim, f"--extractor-weights dinov2-vit-{size}-14=PATH, else the authors' "
                                     f"download (dinov2_vit{size}14_pretrain.pth); needs timm",
                     short=f"dinov2_{size}14", label=f"DINOv2 ViT-{size.upper()}/14",
                     weights_path=weights_path, check_weights=check_weights,
                     paper="Oquab et al. 2023; Stein et al. 2023 (dgm-eval)")


BUILTIN_EXTRACTORS = {
    DEFAULT: Extractor(_load_inception, 299, 2048, "--fid-weights PATH or $BENCH_FID_WEIGHTS, else "
                                                   "torch-fidelity's download",
                       label="Inception-v3", paper="Szegedy et al. 2016; Heusel et al. 2017 (FID)"),
    "dinov2-vit-s-14": _dinov2("vits14", "s", 384),
    "dinov2-vit-b-14": _dinov2("vitb14", "b", 768),
    "dinov2-vit-l-14": _dinov2("vitl14", "l", 1024),
}


@hookimpl
def bench_register_extractors(register):
    for name, extractor in BUILTIN_EXTRACTORS.items():
        register(name, extractor)
