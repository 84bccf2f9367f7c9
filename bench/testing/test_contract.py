"""The contract checks over every variant registered in this environment (built-ins, installed
plugin packages), one test per variant and check:

    pytest --pyargs bench.testing
    pytest --pyargs bench.testing -k "my-gan"

bench's own suite runs this module too (``tests/test_contract.py``).
"""

from __future__ import annotations

import pytest

from bench.plugins import load_plugins
from bench.testing.contract import CONTRACT_CHECKS, check_sampling, one_thread

REGISTERED = load_plugins().models
VARIANTS = [pytest.param(entry.obj, id=entry.name) for entry in REGISTERED]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def test_every_plugin_loaded():
    """A plugin that failed to load would silently drop its variants from the checks below."""
    assert REGISTERED.names(), "no variant is registered"
    assert load_plugins().failures == []


@pytest.mark.parametrize("check", list(CONTRACT_CHECKS), ids=list(CONTRACT_CHECKS))
@pytest.mark.parametrize("cls", VARIANTS)
def test_contract(cls, check):
    CONTRACT_CHECKS[check](cls)


@pytest.mark.parametrize("resolution", [16, 64])
@pytest.mark.parametrize("cls", VARIANTS)
def test_other_resolutions(cls, resolution):
    """Square powers of two other than 32 train and sample (the backbone adds or drops stages)."""
    check_sampling(cls, resolution)
