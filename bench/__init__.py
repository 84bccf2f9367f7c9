"""bench: train GAN, VAE and hybrid variants under one fixed budget and compare them.

A plugin needs only::

    from bench import hookimpl, Variant          # a model
    from bench import hookimpl, Metric, Column   # a metric

``Variant`` (which needs torch) is imported on first use, so that torch-free parts of bench
(the results store, reports) start without it.
"""

from bench.hookspecs import hookimpl

__version__ = "0.2.0"
__all__ = ["Column", "Metric", "Variant", "hookimpl", "__version__"]


def __getattr__(name: str):
    if name == "Variant":
        from bench.variant import Variant

        return Variant
    if name == "Metric":
        from bench.metric import Metric

        return Metric
    if name == "Column":
        from bench.store.columns import Column

        return Column
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
