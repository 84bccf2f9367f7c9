"""bench.variant: the base class's backbone (build_decoder / build_encoder from the config's
``backbone``), its optional methods and its errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.backbones import BackboneConfig
from bench.backbones.dcgan import ConvEncoder, Decoder
from bench.backbones.resnet import ResNetDecoder, ResNetEncoder
from bench.variant import NoConfig, Variant


@dataclasses.dataclass
class SmallConfig(BackboneConfig):
    width: int = 4
    latent: int = 8


class Pair(Variant):
    family, Config = "gan", SmallConfig

    def build(self):
        self.networks = {"generator": self.build_decoder(), "discriminator": self.build_encoder(1, "none")}
        self.optimizers = {n: self.adam(m.parameters(), 1e-3, (0.5, 0.9)) for n, m in self.networks.items()}

    def train_step(self, batch):
        return {}

    def sample(self, n, generator=None):
        return self.networks["generator"](self.latent(n, self.config.latent, generator))


def test_the_config_names_the_backbone_the_networks_come_from():
    dcgan = Pair((3, 32, 32))
    assert type(dcgan.networks["generator"]) is Decoder
    assert type(dcgan.networks["discriminator"]) is ConvEncoder
    resnet = Pair((3, 32, 32), SmallConfig(backbone="resnet"))
    assert type(resnet.networks["generator"]) is ResNetDecoder
    assert type(resnet.networks["discriminator"]) is ResNetEncoder
    assert resnet.sample(2).shape == (2, 3, 32, 32)


def test_what_the_backbone_cannot_build_is_a_clear_error():
    with pytest.raises(ValueError, match="'resnet' does not support 16x16 images; it supports 32x32"):
        Pair((3, 16, 16), SmallConfig(backbone="resnet"))
    with pytest.raises(KeyError, match="unknown backbone 'nope'; registered: dcgan, resnet"):
        Pair((3, 32, 32), SmallConfig(backbone="nope"))


def test_a_config_without_backbone_has_none_and_the_optional_methods_are_declared():
    class Own(Variant):
        family, Config = "gan", NoConfig

        def build(self):
            self.networks = {"g": torch.nn.Linear(1, 1)}
            self.optimizers = {"g": torch.optim.SGD(self.networks["g"].parameters(), 0.1)}

        def train_step(self, batch):
            return {}

        def sample(self, n, generator=None):
            return torch.zeros(n, 3, 8, 8)

    own = Own((3, 8, 8))
    with pytest.raises(TypeError, match="Own.Config has no backbone field"):
        own.backbone  # noqa: B018
    assert Own.decode is None and Own.encode is None and Own.reconstruct is None and not Own.has_encoder()
