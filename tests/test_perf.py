"""bench.perf, the side-by-side speed report: it measures what it says (no timing asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench import perf
from bench.data.synthetic import synthetic_images


@pytest.fixture
def cifar_like_folder(tmp_path):
    """data/cifar10/train/<class>/*.png, as the image-folder export is laid out."""
    images = synthetic_images(40).permute(0, 2, 3, 1).numpy()
    for i, array in enumerate(images):
        folder = tmp_path / "data" / "cifar10" / "train" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{i}.png")
    return tmp_path / "data"


def test_dataloader_baseline_delivers_normalised_batches(cifar_like_folder, monkeypatch):
    seen = []
    real_to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        seen.append(self)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    rate = perf.dataloader_rate(cifar_like_folder / "cifar10" / "train", 8, 3, "cpu", workers=0)
    assert rate > 0
    batches = [x for x in seen if x.dim() == 4]
    assert len(batches) == 3 and all(x.shape == (8, 3, 32, 32) for x in batches)
    assert all(-1 <= x.min() and x.max() <= 1 for x in batches)


@pytest.mark.slow
def test_measure_runs_every_comparison_and_counts_the_same_work(cifar_like_folder):
    folder = cifar_like_folder / "cifar10" / "train"
    result = perf.measure(["gan", "vae"], f"imagefolder:{folder}", torch.device("cpu"), loader_folder=folder,
                          batch_size=8, steps=3,
                          repeats=2, data_batches=4, mfu_steps=2, overhead_models=["gan"],
                          backbones=("dcgan", "resnet"), config_values={"width": 16},  # a 16th of the cost
                          profile_below=2.0, log=lambda s: None)  # profile_below 2.0: profile every variant
    assert result["dataset"]["images"] == 40
    assert set(result["peaks"]) == {"matmul", "conv1x1"} and min(result["peaks"].values()) > 1e9
    d = result["data_path"]
    assert len(d["bench_runs"]) == len(d["dataloader_runs"]) == 2 and d["ratio"] > 0
    for backbone in ("dcgan", "resnet"):
        o = result["overhead"][f"gan@{backbone}"]
        assert len(o["bare_runs"]) == len(o["trial_runs"]) == len(o["plain_runs"]) == 2
        assert o["overhead"] == pytest.approx(1 - o["trial_images_per_s"] / o["bare_images_per_s"])
        assert o["overhead_vs_plain"] == pytest.approx(1 - o["trial_images_per_s"] / o["plain_images_per_s"])
        for name in ("gan", "vae"):
            m = result["mfu"][backbone][name]
            assert m["flops_per_s"] == pytest.approx(m["flops_per_image"] * m["images_per_s"])
            assert m["mfu"] == pytest.approx(m["flops_per_s"] / max(result["peaks"].values()))
            assert "aten::" in result["profiles"][f"{name}@{backbone}"]["table"]
    # SNGAN's ResNet costs several times DCGAN's networks per image, so it runs fewer steps
    resnet, dcgan = result["mfu"]["resnet"]["gan"], result["mfu"]["dcgan"]["gan"]
    assert resnet["flops_per_image"] > 3 * dcgan["flops_per_image"]
    # The FLOPs per image are the trainer's own count (its first step runs under the same counter).
    from helpers import train_settings

    from bench.flops import CountFlops
    from bench.trainer import apply_settings, make_batches

    settings = train_settings(batch_size=8)
    from bench_plugins.gan import GAN

    variant = apply_settings(GAN((3, 32, 32), GAN.Config(width=16), "cpu", 0), settings)
    with CountFlops() as counter:
        variant.train_step(next(make_batches(synthetic_images(16), settings, "cpu", 0)))
    assert result["mfu"]["dcgan"]["gan"]["flops_per_image"] == pytest.approx(counter.total / 8)

    table = perf.markdown(json.loads(json.dumps(result)))
    assert "| **ratio** |" in table and "| gan |" in table and "| vae |" in table
    assert "resnet: MFU" in table and "| gan@resnet (" in table


@pytest.mark.parametrize("option", ["--models", "--overhead-models", "--data-dir"])
def test_bad_input_is_one_clear_line_before_any_measurement(option, capsys, tmp_path):
    value = str(tmp_path / "missing") if option == "--data-dir" else "nope"
    with pytest.raises(SystemExit) as exit_info:
        perf.main([option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "peaks" not in err
    assert ("unknown model" in err) if option != "--data-dir" else ("point --data-dir" in err)


@pytest.mark.slow
def test_evaluation_costs_are_measured_side_by_side():
    """FID from statistics: both sides timed on the same statistics, and they agree."""
    from bench import perf_evaluation

    g = torch.Generator().manual_seed(0)
    real, generated = torch.randn(600, 64, generator=g), torch.randn(300, 64, generator=g) * 1.2 + 0.1
    result = perf_evaluation.fid_statistics_speed(generated, real, repeats=2)
    assert result["relative_difference"] < 1e-6 and result["fid_bench"] > 0
    assert len(result["bench_runs"]) == len(result["torch_fidelity_runs"]) == 2
    assert result["ratio"] == pytest.approx(result["torch_fidelity_s"] / result["bench_s"])
    small = generated[:40]  # fewer than D = 64: the generated side's own factor is the smaller
    for full_rank, factor in (("reference", "cholesky + generated features"), ("both", "cholesky")):
        other = perf_evaluation.fid_statistics_speed(small if full_rank == "reference" else generated, real,
                                                     repeats=1, full_rank=full_rank)
        assert other["factor"] == factor and other["relative_difference"] < 1e-6
    startup = perf_evaluation.startup(repeats=1)
    assert set(startup) == {"bench --help", "bench list"} and all(v["seconds"] > 0 for v in startup.values())
    table = perf_evaluation.markdown({"fid_statistics": [result], "startup": startup})
    assert "fid_statistics_to_metric" in table and "`bench list`" in table


@pytest.mark.slow
def test_tracking_overhead_is_measured_with_and_without_each_tracker(monkeypatch, capsys):
    """The same steps with no tracker and with each alone; what ran is what was logged."""
    import bench.run
    from bench import perf_trackers

    monkeypatch.setattr(bench.run, "cached_peaks", lambda device, dtype=None, **_: ({"matmul": 1e11}, "test"))
    result = perf_trackers.measure_trackers(["tensorboard"], "gan", "synthetic:64", torch.device("cpu"),
                                            batch_size=16, steps=2, repeats=1, options={"width": "8"},
                                            log=lambda s: None)
    assert set(result["sides"]) == {"none", "tensorboard"} and result["log_every"] == 25
    rates = {side: m["images_per_s"] for side, m in result["sides"].items()}
    assert result["ratios"]["tensorboard"] == pytest.approx(rates["tensorboard"][0] / rates["none"][0])
    assert 0 < result["tracker_share"]["tensorboard"] < 1 and result["sides"]["none"]["tracker_share"] == [0]
    assert "| tensorboard |" in perf_trackers.markdown(result)
    with pytest.raises(SystemExit) as exit_info:
        perf.main(["--trackers", "tensorboard,nope"])
    assert exit_info.value.code == 2 and "--tracker nope: unknown tracker" in capsys.readouterr().err


def test_each_extractors_pass_is_timed_and_tabled():
    """`bench.perf --evaluation --extractors ...`: a row per extractor with its images/s."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    from bench import perf_evaluation

    class Means(FeatureExtractorBase):
        def __init__(self):
            super().__init__("means", ["2048"])

        @staticmethod
        def get_provided_features_list():
            return ("2048",)

        def forward(self, x):
            return (x.float().mean((2, 3)),)

    images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8)
    networks = {"inception": Means(), "other": Means()}
    result = perf_evaluation.extractor_speeds(images, networks, log=lambda s: None)
    assert set(result) == {"inception", "other"} and result["other"]["images"] == 12
    assert result["other"]["features"] == 3 and result["other"]["images_per_s"] > 0
    table = perf_evaluation.markdown({"extractors": result})
    assert "| other | 12 | 3 |" in table
