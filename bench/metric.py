"""The metric contract: a registered function that returns declared columns.

A metric plugin registers one ``Metric`` per name through the same hook mechanism as
models (built-ins in ``bench.metrics.builtin`` register exactly this way)::

    from bench import Column, Metric, hookimpl

    def sharpness(ctx):                      # ctx: bench.evaluation.EvalContext
        x = ctx.samples                      # generated images, float [-1, 1], [N, 3, H, W]
        return {"sharpness": float(laplacian(x).var())}

    @hookimpl
    def bench_register_metrics(register):
        register("sharpness", Metric(sharpness, columns=(Column("sharpness", "sharpness", "higher"),)))

Every declared column is in every evaluation row (NaN where the metric does not apply or
failed), in ``summary.csv``, in the report's tables and in its metrics plot. The columns are
written into each run's manifest, so reports need no plugin code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench.store.columns import Column

# What a metric needs: generated samples (skipped with --eval-samples 0), an encoder
# (skipped for variants without ``reconstruct``), or neither.
NEEDS = ("samples", "encoder", "nothing")


@dataclasses.dataclass(frozen=True)
class Metric:
    compute: Callable  # (EvalContext) -> {column key: float}
    columns: tuple[Column, ...]
    needs: str = "samples"
    description: str = ""
    # computed again on each other --extractors extractor's features (ctx.sample_features and
    # ctx.reference are then that extractor's), its columns suffixed (bench.metrics.extractors)
    per_extractor: bool = False

    def __post_init__(self):
        object.__setattr__(self, "columns", tuple(self.columns))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)


def check_metric(obj) -> None:
    """Raise ValueError unless ``obj`` is a usable Metric."""
    if not isinstance(obj, Metric):
        raise ValueError(f"{obj!r} is not a bench.Metric")
    if not callable(obj.compute):
        raise ValueError(f"its compute {obj.compute!r} is not callable")
    if not obj.columns or not all(isinstance(c, Column) for c in obj.columns):
        raise ValueError("it must declare at least one bench.Column")
    if len(set(obj.keys)) != len(obj.keys):
        raise ValueError(f"it declares a column twice: {', '.join(obj.keys)}")
    if obj.needs not in NEEDS:
        raise ValueError(f"needs is {obj.needs!r}; it must be one of {NEEDS}")
