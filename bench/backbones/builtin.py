"""The built-in backbones, registered through the plugin hook like a third party's."""

from bench.backbones.dcgan import DCGAN
from bench.backbones.resnet import ResNet
from bench.hookspecs import hookimpl

BUILTIN_BACKBONES = {"dcgan": DCGAN, "resnet": ResNet}


@hookimpl
def bench_register_backbones(register):
    for name, backbone in BUILTIN_BACKBONES.items():
        register(name, backbone)
