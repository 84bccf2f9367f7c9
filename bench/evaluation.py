"""Evaluate a trained (or untrained) variant: the columns of one metrics row.

Sample quality: FID, FID-infinity, KID, precision/recall of ``samples`` generated
images against a reference split of the run's dataset, all from Inception pool3
features (``bench.metrics``). Reconstruction, for variants with an encoder: pixel
MSE (images in [0, 1]) and PSNR on held-out test images; NaN for variants without
one. Sampling throughput is timed on the same generation pass.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from bench.data import Dataset
from bench.data.image_source import load_image_source
from bench.device import synchronize
from bench.metrics import (
    MetricsError,
    extract_features,
    fid_from_statistics,
    fid_infinity_from_features,
    fid_statistics,
    kid_from_features,
    load_feature_extractor,
    precision_recall_from_features,
    reference_features,
    resolve_weights_path,
)
from bench.metrics.reference_cache import subset_indices
from bench.variant import Variant

SMALL_N = 10_000  # FID below this many samples is noticeably biased upward: flag it
RECON_IMAGES = 2_000  # held-out test images for the reconstruction columns


@dataclasses.dataclass
class EvalSettings:
    samples: int = 10_000  # generated images; 0 skips sample-quality metrics
    ref: str = "train"  # a split of the run's dataset, or a folder / .npz of images
    ref_samples: int | None = None  # None: the whole split
    fid_weights: str | None = None  # else $BENCH_FID_WEIGHTS, else torch-fidelity's download
    untrained: bool = False  # also evaluate before the first step

    def check(self, dataset: Dataset) -> None:
        """Fail before training when evaluation could not run."""
        if self.samples < 0:
            raise MetricsError("--eval-samples must be 0 (no sample metrics) or positive")
        if self.samples == 0:
            return
        if self.ref not in dataset.splits and not Path(self.ref).exists():
            raise MetricsError(
                f"--eval-ref {self.ref}: not a split of dataset {dataset.name!r} "
                f"({', '.join(dataset.splits)}) nor an existing folder or .npz of images"
            )
        resolve_weights_path(self.fid_weights)


def _empty_sample_columns() -> dict:
    keys = ["fid", "fid_infinity", "kid_mean", "kid_std", "precision", "recall", "sample_images_per_s"]
    return dict.fromkeys(keys, math.nan)


class Evaluator:
    """Holds the Inception network and reference features for a whole run."""

    def __init__(self, settings: EvalSettings, dataset: Dataset, device: torch.device):
        self.settings = settings
        self.dataset = dataset
        self.device = device
        self._extractor = None
        self._reference = None
        self._reference_stats = None

    @property
    def extractor(self):
        if self._extractor is None:
            self._extractor = load_feature_extractor(self.settings.fid_weights, self.device)
        return self._extractor

    @property
    def reference(self):
        if self._reference is None:
            ref = self.settings.ref
            if self.dataset is not None and ref in self.dataset.splits:
                images, label = self.dataset.split(ref), f"{self.dataset.name}/{ref}"
            else:
                images, label = load_image_source(Path(ref)), f"files:{Path(ref).resolve()}"
            self._reference = reference_features(
                images, self.extractor, split=label, num_images=self.settings.ref_samples,
                device=self.device,
            )
        return self._reference

    @property
    def reference_statistics(self):
        if self._reference_stats is None:
            self._reference_stats = self.reference.statistics
        return self._reference_stats

    def evaluate(self, variant: Variant, noise_seed: int) -> dict:
        started = time.perf_counter()
        row = {
            "eval_samples": self.settings.samples,
            "eval_ref": self.settings.ref,
            "ref_samples": None,
            "small_n": self.settings.samples < SMALL_N,
            **self.sample_quality(variant, noise_seed),
            **self.reconstruction(variant),
        }
        if self.settings.samples > 0:
            row["ref_samples"] = int(self.reference.features.shape[0])
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def sample_quality(self, variant: Variant, noise_seed: int) -> dict:
        n = self.settings.samples
        if n == 0:
            return _empty_sample_columns()
        generator = torch.Generator(variant.device).manual_seed(noise_seed)
        synchronize(variant.device)
        t0 = time.perf_counter()
        samples = variant.sample(n, generator)
        synchronize(variant.device)
        sample_rate = n / (time.perf_counter() - t0)
        return {**self.compare(samples, noise_seed), "sample_images_per_s": sample_rate}

    def compare(self, images: torch.Tensor, seed: int = 0) -> dict:
        """FID, FID-infinity, KID and precision/recall of images against the reference."""
        generated = extract_features(images, self.extractor, device=self.device)
        real = self.reference.features
        kid_size = min(1000, len(generated), len(real))
        kid = kid_from_features(generated, real, subset_size=kid_size)
        pr = precision_recall_from_features(generated, real)
        return {
            "fid": fid_from_statistics(fid_statistics(generated), self.reference_statistics),
            "fid_infinity": fid_infinity_from_features(
                generated, self.reference_statistics, seed=seed
            ).fid_infinity,
            "kid_mean": kid.mean,
            "kid_std": kid.std,
            "precision": pr.precision,
            "recall": pr.recall,
        }

    def recon_originals(self) -> torch.Tensor:
        """Held-out test images for reconstruction: a fixed subset of the evaluation size."""
        test = self.dataset.split("test").images
        n = min(self.settings.samples or RECON_IMAGES, len(test))
        index = subset_indices(len(test), n, seed=0) if n > 1 else torch.arange(n)
        return test if index is None else test[index]

    def reconstruction(self, variant: Variant) -> dict:
        """Pixel MSE (images in [0, 1]), PSNR and reconstruction FID on held-out test images."""
        empty = {"recon_mse": math.nan, "recon_psnr": math.nan, "recon_fid": math.nan}
        if not variant.has_encoder() or "test" not in self.dataset.splits:
            return empty
        originals = self.recon_originals()
        errors, reconstructions = [], []
        for chunk in originals.split(500):
            x = chunk.to(variant.device).float() / 127.5 - 1
            x_hat = variant.reconstruct(x).float().clamp(-1, 1)
            errors.append(((x_hat - x) / 2).pow(2).flatten(1).mean(1).double().cpu())
            reconstructions.append(x_hat)
        mse = torch.cat(errors)
        row = {
            "recon_mse": float(mse.mean()),
            "recon_psnr": float((10 * torch.log10(1.0 / mse.clamp_min(1e-12))).mean()),
            "recon_fid": math.nan,
        }
        if self.settings.samples > 0 and len(originals) > 1:
            # The originals' features are cached like any reference; only reconstructions cost.
            real = reference_features(originals, self.extractor, split=f"{self.dataset.name}/test-recon",
                                      device=self.device)
            fake = extract_features(torch.cat(reconstructions), self.extractor, device=self.device)
            row["recon_fid"] = fid_from_statistics(fid_statistics(fake), real.statistics)
        return row

    def save_reconstruction_grid(self, variant: Variant, path, pairs: int = 4) -> None:
        """Rows of 8 test originals, each above a row of their reconstructions."""
        if not variant.has_encoder() or "test" not in self.dataset.splits:
            return
        x = self.recon_originals()[: 8 * pairs].to(variant.device).float() / 127.5 - 1
        x_hat = variant.reconstruct(x).float().clamp(-1, 1)
        rows = [t for i in range(pairs) for t in (x[8 * i : 8 * i + 8], x_hat[8 * i : 8 * i + 8])]
        save_image(torch.cat(rows), path, nrow=8, normalize=True, value_range=(-1, 1))
