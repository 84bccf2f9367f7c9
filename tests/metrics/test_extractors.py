"""bench.metrics.extractors: feature extractors as plugins, the per-extractor columns and reference
cache, and their command-line errors (one line, before any training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import one_line_error, requires_weights
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from bench.metrics.builtin import BUILTIN_METRICS
from bench.metrics.errors import MetricsError
from bench.metrics.extractors import (
    BUILTIN_EXTRACTORS,
    Extractor,
    check_extractor,
    extractor_column,
    parse_weights,
    selected,
)
from bench.store import read_jsonl, read_manifest
from bench.store.columns import Column


class PixelStats(FeatureExtractorBase):
    """Per-image channel means and stds as a 6-d 'feature' (a stand-in network); counts images."""

    feature_layer = "stats"

    def __init__(self, sha: str):
        super().__init__("pixel-stats", ["stats"])
        self.weights_sha256, self.seen = sha, 0

    @staticmethod
    def get_provided_features_list():
        return ("stats",)

    def forward(self, x):
        self.seen += len(x)
        f = x.float().flatten(2)
        return (torch.cat([f.mean(2), f.std(2)], 1),)


def _entries(folder) -> int:
    """Reference cache entries (features, not their covariance factors) under ``folder``."""
    return sum(not p.name.endswith("-factor.pt") for p in folder.rglob("*-n24-*.pt"))


def _fake(loaded: list, short="px"):
    def load(weights_path, device):
        loaded.append(PixelStats((weights_path or "none").ljust(64, "0")[:64]))
        return loaded[-1]

    return Extractor(load, 8, 6, "none needed", short=short, label="pixel stats")


def test_columns_on_another_extractor_carry_its_short_name():
    fake = _fake([])
    fid = extractor_column(Column("fid", "FID", "lower", minimum=0.0), fake)
    assert (fid.key, fid.label, fid.better, fid.minimum) == ("fd_px", "FD (pixel stats)", "lower", 0.0)
    kid = extractor_column(BUILTIN_METRICS["kid"].columns[0], fake)
    assert (kid.key, kid.name, kid.label) == ("kd_mean_px", "kd_px", "KD (pixel stats)")
    assert extractor_column(Column("precision", "precision", "higher"), fake).key == "precision_px"
    assert extractor_column(fid, BUILTIN_EXTRACTORS["inception"]) == fid  # the default's keep their names
    assert [BUILTIN_EXTRACTORS[f"dinov2-vit-{s}-14"].short for s in "sbl"] == [
        "dinov2_s14", "dinov2_b14", "dinov2_l14"]


def test_declarations_and_names_are_checked():
    with pytest.raises(ValueError, match="not a bench.metrics.extractors.Extractor"):
        check_extractor(object())
    with pytest.raises(ValueError, match="positive integers"):
        check_extractor(Extractor(print, 0, 6, "x"))
    with pytest.raises(ValueError, match="column key"):
        check_extractor(Extractor(print, 8, 6, "x", short="Bad-Name"))
    assert parse_weights(["a=x.pth,b=/y.pth", "c=z.pth"])["b"] == "/y.pth"
    assert set(parse_weights(["a=x.pth,b=/y.pth", "c=z.pth"])) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        parse_weights(["dinov2-vit-s-14"])


def test_selection_lists_the_registered_extractors():
    from bench.plugins import load_plugins

    registry = load_plugins(entry_points=False).extractors
    assert list(selected(registry, ["inception", "dinov2-vit-s-14"])) == ["inception", "dinov2-vit-s-14"]
    with pytest.raises(MetricsError, match="unknown feature extractor.*clip; registered: inception, "
                                           "dinov2-vit-s-14, dinov2-vit-b-14, dinov2-vit-l-14"):
        selected(registry, ["inception", "clip"])
    with pytest.raises(MetricsError, match="include inception"):
        selected(registry, ["dinov2-vit-s-14"])


def test_every_per_extractor_metric_on_each_extractor_with_its_own_cached_reference(tmp_path, monkeypatch):
    """One evaluation: each per-extractor metric once per extractor, from that extractor's features of
    the same samples; its reference features cached under its own key (name, layer, weights hash), so
    a second evaluator passes only the samples, and other weights make another entry."""
    from bench.evaluation import EvalSettings, Evaluator, metric_columns

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    gen = torch.Generator().manual_seed(0)
    samples, ref = (torch.randint(0, 256, (24, 3, 8, 8), generator=gen, dtype=torch.uint8) for _ in range(2))
    np.savez(tmp_path / "ref.npz", ref.permute(0, 2, 3, 1).numpy())
    metrics = {k: BUILTIN_METRICS[k] for k in ("fid", "kid", "precision-recall", "density-coverage")}
    loaded: list = []
    inception = PixelStats("i" * 64)  # stands in for the Inception network too

    def evaluator(weights="w1"):
        settings = EvalSettings(24, str(tmp_path / "ref.npz"), None, None, untrained=False,
                                extractors=("inception", "px"), extractor_weights={"px": weights})
        extractors = {"inception": BUILTIN_EXTRACTORS["inception"], "px": _fake(loaded)}
        e = Evaluator(settings, None, torch.device("cpu"), metrics, extractors)
        e.extractor = inception
        return e

    row = evaluator().evaluate_images(samples)
    keys = [c.key for _, _, columns in metric_columns(metrics, evaluator().extractors) for c in columns]
    assert keys[:3] == ["fid", "fid_infinity", "fd_px"] and "precision_px" in keys and "coverage_px" in keys
    assert all(math.isfinite(row[k]) for k in keys) and "metric_errors" not in row
    assert row["fd_px"] == pytest.approx(row["fid"], rel=1e-6)  # the same features: the same numbers
    assert loaded[0].seen == 48 and _entries(tmp_path) == 2
    evaluator().evaluate_images(samples)
    assert loaded[1].seen == 24  # its reference came from the cache
    evaluator("w2").evaluate_images(samples)
    assert loaded[2].seen == 48 and _entries(tmp_path) == 3  # other weights: another key


@requires_weights
def test_bad_extractor_options_are_one_line_before_training(cli, tmp_path, results_dir):
    run = ["run", "--models", "gan", "--dataset", "synthetic:64", "--budget", "2steps",
           "--set", "gan.width=8", "--eval-samples", "16"]
    one_line_error(cli(*run, "--extractors", "inception,clip-vit-b-32", expect_exit=1).output,
                   "unknown feature extractor(s) clip-vit-b-32", "dinov2-vit-l-14")
    missing = tmp_path / "missing.pth"
    one_line_error(cli(*run, "--extractors", "inception,dinov2-vit-s-14", "--extractor-weights",
                       f"dinov2-vit-s-14={missing}", expect_exit=1).output,
                   str(missing), "no such file", "--extractor-weights dinov2-vit-s-14=PATH")
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    one_line_error(cli(*run, "--extractors", "inception,dinov2-vit-s-14", "--extractor-weights",
                       f"dinov2-vit-s-14={listed}", expect_exit=1).output, str(listed), "not a state dict")
    one_line_error(cli(*run, "--extractor-weights", f"dinov2-vit-s-14={listed}", expect_exit=1).output,
                   "is not among --extractors (inception)")
    assert not results_dir.exists()


@pytest.mark.slow
@requires_weights
def test_a_run_writes_inception_and_dinov2_columns(cli, tmp_path, results_dir):
    """`bench run --extractors inception,dinov2-vit-s-14 --extractor-weights dinov2-vit-s-14=FILE`: both
    sets of columns in every evaluation row, declared in the manifest with the weights' hash. (The
    session's cache folder: its measured peaks and converted Inception network are reused.)"""
    timm = pytest.importorskip("timm")
    from bench.metrics.inception import weights_sha256

    with torch.device("meta"):
        network = timm.create_model("vit_small_patch14_dinov2", num_classes=0)
    state = network.to_empty(device="cpu").state_dict()  # the authors' layout, arbitrary values
    torch.manual_seed(0)
    for value in state.values():
        value.copy_(torch.randn(value.shape) * 0.05)
    weights = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save({**state, "mask_token": torch.zeros(1, 384)}, weights)
    cli("run", "--models", "gan", "--dataset", "synthetic:64", "--budget", "2steps", "--batch-size", "16",
        "--set", "gan.width=8", "--set", "gan.latent=16", "--eval-samples", "10", "--ref-samples", "10",
        "--no-progress", "--extractors", "inception,dinov2-vit-s-14", "--extractor-weights",
        f"dinov2-vit-s-14={weights}")
    run = next(results_dir.iterdir())
    (row,) = read_jsonl(run / "metrics.jsonl")
    for key in ("fid", "precision", "fd_dinov2_s14", "fd_infinity_dinov2_s14", "kd_mean_dinov2_s14",
                "precision_dinov2_s14", "coverage_dinov2_s14"):
        assert math.isfinite(row[key]), key
    manifest = read_manifest(run)
    declared = {c["key"]: c for c in manifest["columns"]}
    fd = declared["fd_dinov2_s14"]
    assert fd["label"] == "FD (DINOv2 ViT-S/14)" and fd["better"] == "lower"
    assert manifest["extractors"]["dinov2-vit-s-14"]["weights_sha256"] == weights_sha256(weights)
