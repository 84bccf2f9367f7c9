"""The example third-party package installs, registers through its entry point and trains."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.store import read_jsonl

TEMPLATE = Path(__file__).parents[1] / "examples" / "plugin-template"


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=600)


def bench_cli(*args, **kw):
    exe = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture
def installed_template(tmp_path):
    # Copy so the build leaves nothing in the source tree.
    src = tmp_path / "plugin-template"
    shutil.copytree(TEMPLATE, src)
    result = pip("install", "--no-deps", "--no-build-isolation", str(src))
    assert result.returncode == 0, result.stderr
    try:
        yield
    finally:
        pip("uninstall", "-y", "bench-wgan-gp")


def test_template_installs_and_trains(installed_template, tmp_path):
    listed = bench_cli("list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith("wgan-gp"))
    assert "gan" in line and "package bench-wgan-gp" in line
    run = bench_cli("run", "--models", "wgan-gp", "--dataset", "synthetic:128", "--budget", "3steps",
                    "--batch-size", "16", "--log-every", "1", "--set", "wgan-gp.width=8",
                    "--eval-samples", "0",
                    "--results-dir", str(tmp_path / "results"), "--no-progress")
    assert run.returncode == 0, run.stderr
    (row,) = read_jsonl(next((tmp_path / "results").iterdir()) / "metrics.jsonl")
    assert row["model"] == "wgan-gp" and row["status"] == "completed" and row["step"] == 3
