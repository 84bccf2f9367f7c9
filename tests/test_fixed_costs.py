"""What every run pays besides training: the device's peak (measured once per machine, then
cached), the reconstruction sample size, and the imports of the light commands."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import TINY, only_run

import bench.run
from bench.device import cached_peaks
from bench.store import read_json, read_jsonl

SYNTH = ["--dataset", "synthetic:128", "--budget", "2steps", "--batch-size", "16", "--no-progress"]


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


def test_recon_samples_is_its_own_option_and_in_every_row(cli, results_dir):
    cli("run", "--models", "gan,vae", *SYNTH, *TINY, "--set", "vae.width=8", "--set", "vae.latent=16",
        "--recon-samples", "40")
    rows = {r["model"]: r for r in read_jsonl(only_run(results_dir) / "metrics.jsonl")}
    assert rows["vae"]["recon_samples"] == 40 and rows["vae"]["recon_mse"] > 0
    assert "recon_samples" in rows["gan"] and rows["gan"]["recon_samples"] is None  # no encoder
    out = cli("run", "--models", "vae", *SYNTH, "--recon-samples", "1", expect_exit=2).output
    assert "--recon-samples" in out


def _imported_after(statement: str) -> set[str]:
    code = (f"import sys; {statement}; heavy = ('torch', 'ray', 'torch_fidelity', 'matplotlib', 'pandas'); "
            "print(','.join(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(filter(None, result.stdout.strip().split(",")))


def test_the_light_commands_import_only_what_they_use():
    """`bench --help` loads none of the heavy packages; the results store none; the report path
    its tables and plots (pandas, matplotlib) but no torch, Ray or torch-fidelity."""
    assert _imported_after("from bench.cli import main") == set()
    assert _imported_after("import bench.store, bench.store.retire") == set()
    assert _imported_after("import bench.report") <= {"pandas", "matplotlib"}
