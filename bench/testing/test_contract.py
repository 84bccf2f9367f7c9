"""The contract checks over every variant registered in this environment (built-ins, installed
plugin packages), on every registered backbone it can build on, one test per variant, backbone
and check:

    pytest --pyargs bench.testing
    pytest --pyargs bench.testing -k "my-gan"
    pytest --pyargs bench.testing -k "resnet"

bench's own suite runs this module too (``tests/test_contract.py``).
"""

from __future__ import annotations

import pytest

from bench.backbones import takes_backbone
from bench.plugins import load_plugins
from bench.testing.contract import CONTRACT_CHECKS, RESOLUTION, check_sampling, one_thread

PLUGINS = load_plugins()
REGISTERED = PLUGINS.models


def _on_backbones(resolutions=(RESOLUTION,)):
    """(variant class, backbone, resolution) for each variant on each backbone that builds the
    resolution; a variant with networks of its own once, on them."""
    cases = []
    for entry in REGISTERED:
        backbones = PLUGINS.backbones if takes_backbone(entry.obj) else [None]
        for backbone in backbones:
            for resolution in resolutions:
                if backbone is None or backbone.obj().supports(resolution):
                    name = backbone.name if backbone else None
                    label = f"{entry.name}@{name}" if name else entry.name
                    label += f"-{resolution}px" if resolutions != (RESOLUTION,) else ""
                    cases.append(pytest.param(entry.obj, name, resolution, id=label))
    return cases


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def test_every_plugin_loaded():
    """A plugin that failed to load would silently drop its variants from the checks below."""
    assert REGISTERED.names(), "no variant is registered"
    assert load_plugins().failures == []


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize(("cls", "backbone", "resolution"), _on_backbones())
def test_contract(cls, backbone, resolution, check):
    CONTRACT_CHECKS[check](cls, backbone=backbone)


@pytest.mark.parametrize(("cls", "backbone", "resolution"), _on_backbones((16, 64)))
def test_other_resolutions(cls, backbone, resolution):
    """Other image sizes the backbone builds train and sample (it adds or drops stages)."""
    check_sampling(cls, resolution, backbone)
