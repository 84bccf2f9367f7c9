"""bench.device: the device's matrix-product peak, measured once per machine and cached."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY

import bench.run
from bench.device import cached_peaks
from bench.store import read_json

SYNTH = ["--dataset", "synthetic:128", "--budget", "2steps", "--batch-size", "16", "--no-progress"]


@pytest.mark.slow
def test_the_peak_is_measured_once_per_machine_and_cached(cli, results_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def fake_measure(device, dtype=torch.float32):
        calls.append(dtype)
        return {"matmul": 1e11, "conv1x1": 2e11}

    monkeypatch.setattr(bench.run, "measure_peaks", fake_measure)
    for _ in range(2):
        cli("run", "--models", "gan", *SYNTH, *TINY)
    cli("run", "--models", "gan", *SYNTH, *TINY, "--remeasure-peak")
    assert len(calls) == 2  # the first run and the --remeasure-peak run
    runs = sorted(results_dir.iterdir())
    sources = [read_json(r / "manifest.json")["device"]["peak_flops_source"] for r in runs]
    assert sources[0] == "measured now" and sources[1].startswith("cache, measured 20")
    assert sources[2] == "measured now"
    assert all(read_json(r / "manifest.json")["device"]["peak_flops"] == 2e11 for r in runs)
    cache = read_json(tmp_path / "cache" / "peaks.json")
    (key,) = [k for k in cache if not k.startswith(("train ", "inception "))]  # also: the plan's rates
    assert any(k.startswith("train ") for k in cache)
    assert "threads" in key and torch.__version__ in key and "float32" in key


def test_a_damaged_peak_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    (tmp_path / "peaks.json").write_text("{ not json")
    peaks, source = cached_peaks(torch.device("cpu"), measure=lambda d, t: {"matmul": 5.0})
    assert peaks == {"matmul": 5.0} and source == "measured now"
    assert cached_peaks(torch.device("cpu"), measure=lambda d, t: {"matmul": 7.0})[0] == {"matmul": 5.0}


def test_a_peak_measured_on_a_busy_machine_says_so_and_is_measured_again(tmp_path, monkeypatch):
    """A measurement that got a small share of its threads' CPU time (here: it sleeps) was on a
    busy machine: the source says so and how to re-measure, and the next use measures again."""
    import time

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    calls = []

    def starved(device, dtype):
        calls.append(1)
        time.sleep(0.1)
        return {"matmul": 5.0}

    peaks, source = cached_peaks(torch.device("cpu"), measure=starved)
    assert peaks == {"matmul": 5.0} and "busy machine" in source and "--remeasure-peak" in source
    cached_peaks(torch.device("cpu"), measure=starved)
    assert len(calls) == 2  # a busy entry is not trusted


def test_a_lower_peak_never_replaces_a_higher_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    cached_peaks(torch.device("cpu"), measure=lambda d, t: {"matmul": 10.0, "conv1x1": 8.0})
    peaks, source = cached_peaks(torch.device("cpu"), remeasure=True,
                                 measure=lambda d, t: {"matmul": 4.0, "conv1x1": 9.0})
    assert peaks == {"matmul": 10.0, "conv1x1": 9.0} and "higher than now" in source
    peaks, source = cached_peaks(torch.device("cpu"), remeasure=True,
                                 measure=lambda d, t: {"matmul": 12.0, "conv1x1": 9.5})
    assert peaks == {"matmul": 12.0, "conv1x1": 9.5} and source == "measured now"


def test_a_busy_share_is_judged_only_on_the_cpu_and_on_long_measurements():
    from bench.device import cpu_share

    assert cpu_share(lambda d, t: {"x": 1.0}, torch.device("cpu"), torch.float32) == ({"x": 1.0}, 1.0)
    assert cpu_share(lambda d, t: {"x": 1.0}, torch.device("meta"), torch.float32)[1] == 1.0
