"""bench.backbones: the backbone contract, its registration through the plugin hook (the built-ins'
and a third party's), and what a bad registration gets."""

from __future__ import annotations

import pytest
from helpers import write_plugin

from bench.backbones import Backbone, BackboneConfig, check_backbone_class, get_backbone, takes_backbone
from bench.backbones.builtin import BUILTIN_BACKBONES
from bench.plugins import load_plugins

# A third-party backbone in a few lines (the README's example): DCGAN's networks at twice the width.
WIDE = """
    from bench import Backbone, hookimpl
    from bench.backbones.dcgan import DCGAN


    class Wide(Backbone):
        resolutions = "powers of two >= 8"

        def supports(self, resolution):
            return DCGAN().supports(resolution)

        def decoder(self, resolution, latent, width):
            return DCGAN().decoder(resolution, latent, 2 * width)

        def encoder(self, resolution, out_dim, width, norm="batch"):
            return DCGAN().encoder(resolution, out_dim, 2 * width, norm)


    @hookimpl
    def bench_register_backbones(register):
        register("{name}", Wide)
"""


@pytest.fixture(autouse=True)
def builtin_backbones_after():
    """load_plugins makes the loaded backbones the ones variants build from: restore the built-ins."""
    from bench.backbones import use_backbones

    yield
    use_backbones(BUILTIN_BACKBONES)


def test_the_builtins_register_through_the_hook():
    plugins = load_plugins(entry_points=False)
    assert plugins.backbones.names() == ["dcgan", "resnet"]
    assert {e.source for e in plugins.backbones} == {"built-in"}
    assert {e.plugin for e in plugins.backbones} == {"bench.backbones.builtin"}


def test_a_third_party_backbone_is_registered_and_built_on(tmp_path):
    from bench.testing import check_one_step, make_variant

    path = write_plugin(tmp_path, "wide.py", WIDE.format(name="wide"))
    plugins = load_plugins([path], entry_points=False)
    assert plugins.failures == [] and plugins.backbones.get("wide").source == f"file {path}"
    gan = plugins.models.get("gan").obj
    variant = make_variant(gan, backbone="wide")
    assert variant.networks["generator"].net[0].out_channels == 2 * 8 * 8  # 8 * (2 * width 8)
    check_one_step(gan, backbone="wide")


def test_a_taken_name_is_refused_naming_both_plugins(tmp_path):
    path = write_plugin(tmp_path, "clash.py", WIDE.format(name="resnet"))
    plugins = load_plugins([path], entry_points=False)
    (failure,) = plugins.failures
    assert failure.kind == "backbone"
    assert f"file {path}" in str(failure) and "'bench.backbones.builtin' (built-in)" in str(failure)
    assert "duplicate backbone name 'resnet'" in str(failure)
    assert type(get_backbone("resnet")).__module__ == "bench.backbones.resnet"  # the built-in stays


def test_a_registration_must_be_a_concrete_backbone_class():
    class Half(Backbone):
        def supports(self, resolution):
            return True

    class Odd(Half):
        norms = ("group",)

        def decoder(self, resolution, latent, width):
            return None

        def encoder(self, resolution, out_dim, width, norm="batch"):
            return None

    with pytest.raises(ValueError, match="not a subclass of bench.Backbone"):
        check_backbone_class(object)
    with pytest.raises(ValueError, match="Half does not implement decoder, encoder"):
        check_backbone_class(Half)
    with pytest.raises(ValueError, match="Odd.norms has \\['group'\\]"):
        check_backbone_class(Odd)


def test_variants_with_a_backbone_field_take_one():
    from helpers import variant_class

    assert takes_backbone(variant_class("gan")) and takes_backbone(variant_class("bigan"))
    assert BackboneConfig().backbone == "dcgan"
    with pytest.raises(KeyError, match="unknown backbone 'vgg'; registered: dcgan, resnet"):
        get_backbone("vgg")
