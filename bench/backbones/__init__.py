"""Backbones: the image networks every variant builds from, chosen per run (``--backbone``).

A comparison is fair because every variant builds from one backbone: the GAN's generator and
the VAE's decoder are the same network class at the same width and latent size, and so are the
discriminators and encoders. A backbone is a plugin (hook ``bench_register_backbones``); the
built-ins, ``dcgan`` (``bench.backbones.dcgan``) and ``resnet`` (``bench.backbones.resnet``),
register through it as a third party's would (``bench.backbones.builtin``).

A backbone makes, for a resolution, a width and a latent size:

* ``decoder(resolution, latent, width)``: ``[B, latent] -> [B, 3, R, R]`` in [-1, 1], the
  generator of the GANs and the decoder of the VAEs;
* ``encoder(resolution, out_dim, width, norm)``: ``[B, 3, R, R] -> [B, out_dim]``, the
  discriminator (``out_dim=1``, raw scores) and the encoder (``2*latent``: a Gaussian's mean and
  log-variance); ``norm`` is one of the backbone's ``norms``. If ``has_features``, the encoder
  also gives ``features(x, between=None)``, its last hidden activation (VAE/GAN measures
  reconstructions there; BiGAN's joint discriminator reads it), and ``head(h)``, so that
  ``forward(x) == head(features(x)).flatten(1)``; ``between(h)``, if given, is applied to the
  input of each hidden stage after the first (BiGAN's dropout).

A variant reads its backbone's name from its config's ``backbone`` field (``BackboneConfig``)
and builds with ``Variant.build_decoder`` / ``Variant.build_encoder``. Standard library only: the
command line lists backbones without importing torch.
"""

from __future__ import annotations

from bench.backbones.base import (
    DEFAULT_BACKBONE,
    NORMS,
    Backbone,
    BackboneConfig,
    check_backbone_class,
    takes_backbone,
)

__all__ = ["DEFAULT_BACKBONE", "NORMS", "Backbone", "BackboneConfig", "check_backbone_class", "get_backbone",
           "takes_backbone", "use_backbones"]

# The backbones a variant builds from, by name: the built-ins until ``bench.plugins.load_plugins``
# names the loaded ones (a process runs one set of plugins: the run's, or a Ray worker's).
_loaded: dict[str, type[Backbone]] = {}


def use_backbones(classes: dict[str, type[Backbone]]) -> None:
    """Make ``classes`` (name -> Backbone subclass) the backbones variants build from."""
    _loaded.clear()
    _loaded.update(classes)


def get_backbone(name: str) -> Backbone:
    """The backbone registered as ``name``; KeyError listing the known ones otherwise."""
    if not _loaded:
        from bench.backbones.builtin import BUILTIN_BACKBONES

        use_backbones(BUILTIN_BACKBONES)
    try:
        return _loaded[name]()
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; registered: {', '.join(sorted(_loaded))} "
                       "(see `bench list`)") from None
