"""Generator EMA (``--ema``): the update rule, evaluation on the averages, exact resume."""

from __future__ import annotations

import pytest
import torch
from bench_plugins.gan import GAN, GANConfig
from bench_plugins.vae import VAE, VAEConfig
from helpers import train_settings

from bench.config import RunConfig
from bench.data.batches import DeviceBatches
from bench.data.synthetic import synthetic_images
from bench.ema import EMAError, GeneratorEMA
from bench.evaluation import Evaluator
from bench.executors import make_executor
from bench.run import RunError, plan_trials, prepare_run, start_run
from bench.store import read_jsonl
from bench.trainer import Trainer
from bench.variant import Variant

TINY = GANConfig(width=8, latent=16)


def batch(seed):
    return synthetic_images(16, 32, seed).float() / 127.5 - 1


def test_averages_follow_the_ema_rule_and_copy_buffers():
    """avg_1 = live_1, then avg_t = d * avg_{t-1} + (1 - d) * live_t, in float64 by hand."""
    decay = 0.9
    variant = VAE((3, 32, 32), VAEConfig(width=8, latent=8), "cpu", 0)
    ema = GeneratorEMA(variant, decay)
    assert set(ema.averages) == {"encoder", "decoder"}
    expected = None
    for step in range(4):
        variant.train_step(batch(step))
        ema.update(variant)
        live = [p.detach().double().clone() for p in variant.networks["decoder"].parameters()]
        if expected is None:
            expected = live
        else:
            expected = [decay * e + (1 - decay) * p for e, p in zip(expected, live, strict=True)]
    got = list(ema.averages["decoder"].module.parameters())
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=1e-5, atol=1e-7)
    # the averages are not the live weights (else the test above says nothing) ...
    live = list(variant.networks["decoder"].parameters())
    assert any(not torch.allclose(g, p) for g, p in zip(got, live, strict=True))
    # ... while batch-norm statistics are the live ones, copied
    for name, buf in variant.networks["decoder"].named_buffers():
        assert torch.equal(dict(ema.averages["decoder"].module.named_buffers())[name], buf), name


def test_applied_swaps_the_averages_in_and_restores_the_trained_weights():
    variant = GAN((3, 32, 32), TINY, "cpu", 0)
    ema = GeneratorEMA(variant, 0.5)
    for step in range(3):
        variant.train_step(batch(step))
        ema.update(variant)
    G = variant.networks["generator"]
    trained = {k: v.clone() for k, v in G.state_dict().items()}
    averaged = ema.averages["generator"].module
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    with ema.applied(variant):
        assert all(torch.equal(G.state_dict()[k], v) for k, v in averaged.state_dict().items())
        inside = variant.sample(8, generator=g())
    assert all(torch.equal(G.state_dict()[k], v) for k, v in trained.items())  # bit for bit
    assert torch.equal(inside, averaged.eval()(variant.latent(8, 16, g())).float())
    assert not torch.allclose(inside, variant.sample(8, generator=g()))
    assert variant.optimizers["generator"].param_groups[0]["params"][0] is next(G.parameters())


def test_every_evaluation_of_a_trial_uses_the_averages(tmp_path, monkeypatch):
    seen = []

    def spy(self, variant, noise_seed, output_dir=None):
        seen.append({k: v.clone() for k, v in variant.networks["generator"].state_dict().items()})
        return {}

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    config = RunConfig(models=["gan"], dataset="synthetic:64", budget="6steps", batch_size=16, log_every=2,
                       eval_samples=0, eval_every="4steps", ema=0.5,
                       options={"gan": {"width": 8, "latent": 16}})
    ctx = start_run(config, tmp_path, "test", progress=False)
    assert make_executor("local").execute(ctx, plan_trials(config)) == {"gan-s0": "completed"}
    assert len(seen) == 2  # the interval evaluation at step 4 and the final one
    state = torch.load(ctx.directory / "trials" / "gan-s0" / "checkpoint.pt", weights_only=False)
    averaged = {k.removeprefix("module."): v for k, v in state["ema"]["averages"]["generator"].items()
                if k.startswith("module.")}
    trained = state["variant"]["networks"]["generator"]
    final = seen[-1]
    assert all(torch.equal(final[k], averaged[k]) for k in final)
    assert any(not torch.equal(final[k], trained[k]) for k in final if final[k].is_floating_point())
    rows = read_jsonl(ctx.directory / "metrics.jsonl")
    assert [r["ema"] for r in rows] == [0.5, 0.5]


def make_trainer(directory, budget, ema):
    variant = GAN((3, 32, 32), TINY, "cpu", 0)
    batches = DeviceBatches(synthetic_images(256), 16, "cpu", seed=0)
    return Trainer(variant, batches, train_settings(budget, batch_size=16, log_every=5, ema=ema),
                   directory, progress=False)


def test_resume_with_ema_is_exact(tmp_path):
    straight = make_trainer(tmp_path / "straight", "20steps", 0.9)
    straight.run()
    make_trainer(tmp_path / "split", "10steps", 0.9).run()
    resumed = make_trainer(tmp_path / "split", "20steps", 0.9)
    assert resumed.load_checkpoint() and resumed.usage.steps == 10
    resumed.run()
    a = straight.ema.averages["generator"].state_dict()
    b = resumed.ema.averages["generator"].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(b["n_averaged"]) == 20


class NoImageNetworks(Variant):
    family = "gan"

    def build(self):
        self.networks = {"g": torch.nn.Linear(1, 1)}
        self.optimizers = {"g": torch.optim.SGD(self.networks["g"].parameters(), 0.1)}

    def train_step(self, batch):
        return {}

    def sample(self, n, generator=None):
        return torch.zeros(n, 3, 32, 32)


def test_bad_ema_settings_are_one_line_errors_before_training(tmp_path):
    with pytest.raises(EMAError, match="declares no image_networks"):
        GeneratorEMA(NoImageNetworks((3, 32, 32)), 0.9)
    with pytest.raises(RunError, match=r"--ema 1.5: the decay must be between 0 and 1"):
        prepare_run(RunConfig(models=["gan"], dataset="synthetic:64", budget="1step", batch_size=16, ema=1.5,
                              eval_samples=0))
    plugin = tmp_path / "plain.py"
    plugin.write_text(
        "import torch\n"
        "from bench import Variant, hookimpl\n"
        "class Plain(Variant):\n"  # NoImageNetworks, as a third party would write it
        "    family = 'gan'\n"
        "    def build(self):\n"
        "        self.networks = {'g': torch.nn.Linear(1, 1)}\n"
        "        self.optimizers = {'g': torch.optim.SGD(self.networks['g'].parameters(), 0.1)}\n"
        "    def train_step(self, batch):\n"
        "        return {}\n"
        "    def sample(self, n, generator=None):\n"
        "        return torch.zeros(n, 3, 32, 32)\n"
        "@hookimpl\n"
        "def bench_register_models(register):\n"
        "    register('plain', Plain)\n"
    )
    with pytest.raises(RunError, match="model 'plain' declares no image_networks"):
        prepare_run(RunConfig(models=["plain"], dataset="synthetic:64", budget="1step", batch_size=16,
                              ema=0.9, eval_samples=0, plugin_files=[str(plugin)]))
