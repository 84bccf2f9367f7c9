"""Find, load and register plugins.

Load order (later plugins cannot take an earlier plugin's names):

1. built-ins: the modules in ``BUILTIN_PLUGINS`` (``plugins/`` installed as ``bench_plugins``,
   the backbones in ``bench.backbones.builtin``, the dataset loaders in ``bench.data.builtin``,
   the metrics in ``bench.metrics.builtin``, the feature extractors in ``bench.metrics.extractors`` and
   the trackers in ``bench.trackers.builtin``);
2. installed packages: every entry point in the group ``bench``
   (``[project.entry-points.bench]`` in a package's pyproject.toml);
3. local files given with ``--plugin path/to/file.py`` in the order given.

A plugin that fails to import, names a hook that does not exist (``check_pending``),
or registers something invalid is skipped as a whole and recorded in
``Plugins.failures``; the others still load. A plugin that loads but registers nothing
(no ``@hookimpl`` function, or one that never calls ``register``) is kept in
``Plugins.warnings``: ``bench`` names it, since "unknown model" alone would not say why.

The loaded backbones become the ones variants build from (``bench.backbones.use_backbones``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pluggy

from bench import hookspecs
from bench.backbones import check_backbone_class, use_backbones
from bench.metric import check_metric
from bench.metrics.extractors import check_extractor
from bench.registry import Registry, check_dataset_loader, check_metric_columns, check_variant_class
from bench.store.provenance import package_version
from bench.trackers import check_tracker_class

BUILTIN_PLUGINS = (
    "bench.backbones.builtin",
    "bench.data.builtin",
    "bench.metrics.builtin",
    "bench.metrics.extractors",
    "bench.trackers.builtin",
    "bench_plugins.gan",
    "bench_plugins.vae",
    "bench_plugins.vaegan",
    "bench_plugins.arvae",
    "bench_plugins.wgan_gp",
    "bench_plugins.lsgan",
    "bench_plugins.wae",
    "bench_plugins.bigan",
    "bench_plugins.alpha_gan",
    "bench_plugins.soft_intro_vae",
)
ENTRY_POINT_GROUP = "bench"


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    plugin: str
    source: str
    error: str
    kind: str | None = None  # the registry a bad registration was refused by (model, backbone, ...)

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} ({self.source}) was not loaded: {self.error}"


@dataclasses.dataclass
class Plugins:
    manager: pluggy.PluginManager
    models: Registry
    backbones: Registry
    datasets: Registry
    metrics: Registry
    failures: list[PluginFailure]
    warnings: list[str] = dataclasses.field(default_factory=list)
    trackers: Registry = dataclasses.field(default_factory=lambda: Registry("tracker", check_tracker_class))
    extractors: Registry = dataclasses.field(default_factory=lambda: Registry("extractor", check_extractor))

    def metric_objects(self) -> dict:
        """name -> Metric, in registration order (the order of a row's columns)."""
        return {entry.name: entry.obj for entry in self.metrics}


# hook name -> (registry attribute, argument name) for the registering hooks
_REGISTERING_HOOKS = {
    "bench_register_models": ("models", "register"),
    "bench_register_backbones": ("backbones", "register"),
    "bench_register_datasets": ("datasets", "register"),
    "bench_register_metrics": ("metrics", "register"),
    "bench_register_trackers": ("trackers", "register"),
    "bench_register_extractors": ("extractors", "register"),
}


def load_plugins(files=(), builtins=BUILTIN_PLUGINS, entry_points: bool = True) -> Plugins:
    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(
        manager,
        Registry("model", check_variant_class),
        Registry("backbone", check_backbone_class),
        Registry("dataset", check_dataset_loader),
        Registry("metric", check_metric, check_metric_columns),
        failures=[],
    )
    bench_version = package_version("bench-gen", "bench")
    for module_name in builtins:
        _load(plugins, module_name, "built-in", lambda m=module_name: importlib.import_module(m),
              bench_version)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "unknown package"
            version = ep.dist.version if ep.dist is not None else None
            _load(plugins, ep.name, f"package {dist}", ep.load, version)
    for path in files:
        path = Path(path)
        _load(plugins, str(path), f"file {path}", lambda p=path: _import_file(p))
    use_backbones({entry.name: entry.obj for entry in plugins.backbones})
    return plugins


def check_plugin_files(files) -> None:
    """Every ``--plugin`` file exists (an error before anything runs, not a warning after)."""
    from bench.config import RunError

    for path in files:
        if not Path(path).is_file():
            raise RunError(f"--plugin {path}: no such file; give the path of a Python file that "
                           "registers plugins with @bench.hookimpl")


def _import_file(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no such plugin file: {path}")
    module_name = f"bench_local_plugin_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _load(plugins: Plugins, name: str, source: str, importer, version: str | None = None) -> None:
    """Import one plugin, register it and run its registering hooks; all or nothing."""
    manager = plugins.manager
    registered = False
    try:
        module = importer()
        manager.register(module, name=name)
        registered = True
        manager.check_pending()
        staged = _collect_registrations(manager, module)
        # Validate every registration before committing any, so that a plugin
        # whose second registration fails leaves no half of itself behind.
        prepared = [
            (getattr(plugins, kind),
             getattr(plugins, kind).prepare(items, plugin=name, source=source, version=version))
            for kind, items in staged.items()
        ]
        for registry, entries in prepared:
            registry.commit(entries)
        if not any(staged.values()):
            plugins.warnings.append(
                f"plugin {name!r} ({source}) registered nothing: it needs a function decorated with "
                "@bench.hookimpl, e.g. bench_register_models(register), that calls register(name, obj)")
    except Exception as exc:  # a broken plugin must not stop the others
        if registered:
            manager.unregister(name=name)
        plugins.failures.append(PluginFailure(name, source, f"{type(exc).__name__}: {exc}",
                                              getattr(exc, "kind", None)))


def _collect_registrations(manager: pluggy.PluginManager, module) -> dict[str, list]:
    """Call this plugin's registering hook implementations with a recording ``register``."""
    staged: dict[str, list] = {}
    for hook_name, (kind, arg) in _REGISTERING_HOOKS.items():
        hook = getattr(manager.hook, hook_name)
        for impl in hook.get_hookimpls():
            if impl.plugin is not module:
                continue
            entries = staged.setdefault(kind, [])
            kwargs = {arg: lambda n, obj, _e=entries: _e.append((n, obj))}
            impl.function(**{a: kwargs[a] for a in impl.argnames})
    return staged
