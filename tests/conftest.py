"""Fixtures and hooks only (shared helpers are in helpers.py). Nothing here imports torch or the
command line at collection: a test that needs them pays for them.

Real data comes from $BENCH_DATA_DIR (CI points it at ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Invoke ``bench`` in-process with results under a temporary folder."""
    from click.testing import CliRunner

    from bench.cli import main

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))

    def invoke(*args, expect_exit=0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect_exit, result.output
        return result

    return invoke


@pytest.fixture
def results_dir(tmp_path) -> Path:
    return tmp_path / "results"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where CUDA is available."""
    if not any("cuda" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_ignore_collect(collection_path, config):
    """tests/benchmarks/ runs only when asked for (--benchmark-only or --benchmark-enable)."""
    wanted = config.getoption("--benchmark-only") or config.getoption("--benchmark-enable")
    if "benchmarks" in collection_path.parts and not wanted:
        return True
    return None
