"""bench.evaluation: `bench eval` of images from anywhere and its input errors, and the reconstruction
sample size of a run."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY, cifar_root, only_run, requires_cifar, requires_weights
from PIL import Image

from bench.store import read_jsonl


def save_npz(path, array):
    np.savez(path, array)
    return path


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 32, 32, 3), np.float32), "dtype float32; expected uint8"),
        (np.zeros((4, 32, 32), np.uint8), "expected [N, H, W, 3] or [N, 3, H, W]"),
        (np.zeros((0, 32, 32, 3), np.uint8), "holds no images"),
    ],
)
def test_bad_npz_is_refused_clearly(cli, tmp_path, array, message):
    path = save_npz(tmp_path / "samples.npz", array)
    out = cli("eval", path, "--eval-ref", path, expect_exit=1).output
    assert message in out and "Traceback" not in out


def test_npz_with_several_arrays_and_other_files(cli, tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, a=np.zeros((2, 8, 8, 3), np.uint8), b=np.zeros(1))
    assert "holds 2 arrays (a, b)" in cli("eval", path, expect_exit=1).output
    other = tmp_path / "x.txt"
    other.write_text("hi")
    assert "expected a folder of images or an .npz" in cli("eval", other, expect_exit=1).output


def test_folder_errors(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no images found under" in cli("eval", tmp_path / "empty", expect_exit=1).output
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 32)).save(mixed / "a.png")
    Image.new("RGB", (16, 16)).save(mixed / "b.png")
    assert "different sizes" in cli("eval", mixed, expect_exit=1).output


@pytest.mark.slow
@requires_cifar
@requires_weights
def test_eval_folder_against_npz_and_against_a_split(cli, tmp_path, monkeypatch):
    """Real CIFAR-10 images through real Inception: a row with every sample metric."""
    from bench.data.imagefolder import read_image_folder

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = cifar_root() / "cifar10" / "test" / "cat"
    cats = tmp_path / "cats"
    cats.mkdir()
    for p in sorted(folder.iterdir())[:48]:
        (cats / p.name).write_bytes(p.read_bytes())
    dogs = read_image_folder(cifar_root() / "cifar10" / "test" / "dog")[:48]
    ref = save_npz(tmp_path / "dogs.npz", dogs.permute(0, 2, 3, 1).numpy())
    out_file = tmp_path / "eval.jsonl"
    out = cli("eval", cats, "--eval-ref", ref, "--out", out_file, "--name", "cats").output
    assert "fid" in out and f"appended to {out_file}" in out
    cli("eval", cats, "--dataset", "cifar10", "--data-dir", cifar_root(), "--eval-ref", "test",
        "--ref-samples", "48", "--out", out_file)
    first, second = read_jsonl(out_file)
    assert first["model"] == "cats" and first["eval_samples"] == 48 and first["ref_samples"] == 48
    assert first["fid"] > 0 and 0 <= first["precision"] <= 1 and first["small_n"] is True
    assert second["dataset"] == "cifar10" and second["eval_ref"] == "test" and second["fid"] > 0



SYNTH = ["--dataset", "synthetic:128", "--budget", "2steps", "--batch-size", "16", "--no-progress"]


@pytest.mark.slow
def test_recon_samples_is_its_own_option_and_in_every_row(cli, results_dir):
    cli("run", "--models", "gan,vae", *SYNTH, *TINY, "--set", "vae.width=8", "--set", "vae.latent=16",
        "--recon-samples", "40")
    rows = {r["model"]: r for r in read_jsonl(only_run(results_dir) / "metrics.jsonl")}
    assert rows["vae"]["recon_samples"] == 40 and rows["vae"]["recon_mse"] > 0
    assert "recon_samples" in rows["gan"] and rows["gan"]["recon_samples"] is None  # no encoder
    out = cli("run", "--models", "vae", *SYNTH, "--recon-samples", "1", expect_exit=2).output
    assert "--recon-samples" in out


def _weights(path, head: float):
    """A small stand-in for FID weights: only its logits head (``fc``) is read to choose metrics."""
    import torch

    torch.save({"fc.weight": torch.full((4, 2), head), "fc.bias": torch.zeros(4)}, path)
    return str(path)


def test_inception_score_is_chosen_only_with_a_logits_head(tmp_path, monkeypatch):
    from bench.evaluation import EvalSettings, select_metrics
    from bench.metrics.builtin import BUILTIN_METRICS
    from bench.metrics.errors import MetricsError

    monkeypatch.delenv("BENCH_FID_WEIGHTS", raising=False)
    headless, headed = _weights(tmp_path / "nan.pth", float("nan")), _weights(tmp_path / "ok.pth", 0.5)

    def chosen(weights, *names):
        settings = EvalSettings(100, "train", None, weights, untrained=False, metrics=names or ("all",))
        return list(select_metrics(BUILTIN_METRICS, settings))

    assert "inception-score" in chosen(headed) and chosen(headed) == list(BUILTIN_METRICS)
    assert "inception-score" not in chosen(headless)  # left out of "all": never a NaN column
    assert chosen(None) == list(BUILTIN_METRICS)  # torch-fidelity's own download has the head
    assert chosen(headed, "kid", "fid") == ["fid", "kid"]  # registration order
    with pytest.raises(MetricsError, match=r"nan\.pth have no logits head \(fc is NaN\)"):
        chosen(headless, "fid", "inception-score")
    with pytest.raises(MetricsError, match="unknown metric.* nope; registered: fid, inception-score"):
        chosen(headed, "fid", "nope")


@requires_weights
def test_inception_score_with_headless_weights_is_one_line_before_training(cli, results_dir):
    """The shared weights' fc is NaN: asking for Inception Score is refused before any training."""
    from helpers import one_line_error

    run = ["run", "--models", "gan", *SYNTH, *TINY[:4]]
    out = cli(*run, "--metrics", "fid,inception-score", expect_exit=1).output
    one_line_error(out, "--metrics inception-score", "no logits head", "--fid-weights")
    one_line_error(cli(*run, "--metrics", "fid,sharpness", expect_exit=1).output,
                   "unknown metric(s) sharpness", "inception-score")
    assert not results_dir.exists()
