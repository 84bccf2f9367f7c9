"""bench.nets: the latent discriminator every backbone shares, and bench 0.2's names."""

from __future__ import annotations

import torch

import bench.backbones.dcgan as dcgan
import bench.nets as nets
from bench.backbones import BackboneConfig


def test_latent_discriminator_scores_codes():
    assert nets.LatentDiscriminator(8, 16)(torch.randn(5, 8)).shape == (5, 1)


def test_the_names_plugins_for_bench_0_2_import_are_the_dcgan_backbones():
    assert nets.Decoder is dcgan.Decoder and nets.ConvEncoder is dcgan.ConvEncoder
    assert nets.BackboneConfig is BackboneConfig and nets.dcgan_init is dcgan.dcgan_init
