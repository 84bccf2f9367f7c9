"""bench.plugins and bench.registry: loading from the three sources, registration errors, and what a
plugin author meets (a plugin that registers nothing, a missing plugin file)."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
from helpers import SYNTH_RUN, TINY, write_plugin

from bench import hookspecs
from bench.plugins import load_plugins
from bench.registry import Registry, check_variant_class

GOOD_PLUGIN = '''
import dataclasses, torch
from bench import Variant, hookimpl
from bench.nets import Decoder

@dataclasses.dataclass
class Cfg:
    latent: int = 8

class Tiny(Variant):
    family = "gan"
    Config = Cfg
    def build(self):
        self.networks = {"g": Decoder(self.image_shape[-1], self.config.latent, 4)}
        self.optimizers = {"g": torch.optim.SGD(self.networks["g"].parameters(), lr=0.01)}
    def train_step(self, batch):
        loss = (self.networks["g"](self.latent(batch.shape[0], 8)) - batch).pow(2).mean()
        self.optimizers["g"].zero_grad(); loss.backward(); self.optimizers["g"].step()
        return {"loss": loss.detach()}
    def sample(self, n, generator=None):
        with torch.no_grad():
            return self.networks["g"](self.latent(n, 8, generator))

@hookimpl
def bench_register_models(register):
    register("{name}", Tiny)
'''


def test_builtins_load_without_failures():
    plugins = load_plugins()
    assert plugins.failures == []
    assert {"gan", "vae", "vaegan", "arvae"} <= set(plugins.models.names())
    assert {"cifar10", "imagefolder", "synthetic"} <= set(plugins.datasets.names())
    assert all(e.source == "built-in" for e in plugins.models)
    families = {e.name: e.obj.family for e in plugins.models}
    assert families["gan"] == "gan" and families["vae"] == "vae" and families["vaegan"] == "hybrid"


def test_local_file_plugin(tmp_path):
    path = write_plugin(tmp_path, "tiny.py", GOOD_PLUGIN.replace("{name}", "tiny"))
    plugins = load_plugins([path])
    entry = plugins.models.get("tiny")
    assert entry.source == f"file {path}" and entry.plugin == str(path)
    assert plugins.failures == []


def test_entry_point_plugin(tmp_path, monkeypatch):
    write_plugin(tmp_path, "ep_tiny_plugin.py", GOOD_PLUGIN.replace("{name}", "ep-tiny"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="ep-tiny", value="ep_tiny_plugin", group="bench")
    real = importlib.metadata.entry_points

    def fake(**kw):
        return [ep] if kw.get("group") == "bench" else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    plugins = load_plugins()
    assert plugins.models.get("ep-tiny").source.startswith("package")
    assert plugins.failures == []


def test_broken_plugins_are_reported_and_the_rest_load(tmp_path):
    broken = write_plugin(tmp_path, "broken.py", "import no_such_module_xyz\n")
    dup = write_plugin(tmp_path, "dup.py", GOOD_PLUGIN.replace("{name}", "gan"))
    good = write_plugin(tmp_path, "good.py", GOOD_PLUGIN.replace("{name}", "good"))
    plugins = load_plugins([broken, dup, good, tmp_path / "missing.py"])
    assert "good" in plugins.models and "gan" in plugins.models
    assert plugins.models.get("gan").source == "built-in"  # the duplicate did not replace it
    errors = {f.plugin: f.error for f in plugins.failures}
    assert "ModuleNotFoundError" in errors[str(broken)]
    assert "duplicate model name 'gan'" in errors[str(dup)]
    assert "no such plugin file" in errors[str(tmp_path / "missing.py")]
    (failure,) = [f for f in plugins.failures if f.plugin == str(broken)]
    assert str(broken) in str(failure) and failure.source == f"file {broken}"


def test_misspelt_hook_is_rejected(tmp_path):
    path = write_plugin(tmp_path, "typo.py", '''
        from bench import hookimpl

        @hookimpl
        def bench_regster_models(register):
            pass
    ''')
    plugins = load_plugins([path])
    (failure,) = [f for f in plugins.failures if f.plugin == str(path)]
    assert "bench_regster_models" in failure.error
    assert str(path) not in [n for n, _ in plugins.manager.list_name_plugin()]


def test_half_registered_plugin_leaves_nothing(tmp_path):
    text = GOOD_PLUGIN.replace(
        'register("{name}", Tiny)', 'register("first", Tiny)\n    register("Bad Name", Tiny)'
    )
    plugins = load_plugins([write_plugin(tmp_path, "half.py", text)])
    assert "first" not in plugins.models
    assert "invalid model name 'Bad Name'" in plugins.failures[-1].error


class _NotAVariant:
    family = "gan"


def add(registry, name, obj, *, plugin, source):
    """What plugin loading does with one registration: validate, then commit."""
    registry.commit(registry.prepare([(name, obj)], plugin=plugin, source=source))


def test_registry_errors_name_the_plugin_and_problem():
    from bench_plugins.gan import GAN

    registry = Registry("model", check_variant_class)
    add(registry, "gan", GAN, plugin="p1", source="built-in")
    cases = [
        ("gan", GAN, "duplicate model name 'gan', already registered by plugin 'p1'"),
        ("Has Space", GAN, "invalid model name"),
        ("x", _NotAVariant, "is not a subclass of bench.Variant"),
    ]
    for name, obj, message in cases:
        with pytest.raises(ValueError, match="plugin 'p2'") as err:
            add(registry, name, obj, plugin="p2", source="file x.py")
        assert message in str(err.value)


def test_incomplete_variant_classes_are_rejected():
    from bench_plugins.gan import GAN

    class Abstract(GAN.__mro__[1]):  # bench.Variant without implementations
        family = "gan"

    class BadFamily(GAN):
        family = "diffusion"

    class NoDefaults(GAN):
        import dataclasses as _dc

        Config = _dc.make_dataclass("C", [("width", int)])

    for cls, message in [(Abstract, "does not implement build"), (BadFamily, "family is 'diffusion'"),
                         (NoDefaults, "needs a default for every field")]:
        with pytest.raises(ValueError, match=message):
            check_variant_class(cls)


def test_every_hook_is_documented():
    """Like datasette: each hookspec has a docstring and the README names it."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("bench_")]
    assert hooks
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, name
        assert name in readme, f"README does not document hook {name}"



def test_a_plugin_that_registers_nothing_is_named(cli, tmp_path, results_dir):
    plugin = write_plugin(tmp_path, "forgot.py", '''
        from bench_plugins.gan import GAN

        class Mine(GAN):
            pass

        def bench_register_models(register):  # no @hookimpl: pluggy never calls it
            register("mine", Mine)
    ''')
    out = cli("run", "--plugin", plugin, "--models", "mine", *SYNTH_RUN, *TINY, expect_exit=1).output
    assert "unknown model(s): mine" in out
    assert f"plugin '{plugin}'" in out and "registered nothing" in out and "@bench.hookimpl" in out
    assert not results_dir.exists()
    listed = cli("list", "--plugin", plugin).output
    assert "registered nothing" in listed


def test_a_missing_plugin_file_is_an_error_before_training(cli, tmp_path, results_dir):
    missing = tmp_path / "nope.py"
    out = cli("run", "--plugin", missing, "--models", "gan", *SYNTH_RUN, *TINY, expect_exit=1).output
    assert f"--plugin {missing}: no such file" in out and "Traceback" not in out
    assert not results_dir.exists()
