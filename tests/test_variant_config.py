"""bench.variant_config: a variant's Config from --set text, each value checked against and stored
as its field's type, over the defaults of the backbone it names."""

from __future__ import annotations

import pytest
import torch
from helpers import only_run, variant_class

from bench.store import read_json
from bench.variant_config import config_from_dict, resolved_config

SYNTH = ["--dataset", "synthetic:128", "--budget", "4steps", "--batch-size", "16", "--log-every", "2",
         "--no-progress"]


@pytest.mark.parametrize("setting, message", [
    ("vae.beta=abc", "--set vae.beta=abc: beta takes a number, and 'abc' is not that"),
    ("vae.width=2.5", "--set vae.width=2.5: width takes an integer, and '2.5' is not that"),
    ("gan.loss=wgan", "--set gan.loss=wgan: loss takes one of 'nonsaturating', 'hinge'"),
])
def test_set_values_are_checked_against_the_field_type_before_training(cli, results_dir, setting, message):
    out = cli("run", "--models", "gan,vae", *SYNTH, "--eval-samples", "0", "--set", setting,
              expect_exit=1).output
    assert message in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1  # one line
    assert not results_dir.exists()  # nothing written, nothing trained


@pytest.mark.slow
def test_set_values_are_stored_with_their_field_type(cli, results_dir):
    cli("run", "--models", "vae", *SYNTH, "--eval-samples", "0", "--set", "vae.beta=2",
        "--set", "vae.width=8", "--set", "vae.latent=16")
    manifest = read_json(only_run(results_dir) / "manifest.json")
    assert manifest["config"]["options"]["vae"] == {"beta": 2.0, "width": 8, "latent": 16}
    assert isinstance(manifest["config"]["options"]["vae"]["beta"], float)
    # every variant's full resolved config and the version of what registered it
    vae = manifest["models"]["vae"]
    assert vae["config"]["beta"] == 2.0 and vae["config"]["sigma"] == 0.15 and vae["config"]["lr"] == 2e-4
    assert vae["source"] == "built-in" and vae["version"] == manifest["versions"]["bench"]
    assert [c["key"] for c in manifest["columns"]][:2] == ["fid", "fid_infinity"]
    # the checkpoint says what produced it
    state = torch.load(only_run(results_dir) / "trials" / "vae-s0" / "checkpoint.pt", weights_only=True)
    assert state["run_config"]["options"]["vae"]["beta"] == 2.0
    assert state["variant_config"]["beta"] == 2.0 and state["variant_config"]["width"] == 8


def test_a_backbone_brings_the_defaults_its_paper_gives():
    gan, wgan = variant_class("gan"), variant_class("wgan-gp")
    assert (config_from_dict(gan, {}).beta1, config_from_dict(gan, {}).beta2) == (0.5, 0.999)  # DCGAN's
    on_resnet = config_from_dict(gan, {"backbone": "resnet"})
    assert (on_resnet.beta1, on_resnet.beta2, on_resnet.lr) == (0.0, 0.9, 2e-4)  # SNGAN's
    assert config_from_dict(gan, {"backbone": "resnet", "beta1": "0.5"}).beta1 == 0.5  # --set wins
    assert resolved_config(wgan, {"backbone": "resnet"})["lr"] == 2e-4  # the paper's ResNet
    assert resolved_config(wgan, {})["lr"] == 1e-4
    vae = variant_class("vae")
    assert resolved_config(vae, {"backbone": "resnet"}) == {**resolved_config(vae, {}), "backbone": "resnet"}


def test_a_preset_fills_its_fields_under_the_explicit_ones_and_over_the_backbones():
    import dataclasses

    from bench.backbones import BackboneConfig
    from bench.variant import Variant

    @dataclasses.dataclass
    class TwoConfig(BackboneConfig):
        preset: str = "mine"
        lr: float = 1.0
        beta1: float = 0.5

    class Two(Variant):
        family, Config = "gan", TwoConfig
        backbone_defaults = {"resnet": {"lr": 2.0, "beta1": 0.0}}
        presets = {"mine": {}, "theirs": {"lr": 3.0}}

    assert (config_from_dict(Two, {}).lr, config_from_dict(Two, {"preset": "theirs"}).lr) == (1.0, 3.0)
    theirs_on_resnet = config_from_dict(Two, {"preset": "theirs", "backbone": "resnet"})
    assert (theirs_on_resnet.lr, theirs_on_resnet.beta1) == (3.0, 0.0)  # the preset over the backbone's
    assert config_from_dict(Two, {"preset": "theirs", "lr": "4"}).lr == 4.0  # --set over the preset
    assert resolved_config(variant_class("bigan"), {"preset": "ali"})["d_norm"] == "none"


def test_backbone_on_a_config_without_one_says_so():
    from bench.variant import NoConfig, Variant

    class Own(Variant):
        family, Config = "gan", NoConfig

    with pytest.raises(ValueError, match="Own takes no backbone: its Config has no backbone field"):
        config_from_dict(Own, {"backbone": "resnet"})
