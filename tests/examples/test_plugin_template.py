"""The example third-party package installs, registers through its entry point and trains."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.store import read_jsonl

TEMPLATE = Path(__file__).parents[2] / "examples" / "plugin-template"


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


@pytest.mark.slow
def test_template_installs_and_trains(installed_template, tmp_path):
    listed = bench_cli("list")
    assert listed.returncode == 0, listed.stderr
    models = {x.split()[0]: x for x in listed.stdout.splitlines() if x.startswith("  ")}
    line = models["wgan-gp-example"]
    assert "gan" in line and "package bench-wgan-gp" in line
    # The example's name no longer clashes with the built-in wgan-gp: both load.
    assert models["wgan-gp"].split()[1:] == ["gan", "built-in"]
    assert "bench-wgan-gp" not in listed.stderr and "bench_wgan_gp" not in listed.stderr, listed.stderr
    run = bench_cli("run", "--models", "wgan-gp-example", "--dataset", "synthetic:128", "--budget",
                    "3steps", "--batch-size", "16", "--log-every", "1", "--set", "wgan-gp-example.width=8",
                    "--eval-samples", "0",
                    "--results-dir", str(tmp_path / "results"), "--no-progress")
    assert run.returncode == 0, run.stderr
    (row,) = read_jsonl(next((tmp_path / "results").iterdir()) / "metrics.jsonl")
    assert row["model"] == "wgan-gp-example" and row["status"] == "completed" and row["step"] == 3


@pytest.mark.slow
def test_template_encoder_variant_trains_and_reconstructs(installed_template, tmp_path):
    listed = bench_cli("list")
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith("template-iwae"))
    assert "vae" in line and "package bench-wgan-gp" in line
    run = bench_cli("run", "--models", "template-iwae", "--dataset", "synthetic:128", "--budget", "3steps",
                    "--batch-size", "16", "--log-every", "1", "--set", "template-iwae.width=8",
                    "--set", "template-iwae.k=3", "--eval-samples", "0",
                    "--results-dir", str(tmp_path / "results"), "--no-progress")
    assert run.returncode == 0, run.stderr
    run_dir = next((tmp_path / "results").iterdir())
    (row,) = read_jsonl(run_dir / "metrics.jsonl")
    assert row["status"] == "completed" and row["step"] == 3
    assert 0 < row["recon_mse"] < 1  # reconstruct() made it an encoder variant
    assert (run_dir / "trials" / "template-iwae-s0" / "reconstructions.png").is_file()


def test_iwae_log_weights_match_the_densities_written_out():
    """The template's log importance weights (constants dropped) against log p(x|z) + log N(z; 0, I)
    - log N(z; mu, s^2) with torch.distributions in float64, for the same eps: the 2 pi constants
    of the prior and the posterior cancel, so the two agree exactly up to rounding."""
    import sys

    import torch

    sys.path.insert(0, str(TEMPLATE))
    try:
        from bench_wgan_gp.iwae import IWAE, IWAEConfig
    finally:
        sys.path.pop(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    model = IWAE((3, 16, 16), IWAEConfig(width=8, latent=6, k=1), "cpu", 0)
    torch.manual_seed(0)
    model.generator.manual_seed(1)
    log_w = model.log_weights(x)[0]
    model.generator.manual_seed(1)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=model.generator)
    z = mu + (0.5 * logvar).exp() * eps
    sigma = model.config.sigma
    log_px = -(x - model.decode(z)).pow(2).flatten(1).sum(1) / (2 * sigma**2)
    # log p(z) - log q(z|x) in float64, the densities written out with their constants
    normal = torch.distributions.Normal
    log_pz = normal(0.0, 1.0).log_prob(z.double()).sum(1)
    log_qz = normal(mu.double(), (0.5 * logvar.double()).exp()).log_prob(z.double()).sum(1)
    torch.testing.assert_close(log_w.double(), log_px.double() + log_pz - log_qz, rtol=1e-5, atol=1e-3)


@pytest.mark.slow
def test_an_installed_plugin_gets_the_contract_checks(installed_template, tmp_path):
    """A plugin author's check: `pytest --pyargs bench.testing` finds the installed package's variants."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "bench.testing", "-q", "-p",
                             "no:cacheprovider", "-k", "wgan-gp-example or template-iwae"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    # 2 variants x (2 backbones x 6 contract checks + other resolutions: dcgan's 16 and 64, resnet's 64)
    assert "30 passed" in result.stdout, result.stdout[-3000:]
