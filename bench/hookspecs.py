"""Hook specifications: every way a plugin can extend bench.

A plugin module (built-in, installed package or local file) implements any of
these with ``@bench.hookimpl``; it may take any subset of the arguments.
"""

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


@hookspec
def bench_register_models(register):
    """Add model variants: call ``register(name, VariantSubclass)`` once per variant."""


@hookspec
def bench_register_datasets(register):
    """Add datasets: call ``register(name, loader)``; ``loader(spec)`` returns a ``bench.data.Dataset``."""


@hookspec
def bench_register_metrics(register):
    """Add metrics: call ``register(name, bench.Metric(compute, columns=(bench.Column(...), ...)))``;
    ``compute(ctx)`` gets a ``bench.evaluation.EvalContext`` and returns its columns' values."""


@hookspec
def bench_register_extractors(register):
    """Add feature extractors: call ``register(name, bench.metrics.extractors.Extractor(load, input_size,
    feature_size, weights, short=..., label=...))``; ``bench run --extractors inception,NAME`` then
    computes every per-extractor metric on its features too (columns suffixed with ``short``)."""


@hookspec
def bench_register_backbones(register):
    """Add backbones: call ``register(name, BackboneSubclass)``; every variant whose config has a
    ``backbone`` field can then build on it (``bench.backbones``)."""


@hookspec
def bench_register_trackers(register):
    """Add trackers: call ``register(name, TrackerSubclass)``; ``bench run --tracker NAME`` then
    sends it each trial's start, losses, evaluation rows, pictures and end (``bench.trackers``)."""
