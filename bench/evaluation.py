"""Evaluate a trained (or untrained) variant: the columns of one metrics row.

The evaluator loops over the registered metrics (``bench_register_metrics``; the built-ins
are in ``bench.metrics.builtin``). Each gets an ``EvalContext`` that generates the samples,
extracts their Inception features, loads the reference and reconstructs the held-out test
images once, on first use, however many metrics ask. A metric that does not apply (no
samples with ``--eval-samples 0``; no encoder) gives NaN columns; one that raises gives NaN
columns and its error in the row's ``metric_errors``, and the trial goes on.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import time
from pathlib import Path

import torch

from bench.data import Dataset
from bench.data.image_source import load_image_source
from bench.device import synchronize
from bench.images import save_grid
from bench.metric import Metric
from bench.metrics.errors import MetricsError
from bench.metrics.extractors import DEFAULT as DEFAULT_EXTRACTOR
from bench.metrics.extractors import extractor_column
from bench.metrics.features import extract_features, extract_features_dict, primary
from bench.metrics.inception import (
    LOGITS,
    NO_LOGITS_HEAD,
    WEIGHTS_ENV,
    check_weights_file,
    file_has_logits_head,
    load_feature_extractor,
    resolve_backend,
    resolve_weights_path,
)
from bench.metrics.reference_cache import Reference, reference_features, subset_indices
from bench.variant import Variant

SMALL_N = 10_000  # FID below this many samples is noticeably biased upward: flag it
RECON_IMAGES = 2_000  # held-out test images for the reconstruction columns without sample metrics


@dataclasses.dataclass
class EvalSettings:
    """What every evaluation of a run uses; built from the run config (``RunConfig.eval_settings``)."""

    samples: int  # generated images; 0 skips sample-quality metrics
    ref: str  # a split of the run's dataset, or a folder / .npz of images
    ref_samples: int | None  # None: the whole split
    fid_weights: str | None  # else $BENCH_FID_WEIGHTS, else torch-fidelity's download
    untrained: bool  # also evaluate before the first step
    recon_samples: int | None = None  # held-out images reconstructed; None: as samples (or 2,000)
    inception_backend: str | None = None  # auto / torch / openvino; None: $BENCH_INCEPTION_BACKEND, else auto
    metrics: tuple[str, ...] = ("all",)  # registered metric names, or "all" (see select_metrics)
    extractors: tuple[str, ...] = ("inception",)  # feature extractors (bench.metrics.extractors)
    extractor_weights: dict = dataclasses.field(default_factory=dict)  # name -> weights file

    @property
    def recon_images(self) -> int:
        """How many held-out test images the reconstruction columns use (at most the split)."""
        return self.recon_samples or self.samples or RECON_IMAGES

    def check(self, dataset: Dataset) -> None:
        """Fail before training when evaluation could not run."""
        if self.samples < 0:
            raise MetricsError("--eval-samples must be 0 (no sample metrics) or positive")
        if self.recon_samples is not None and self.recon_samples < 2:
            raise MetricsError(f"--recon-samples {self.recon_samples}: give at least 2 held-out images "
                               "(reconstruction FID needs 2), or leave it out to follow --eval-samples")
        if self.samples == 0:
            return
        if self.samples < 2:
            raise MetricsError(f"--eval-samples {self.samples}: FID, KID and precision/recall need at least "
                               "2 images (10,000 for FID comparable with papers); or 0 to skip them")
        if self.ref not in dataset.splits and not Path(self.ref).exists():
            raise MetricsError(
                f"--eval-ref {self.ref}: not a split of dataset {dataset.name!r} "
                f"({', '.join(dataset.splits)}) nor an existing folder or .npz of images"
            )
        if self.ref in dataset.splits and self.ref_samples is not None:
            available = len(dataset.split(self.ref).images)
            if self.ref_samples > available:
                raise MetricsError(f"--ref-samples {self.ref_samples}: the {self.ref} split of "
                                   f"{dataset.name} has only {available} images; give at most {available}, "
                                   "or leave --ref-samples out to use them all")
        resolve_backend(self.inception_backend)
        path = resolve_weights_path(self.fid_weights)
        if self.fid_weights is not None or os.environ.get(WEIGHTS_ENV):
            check_weights_file(path)


INCEPTION_SCORE = "inception-score"  # the built-in metric that needs the weights' logits head


def _weights_have_logits_head(settings: EvalSettings) -> bool:
    """Whether the FID weights the settings name (``--fid-weights``, else ``$BENCH_FID_WEIGHTS``)
    have a logits head; torch-fidelity's own download (neither given) has one, and is not
    fetched to find out. A missing file is ``EvalSettings.check``'s error, not this one's."""
    given = settings.fid_weights or os.environ.get(WEIGHTS_ENV)
    if not given or not Path(given).expanduser().is_file():
        return True
    return file_has_logits_head(Path(given).expanduser())


def select_metrics(metrics: dict[str, Metric], settings: EvalSettings) -> dict[str, Metric]:
    """The metrics a run or ``bench eval`` computes, in registration order: those ``settings.metrics``
    names (``--metrics``), or with "all" every registered one, except Inception Score when the FID
    weights have no logits head (as ``../shared``'s converted file: its ``fc`` is NaN). Naming an
    unknown metric, or Inception Score with such weights, is a ``MetricsError`` (one line, before
    any training): a number from a NaN head would be no Inception Score at all."""
    names = list(settings.metrics)
    if "all" in names:
        if len(names) > 1:
            raise MetricsError(f"--metrics {','.join(names)}: 'all' stands alone; give 'all' or names")
        chosen = dict(metrics)
        if INCEPTION_SCORE in chosen and not _weights_have_logits_head(settings):
            del chosen[INCEPTION_SCORE]
        return chosen
    unknown = [n for n in names if n not in metrics]
    if unknown or not names:
        raise MetricsError(f"--metrics: unknown metric(s) {', '.join(unknown) or '(none given)'}; "
                           f"registered: {', '.join(metrics)} (or all)")
    if INCEPTION_SCORE in names and not _weights_have_logits_head(settings):
        path = settings.fid_weights or os.environ.get(WEIGHTS_ENV)
        raise MetricsError(f"--metrics {INCEPTION_SCORE}: the FID weights {path} have no logits head "
                           f"(fc is NaN), so Inception Score cannot be computed; give --fid-weights "
                           f"weights with one (torch-fidelity's own download has it) or leave "
                           f"{INCEPTION_SCORE} out of --metrics")
    return {name: metric for name, metric in metrics.items() if name in names}


def select_extractors(registry, settings: EvalSettings, check_weights: bool = True) -> dict:
    """The declarations (``bench.metrics.extractors.Extractor``) of the ``--extractors`` in
    ``registry``, or a one-line ``MetricsError``: an unknown name (the registered ones listed),
    ``--extractor-weights`` for one not selected, and (``check_weights``, when samples are evaluated)
    a weights file that is missing, no state dict or another network's, or none given and no
    download (saying how to pass one)."""
    from bench.metrics.extractors import check_weights_map, resolve_weights, selected

    chosen = selected(registry, settings.extractors)
    check_weights_map(chosen, settings.extractor_weights)
    if check_weights and settings.samples > 0:
        for name, extractor in chosen.items():
            if name != DEFAULT_EXTRACTOR:
                resolve_weights(name, extractor, settings.extractor_weights)
    return chosen


def extractor_weights_entry(extractors: dict, settings: EvalSettings) -> dict:
    """For the manifest: each selected extractor's weights file and its sha256 (Inception's are
    ``--fid-weights``')."""
    from bench.metrics.extractors import resolve_weights
    from bench.metrics.inception import weights_sha256

    out = {}
    for name, extractor in extractors.items():
        if name == DEFAULT_EXTRACTOR or settings.samples == 0:
            continue
        path = resolve_weights(name, extractor, settings.extractor_weights, check=False)
        out[name] = {"weights": str(path) if path else None,
                     "weights_sha256": weights_sha256(path) if path else None}
    return out


class _SharedInputFailed(Exception):
    """Raised by an EvalContext input (samples, features, reference) that could not be made:
    that is the evaluation's failure, not one metric's."""


def _shared(method):
    """A cached EvalContext input; its failure fails the whole evaluation."""

    @functools.wraps(method)
    def getter(self):
        name = method.__name__
        if name not in self._cache:
            try:
                self._cache[name] = method(self)
            except Exception as exc:
                raise _SharedInputFailed(exc) from exc
        return self._cache[name]

    return property(getter)


class EvalContext:
    """What metrics compute from, each part made once on first use.

    ``samples`` (float [-1, 1]), ``sample_features`` (Inception pool3) and ``sample_logits`` (its
    unbiased logits, from the same pass), ``reference`` / ``reference_statistics``; ``seen_by(name)``:
    the same with another ``--extractors`` extractor's features and reference; and for encoder
    variants ``recon_originals_float``, ``reconstructions``, ``reconstruction_features``,
    ``recon_reference_statistics``;
    ``split_features(split, n)`` gives any split's features (cached on disk like a reference).
    Also ``variant`` (None for ``bench eval``), ``settings``, ``dataset``, ``device``,
    ``noise_seed``, and ``output_dir``: the trial folder at a trial's final evaluation (where a
    metric may save a picture), else None.
    """

    def __init__(self, evaluator: Evaluator, variant: Variant | None = None, noise_seed: int = 0,
                 images: torch.Tensor | None = None, output_dir: Path | None = None):
        self.evaluator, self.variant, self.noise_seed = evaluator, variant, noise_seed
        self.settings, self.dataset, self.device = evaluator.settings, evaluator.dataset, evaluator.device
        self.output_dir = output_dir
        self._images = images
        self._cache: dict = {}
        self.sample_seconds: float | None = None

    def split_features(self, split: str, n: int | None = None, seed: int = 0):
        """``(Reference, index)``: Inception features of a fixed random subset of ``n`` images of
        ``split`` (all when n is None or larger), and which images they are (``split.images[index]``;
        index None: all, in order). Cached on disk, keyed like any reference."""
        key = f"split:{split}:{n}:{seed}"
        if key not in self._cache:
            try:
                images = self.dataset.split(split)
                total = len(images.images)
                n = total if n is None else min(n, total)
                index = subset_indices(total, n, seed)
                whole = self.evaluator.whole_split_reference(split)
                if whole is not None:  # the run's reference is that whole split: no Inception pass
                    features = whole.features if index is None else whole.features[index]
                    subset_key = dataclasses.replace(whole.key, num_images=n, subset_seed=seed)
                    cache_root = Path(str(whole.path)[: -len(whole.key.filename())])
                    reference = Reference(subset_key, features, cache_root / subset_key.filename(),
                                          from_cache=True)
                else:
                    reference = reference_features(images, self.evaluator.extractor,
                                                   split=f"{self.dataset.name}/{split}", num_images=n,
                                                   subset_seed=seed, device=self.device)
                self._cache[key] = (reference, index)
            except Exception as exc:
                raise _SharedInputFailed(exc) from exc
        return self._cache[key]

    @_shared
    def samples(self) -> torch.Tensor:
        if self._images is not None:
            return self._images
        n = self.settings.samples
        generator = torch.Generator(self.variant.device).manual_seed(self.noise_seed)
        synchronize(self.variant.device)
        started = time.perf_counter()
        samples = self.variant.sample(n, generator)
        synchronize(self.variant.device)
        self.sample_seconds = time.perf_counter() - started
        return samples

    @_shared
    def sample_feature_dict(self) -> dict[str, torch.Tensor]:
        """Every feature the Inception pass gives (pool3, and the unbiased logits when the weights
        have a logits head), from one pass over the samples."""
        return extract_features_dict(self.samples, self.evaluator.extractor, device=self.device)

    @property
    def sample_features(self) -> torch.Tensor:
        return primary(self.sample_feature_dict)

    @property
    def sample_logits(self) -> torch.Tensor:
        """The samples' unbiased Inception logits (Inception Score); a MetricsError for weights
        without a logits head."""
        features = self.sample_feature_dict
        if LOGITS not in features:
            raise MetricsError(NO_LOGITS_HEAD)
        return features[LOGITS]

    @_shared
    def reference(self):
        return self.evaluator.reference

    @_shared
    def reference_statistics(self):
        return self.evaluator.reference_statistics

    @_shared
    def recon_originals_float(self) -> torch.Tensor:
        return self.evaluator.recon_originals().to(self.variant.device).float() / 127.5 - 1

    @_shared
    def reconstructions(self) -> torch.Tensor:
        x = self.recon_originals_float
        return torch.cat([self.variant.reconstruct(chunk).float().clamp(-1, 1) for chunk in x.split(500)])

    @_shared
    def reconstruction_features(self) -> torch.Tensor:
        return extract_features(self.reconstructions, self.evaluator.extractor, device=self.device)

    @_shared
    def recon_reference_statistics(self):
        originals = self.evaluator.recon_originals()
        return reference_features(originals, self.evaluator.extractor,
                                  split=f"{self.dataset.name}/test-recon", device=self.device).statistics

    def seen_by(self, extractor: str) -> EvalContext | _ExtractorView:
        """This context with ``sample_features`` and ``reference`` from another feature extractor
        (``--extractors``); itself for Inception."""
        return self if extractor == DEFAULT_EXTRACTOR else _ExtractorView(self, extractor)

    def applies(self, metric: Metric) -> bool:
        if metric.needs == "samples":
            return self.settings.samples > 0 or self._images is not None
        if metric.needs == "encoder":
            return (self.variant is not None and self.variant.has_encoder()
                    and self.dataset is not None and "test" in self.dataset.splits)
        return True


class _ExtractorView:
    """An EvalContext whose ``sample_features``, ``reference`` and ``reference_statistics`` come from
    another feature extractor: one pass over the same samples per extractor, its reference cached
    per extractor. Everything else is the context's."""

    def __init__(self, ctx: EvalContext, extractor: str):
        self._ctx, self.extractor_name = ctx, extractor

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def _input(self, what: str, make):
        key = f"{what}@{self.extractor_name}"
        if key not in self._ctx._cache:
            try:
                self._ctx._cache[key] = make()
            except Exception as exc:
                raise _SharedInputFailed(exc) from exc
        return self._ctx._cache[key]

    @property
    def sample_features(self) -> torch.Tensor:
        evaluator, name = self._ctx.evaluator, self.extractor_name
        return self._input("sample_features", lambda: extract_features(
            self._ctx.samples, evaluator.extractor_for(name), device=self._ctx.device))

    @property
    def reference(self) -> Reference:
        return self._input("reference", lambda: self._ctx.evaluator.reference_for(self.extractor_name))

    @property
    def reference_statistics(self):
        return self._input("reference_statistics", lambda: self.reference.statistics)


def metric_columns(metrics: dict[str, Metric], extractors: dict | None = None) -> list:
    """``(metric name, extractor name, columns)`` of every computation an evaluation makes: each
    metric on Inception, then each ``per_extractor`` one on every other selected extractor
    (``extractors``: name -> ``Extractor``), with that extractor's column keys."""
    out = []
    for name, metric in metrics.items():
        out.append((name, DEFAULT_EXTRACTOR, metric.columns))
        if metric.per_extractor:
            out += [(name, other, tuple(extractor_column(c, e) for c in metric.columns))
                    for other, e in (extractors or {}).items() if other != DEFAULT_EXTRACTOR]
    return out


class Evaluator:
    """Holds the feature extractors, reference features and metrics for a whole run."""

    def __init__(self, settings: EvalSettings, dataset: Dataset | None, device: torch.device,
                 metrics: dict[str, Metric], extractors: dict | None = None):
        self.settings = settings
        self.dataset = dataset
        self.device = device
        self.metrics = dict(metrics)
        self.extractors = dict(extractors or {})  # name -> Extractor: the selected ones
        self._loaded: dict = {}
        self._references: dict = {}

    @functools.cached_property
    def extractor(self):
        return load_feature_extractor(self.settings.fid_weights, self.device,
                                      backend=self.settings.inception_backend)

    def extractor_for(self, name: str):
        """The network of feature extractor ``name`` (loaded once)."""
        if name == DEFAULT_EXTRACTOR:
            return self.extractor
        if name not in self._loaded:
            weights = self.settings.extractor_weights.get(name)
            self._loaded[name] = self.extractors[name].load(weights, self.device)
        return self._loaded[name]

    def _reference_images(self):
        ref = self.settings.ref
        if self.dataset is not None and ref in self.dataset.splits:
            return self.dataset.split(ref), f"{self.dataset.name}/{ref}"
        return load_image_source(Path(ref)), f"files:{Path(ref).resolve()}"

    @functools.cached_property
    def reference(self):
        images, label = self._reference_images()
        return reference_features(images, self.extractor, split=label,
                                  num_images=self.settings.ref_samples, device=self.device)

    def reference_for(self, name: str) -> Reference:
        """The reference's features by extractor ``name``, cached on disk per extractor and weights."""
        if name == DEFAULT_EXTRACTOR:
            return self.reference
        if name not in self._references:
            images, label = self._reference_images()
            self._references[name] = reference_features(images, self.extractor_for(name), split=label,
                                                        num_images=self.settings.ref_samples,
                                                        device=self.device)
        return self._references[name]

    @functools.cached_property
    def reference_statistics(self):
        return self.reference.statistics

    def whole_split_reference(self, split: str):
        """The reference if it is every image of ``split`` of the run's dataset, else None."""
        if self.dataset is None or self.settings.ref != split or split not in self.dataset.splits:
            return None
        total = len(self.dataset.split(split).images)
        if self.settings.ref_samples not in (None, total):
            return None
        return self.reference

    def evaluate(self, variant: Variant, noise_seed: int, output_dir: Path | None = None) -> dict:
        """One evaluation of ``variant``: the evaluation's columns and every metric's.
        ``output_dir``: the trial folder, for the pictures metrics draw at the final evaluation."""
        return self._row(EvalContext(self, variant, noise_seed, output_dir=output_dir))

    def evaluate_images(self, images: torch.Tensor, seed: int = 0) -> dict:
        """The sample metrics of given images (``bench eval``), float [-1, 1] or uint8."""
        return self._row(EvalContext(self, None, seed, images=images), samples=len(images))

    def _row(self, ctx: EvalContext, samples: int | None = None) -> dict:
        started = time.perf_counter()
        samples = self.settings.samples if samples is None else samples
        row = {"eval_samples": samples, "eval_ref": self.settings.ref, "ref_samples": None,
               "small_n": samples < SMALL_N, "recon_samples": None}
        errors = {}
        for name, extractor, columns in metric_columns(self.metrics, self.extractors):
            metric = self.metrics[name]
            values = dict.fromkeys(metric.keys, math.nan)
            label = name if extractor == DEFAULT_EXTRACTOR else f"{name}@{extractor}"
            if ctx.applies(metric):
                try:
                    values.update(self._compute(name, metric, ctx.seen_by(extractor)))
                except _SharedInputFailed as exc:
                    raise exc.__cause__ from None
                except Exception as exc:  # one broken metric must not cost the trial
                    errors[label] = f"{type(exc).__name__}: {exc}"
                    print(f"bench: metric {label!r} failed: {errors[label]}", file=sys.stderr)
            row.update({column.key: values[key] for key, column in zip(metric.keys, columns, strict=True)})
        if ctx.sample_seconds:
            row["sample_images_per_s"] = samples / ctx.sample_seconds
        elif ctx.variant is not None:
            row["sample_images_per_s"] = math.nan
        if "reference" in ctx._cache:
            row["ref_samples"] = int(self.reference.features.shape[0])
        if "recon_originals_float" in ctx._cache:
            row["recon_samples"] = int(ctx.recon_originals_float.shape[0])
        if errors:
            row["metric_errors"] = errors
        row["eval_seconds"] = time.perf_counter() - started
        return row

    @staticmethod
    def _compute(name: str, metric: Metric, ctx: EvalContext) -> dict:
        values = metric.compute(ctx)
        extra = sorted(set(values) - set(metric.keys))
        if extra:
            raise ValueError(f"it returned undeclared column(s) {', '.join(extra)}; declare them as "
                             f"bench.Column in its Metric")
        return {k: float(v) if v is not None else math.nan for k, v in values.items()}

    def recon_originals(self) -> torch.Tensor:
        """Held-out test images for reconstruction: a fixed subset of ``--recon-samples`` of them."""
        test = self.dataset.split("test").images
        n = min(self.settings.recon_images, len(test))
        index = subset_indices(len(test), n, seed=0) if n > 1 else torch.arange(n)
        return test if index is None else test[index]

    def reconstruction_pairs(self, variant: Variant, pairs: int = 4) -> torch.Tensor | None:
        """Rows of 8 test originals, each above a row of their reconstructions, in [-1, 1] (None for
        a variant without an encoder or a dataset without a test split)."""
        if not variant.has_encoder() or self.dataset is None or "test" not in self.dataset.splits:
            return None
        x = self.recon_originals()[: 8 * pairs].to(variant.device).float() / 127.5 - 1
        x_hat = variant.reconstruct(x).float().clamp(-1, 1)
        return torch.cat([t for i in range(pairs) for t in (x[8 * i : 8 * i + 8], x_hat[8 * i : 8 * i + 8])])

    def save_reconstruction_grid(self, variant: Variant, path, pairs: int = 4) -> None:
        """``reconstruction_pairs`` as a PNG grid, 8 images a row (nothing without an encoder)."""
        images = self.reconstruction_pairs(variant, pairs)
        if images is not None:
            save_grid(images, path, nrow=8, value_range=(-1, 1))
