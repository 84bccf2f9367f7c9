"""bench: train GAN, VAE and hybrid variants under one fixed budget and compare them.

A plugin needs only::

    from bench import hookimpl, Variant, BackboneConfig   # a model on the registered backbones
    from bench import hookimpl, Backbone                  # a backbone
    from bench import LUCIC_SHARED, LogUniform   # ... and the search space `bench sweep` draws from
    from bench import hookimpl, Metric, Column   # a metric
    from bench import hookimpl, Tracker          # a tracker (a live view: W&B, Aim...)

``Variant`` (which needs torch) is imported on first use, so that torch-free parts of bench
(the results store, reports) start without it.
"""

from bench.hookspecs import hookimpl

__version__ = "0.2.0"
# search-space distributions and the shared ranges (bench.space: standard library only)
SPACE = ("Distribution", "LogUniform", "Uniform", "IntUniform", "Categorical", "LUCIC_SHARED",
         "LUCIC_DISC_STEPS", "LUCIC_PENALTY_WEIGHT")
BACKBONES = ("Backbone", "BackboneConfig")  # bench.backbones: standard library only
__all__ = ["Column", "Metric", "Tracker", "Variant", "hookimpl", "__version__", *BACKBONES, *SPACE]


def __getattr__(name: str):
    if name == "Variant":
        from bench.variant import Variant

        return Variant
    if name == "Metric":
        from bench.metric import Metric

        return Metric
    if name in BACKBONES:
        import bench.backbones

        return getattr(bench.backbones, name)
    if name in SPACE:
        import bench.space

        return getattr(bench.space, name)
    if name == "Tracker":
        from bench.trackers import Tracker

        return Tracker
    if name == "Column":
        from bench.store.columns import Column

        return Column
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
