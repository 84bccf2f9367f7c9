"""The built-in variants' tests build tiny networks, one torch thread each, on every registered
backbone: a test that is neither ``slow`` nor marked ``dcgan`` (a learning test whose thresholds
were set on the dcgan networks) runs once per backbone, with ``bench.testing``'s small configs
(``SMALL``, which ``helpers.make`` builds from) naming it. The slow learning tests run on dcgan."""

from __future__ import annotations

import pytest

BACKBONES = ("dcgan", "resnet")


def pytest_generate_tests(metafunc):
    marks = {m.name for m in metafunc.definition.iter_markers()}
    backbones = BACKBONES if not marks & {"slow", "dcgan"} else BACKBONES[:1]
    metafunc.fixturenames.append("on_backbone")
    metafunc.parametrize("on_backbone", backbones, indirect=True, ids=[f"@{b}" for b in backbones])


@pytest.fixture
def on_backbone(request, monkeypatch):
    """Every variant the test makes with ``bench.testing.make_variant`` builds on this backbone."""
    from bench.testing.contract import SMALL

    monkeypatch.setitem(SMALL, "backbone", request.param)
    return request.param


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread is as fast for these networks, and far faster when the cores are busy."""
    from bench.testing.contract import one_thread

    with one_thread():
        yield
