"""The built-in variants as a set: registered through the hook like a third party's, each with its
family, and every decoder the GAN's generator (one shared backbone, whichever it is)."""

from __future__ import annotations

import pytest
from helpers import make, plugins

NAMES = ("gan", "vae", "vaegan", "arvae", "wgan-gp", "lsgan", "wae", "bigan", "alpha-gan", "soft-intro-vae")


FAMILY = {"gan": "gan", "vae": "vae", "vaegan": "hybrid", "arvae": "hybrid", "wgan-gp": "gan", "lsgan": "gan",
          "wae": "vae", "bigan": "hybrid", "alpha-gan": "hybrid", "soft-intro-vae": "hybrid"}


GENERATOR_ONLY = ("gan", "wgan-gp", "lsgan")  # the variants without an encoder


def test_builtins_register_through_the_hook():
    p = plugins()
    assert p.failures == []
    assert {e.name for e in p.models if e.source == "built-in"} == set(NAMES)  # a new built-in is listed
    for name in NAMES:
        entry = p.models.get(name)
        assert entry.plugin == "bench_plugins." + name.replace("-", "_") and entry.source == "built-in"
        cls = entry.obj
        assert cls.family == FAMILY[name]
        assert cls.has_encoder() == (name not in GENERATOR_ONLY)
        assert cls.image_networks, f"{name} declares no image networks (--ema averages those)"
        # shared backbone defaults: every decoder is the GAN's generator
        assert (cls.Config().width, cls.Config().latent) == (64, 128)


@pytest.mark.parametrize("name", NAMES)
def test_decoder_is_the_gan_generator(name, on_backbone):
    v = make(name)
    assert set(v.image_networks) <= set(v.networks)
    decoder = v.networks["generator" if "generator" in v.networks else "decoder"]
    reference = make("gan").networks["generator"]
    assert type(decoder) is type(reference) and type(reference).__module__ == f"bench.backbones.{on_backbone}"
    assert [t.shape for t in decoder.state_dict().values()] == [
        t.shape for t in reference.state_dict().values()
    ]
