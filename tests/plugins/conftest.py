"""The built-in variants' tests build tiny networks: one torch thread each."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread is as fast for these networks, and far faster when the cores are busy."""
    from bench.testing.contract import one_thread

    with one_thread():
        yield
