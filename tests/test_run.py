"""bench.run: everything known before training is refused before it, in one line, with a non-zero exit
and no run folder; damaged files on --resume; failed trials and --retry-failed."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from helpers import FIXTURES, SYNTH_RUN, TINY, one_line_error, only_run, write_plugin

from bench.store import read_json, read_jsonl

FIXTURE = FIXTURES / "run-format-0.1.0"
RUN = ["run", "--models", "gan", "--budget", "2steps", "--no-progress"]


@pytest.fixture
def not_inception(tmp_path) -> Path:
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, path)
    return path


PREFLIGHT = {
    "resolution 33": (["--dataset", "synthetic:64", "--resolution", "33", "--batch-size", "16",
                       "--eval-samples", "0"], ["backbone 'dcgan' does not support 33x33 images",
                                                    "powers of two >= 8"]),
    "batch larger than the data": (
        ["--dataset", "synthetic:64", "--batch-size", "128", "--eval-samples", "0"],
        ["--batch-size 128", "only 64 images", "--batch-size 64 or less"]),
    "one eval sample": (["--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "1"],
                        ["--eval-samples 1", "at least 2"]),
    "more reference images than the split": (
        ["--dataset", "synthetic:256", "--batch-size", "16", "--eval-samples", "16", "--ref-samples", "5000"],
        ["--ref-samples 5000", "only 256 images", "at most 256"]),
    "subset larger than the data": (["--dataset", "synthetic:256", "--subset", "1000", "--batch-size", "16",
                                     "--eval-samples", "0"], ["--subset 1000", "only 256 images"]),
    "synthetic:abc": (["--dataset", "synthetic:abc", "--eval-samples", "0"],
                      ["--dataset synthetic:abc", "number of training images"]),
    "set of the wrong type": (["--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "0",
                               "--set", "gan.width=wide"], ["--set gan.width=wide", "an integer"]),
    "a config value build refuses": (["--models", "vae", "--dataset", "synthetic:64", "--batch-size", "16",
                                      "--eval-samples", "0", "--set", "vae.sigma=-1"],
                                     ["model 'vae' cannot be built", "sigma > 0"]),
    "no model named": (["--models", ",", "--dataset", "synthetic:64"], ["--models names no model"]),
    "unknown backbone": (["--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "0",
                          "--backbone", "vgg"],
                         ["--backbone vgg: unknown backbone", "registered: dcgan, resnet"]),
    "one model's unknown backbone": (["--dataset", "synthetic:64", "--batch-size", "16",
                                      "--eval-samples", "0", "--set", "gan.backbone=vgg"],
                                     ["--set gan.backbone=vgg: unknown backbone"]),
    "unknown tracker": (["--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "0",
                         "--tracker", "tensorboard,wandb"],
                        ["--tracker wandb: unknown tracker", "registered: tensorboard, mlflow",
                         "bench list"]),
    "malformed tracking URI": (["--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "0",
                                "--tracker", "mlflow", "--tracker-uri", "localhost:5000"],
                               ["--tracker mlflow: --tracker-uri 'localhost:5000' is not a tracking URI",
                                "http(s)://HOST[:PORT]"]),
    "a resolution the backbone does not build": (
        ["--dataset", "synthetic:64", "--resolution", "16", "--batch-size", "16", "--eval-samples", "0",
         "--backbone", "resnet"], ["backbone 'resnet' does not support 16x16 images", "32x32 and 64x64"]),
}

# A backbone without features(x), and a variant that builds networks of its own (no backbone field).
FEATURELESS_AND_OWN = """
    import dataclasses

    import torch
    from bench import Backbone, Variant, hookimpl
    from bench.backbones.dcgan import DCGAN


    class Plain(Backbone):
        has_features = False
        resolutions = "32x32"

        def supports(self, resolution):
            return resolution == 32

        def decoder(self, resolution, latent, width):
            return DCGAN().decoder(resolution, latent, width)

        def encoder(self, resolution, out_dim, width, norm="batch"):
            return DCGAN().encoder(resolution, out_dim, width, norm)


    @dataclasses.dataclass
    class OwnConfig:
        lr: float = 1e-3


    class Own(Variant):
        family, Config = "vae", OwnConfig

        def build(self):
            self.networks = {"decoder": torch.nn.Linear(4, 3 * 32 * 32)}
            self.optimizers = {"decoder": torch.optim.SGD(self.networks["decoder"].parameters(), 0.1)}

        def train_step(self, batch):
            return {}

        def sample(self, n, generator=None):
            return torch.zeros(n, 3, 32, 32)


    @hookimpl
    def bench_register_backbones(register):
        register("plain", Plain)


    @hookimpl
    def bench_register_models(register):
        register("own", Own)
"""

# A third party's backbone under a built-in's name.
CLASHING = """
    from bench import hookimpl
    from bench.backbones.dcgan import DCGAN


    @hookimpl
    def bench_register_backbones(register):
        register("resnet", DCGAN)
"""


@pytest.mark.parametrize("args, needles", [
    (["--models", "vaegan", "--backbone", "plain"],
     ["model 'vaegan' reads its encoder's features(x), which backbone 'plain' does not give",
      "use one that does (dcgan, resnet)"]),
    (["--models", "own", "--set", "own.backbone=resnet"],
     ["--set own: Own takes no backbone: its Config has no backbone field"]),
    (["--models", "gan,own", "--backbone", "resnet"],
     ["--backbone resnet: model 'own' takes no backbone", "leave it out of --models"]),
], ids=["features", "set on a variant without the field", "run-wide on a variant without the field"])
def test_backbone_errors_of_plugins_come_before_any_training(cli, results_dir, tmp_path, args, needles):
    plugin = write_plugin(tmp_path, "plain.py", FEATURELESS_AND_OWN)
    out = cli("run", "--plugin", plugin, "--dataset", "synthetic:64", "--batch-size", "16",
              "--budget", "2steps", "--eval-samples", "0", "--no-progress", *args, expect_exit=1).output
    one_line_error(out, *needles)
    assert not results_dir.exists()


def test_a_backbone_under_a_taken_name_stops_the_run_naming_both(cli, results_dir, tmp_path):
    plugin = write_plugin(tmp_path, "clash.py", CLASHING)
    out = cli(*RUN, "--plugin", plugin, "--dataset", "synthetic:64", "--batch-size", "16",
              "--eval-samples", "0", expect_exit=1).output
    one_line_error(out, "duplicate backbone name 'resnet'", f"file {plugin}",
                   "'bench.backbones.builtin' (built-in)", "rename one of the two backbones")
    assert not results_dir.exists()


@pytest.mark.parametrize("case", list(PREFLIGHT))
def test_preflight_errors_come_before_any_training(cli, results_dir, monkeypatch, case):
    import bench.trainer

    def no_training(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(bench.trainer.Trainer, "run", no_training)
    args, needles = PREFLIGHT[case]
    if "--models" in args:
        run = ["run", "--budget", "2steps", "--no-progress"]
    else:
        run = RUN
    out = cli(*run, *args, expect_exit=1).output
    one_line_error(out, *needles)
    assert not results_dir.exists()


def test_fid_weights_that_are_not_inception_are_refused_before_training(cli, results_dir, tmp_path,
                                                                       not_inception):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a torch file at all")
    for path, needle in ((not_inception, "does not hold the FID Inception network's weights"),
                         (garbage, "cannot be read as torch weights")):
        out = cli(*RUN, "--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "16",
                  "--fid-weights", path, expect_exit=1).output
        one_line_error(out, f"--fid-weights {path}", needle)
    assert not results_dir.exists()


def test_a_read_only_results_folder_is_one_line(cli, monkeypatch, results_dir):
    import bench.run

    def read_only(root, description):
        raise OSError(errno.EROFS, "Read-only file system", str(root))

    monkeypatch.setattr(bench.run, "new_run_dir", read_only)
    out = cli(*RUN, "--dataset", "synthetic:64", "--batch-size", "16", "--eval-samples", "0", *TINY,
              expect_exit=1).output
    one_line_error(out, "cannot create a run folder", "Read-only file system", "--results-dir")


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "00001-synthetic-4steps"
    shutil.copytree(FIXTURE, run, ignore=shutil.ignore_patterns("README.md"))
    return run


def test_resume_of_a_damaged_manifest_is_one_line(cli, old_run):
    (old_run / "manifest.json").write_text('{"run_id": "00001", "config": {')
    out = cli("run", "--resume", old_run, expect_exit=1).output
    one_line_error(out, f"{old_run / 'manifest.json'} is damaged", "not valid JSON")
    out = cli("run", "--resume", old_run.parent / "nowhere", expect_exit=1).output
    one_line_error(out, "is not a run folder")


class _RunsCode:
    def __reduce__(self):  # unpickling would call this: weights_only must refuse it
        return (Path.touch, (Path(_RunsCode.marker),))


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "random bytes", "code"])
def test_a_damaged_checkpoint_is_named_with_what_to_do(cli, old_run, tmp_path, damage):
    checkpoint = old_run / "trials" / "vae-s0" / "checkpoint.pt"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    elif damage == "random bytes":
        checkpoint.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    else:
        _RunsCode.marker = str(tmp_path / "code-ran")
        checkpoint.write_bytes(pickle.dumps({"variant": _RunsCode()}))
    rows_before = (old_run / "metrics.jsonl").read_text()
    out = cli("run", "--resume", old_run, expect_exit=1).output
    one_line_error(out, f"trial vae-s0: the checkpoint {checkpoint} cannot be loaded safely",
                   "damaged, or not written by bench", "move it away to restart that trial from step 0",
                   "or restore it")
    assert not (tmp_path / "code-ran").exists()  # its code never ran
    assert (old_run / "metrics.jsonl").read_text() == rows_before  # nothing trained, nothing lost

    # what the message says works: moved away, the trial trains again from step 0, to the same end
    checkpoint.rename(tmp_path / "moved-away.pt")
    cli("run", "--resume", old_run)
    final = [r for r in read_jsonl(old_run / "metrics.jsonl") if r["model"] == "vae"][-1]
    assert final["status"] == "completed" and final["step"] == 4
    assert final["recon_mse"] == pytest.approx(0.07379508224266829, rel=1e-6)  # the fixture's README
    log = read_jsonl(old_run / "trials" / "vae-s0" / "log.jsonl")
    assert [r["step"] for r in log] == [2, 4]  # the old attempt's row is not kept twice
    assert read_json(old_run / "manifest.json")["trials"]["vae-s0"]["status"] == "completed"
    json.dumps(final)



FLAKY = '''
from pathlib import Path

from bench_plugins.gan import GAN
from bench import hookimpl

FLAG = Path(__file__).with_name("broken")

class Flaky(GAN):
    """Raises while the file `broken` sits beside this plugin."""

    def train_step(self, batch):
        if FLAG.exists():
            raise RuntimeError("flaky is broken")
        return super().train_step(batch)

@hookimpl
def bench_register_models(register):
    register("flaky", Flaky)
'''


@pytest.mark.slow
def test_failed_trials_exit_3_and_retry_failed_trains_them_again(cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "flaky.py", FLAKY)
    (tmp_path / "broken").write_text("")
    out = cli("run", "--plugin", plugin, "--models", "flaky,gan", *SYNTH_RUN, *TINY, "--set", "flaky.width=8",
              expect_exit=3).output
    assert "flaky-s0: failed" in out and "gan-s0: completed" in out and "--retry-failed" in out
    run = only_run(results_dir)
    assert (run / "report.md").is_file()  # the report is written before the exit status

    # --resume alone keeps it, says so, and says how to retry
    out = cli("run", "--resume", run, expect_exit=3).output
    assert "flaky-s0: kept as failed (RuntimeError: flaky is broken)" in out
    assert f"bench run --resume {run} --retry-failed" in out

    (tmp_path / "broken").unlink()  # the bug is fixed
    out = cli("run", "--resume", run, "--retry-failed").output
    assert "flaky-s0: completed" in out and "gan-s0: completed" in out
    rows = read_jsonl(run / "metrics.jsonl")
    assert [(r["model"], r["status"]) for r in rows] == [("gan", "completed"), ("flaky", "completed")]
    retired = run / "retired" / "flaky-s0-1"
    assert (retired / "error.txt").is_file() and "flaky is broken" in (retired / "error.txt").read_text()
    (old,) = read_jsonl(retired / "metrics.jsonl")
    assert old["status"] == "failed"
    manifest = read_json(run / "manifest.json")
    assert manifest["trials"]["flaky-s0"]["status"] == "completed"
    assert manifest["retired"][0]["trial"] == "flaky-s0"
