"""Column declarations: what a metrics-row column means (label, better direction, unit).

They are written into each run's manifest, so a report knows every column of every run,
a third-party metric's included, without importing any plugin (or torch).
"""

from __future__ import annotations

import dataclasses
import re

BETTER = ("lower", "higher", None)
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Column:
    key: str  # the column in metrics rows
    label: str  # what tables and plots call it
    better: str | None = None  # "lower" | "higher" | None (neither)
    unit: str = ""  # of the shown value, e.g. "%", "MiB", "images/s"
    scale: float = 1.0  # shown value = stored value * scale
    summary: bool = True  # one line of the report's summary (mean and CI across seeds)
    name: str = ""  # the summary's short name for it (default: the key)
    # the range the stored quantity can take (None: unbounded); confidence intervals stay inside it
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self):
        if not isinstance(self.key, str) or not KEY_PATTERN.match(self.key):
            raise ValueError(f"column key {self.key!r}: use lower-case letters, digits and '_', "
                             "starting with a letter")
        if self.name and not KEY_PATTERN.match(self.name):
            raise ValueError(f"column {self.key!r}: name {self.name!r} must look like a column key")
        if self.better not in BETTER:
            raise ValueError(f"column {self.key!r}: better must be 'lower', 'higher' or None, "
                             f"not {self.better!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Column:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    @property
    def short(self) -> str:
        return self.name or self.key

    @property
    def title(self) -> str:
        """The label with its unit, for a table row or an axis."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def shown_range(self) -> tuple[float | None, float | None]:
        """``minimum``/``maximum`` in the shown unit (``scale`` is positive for every column)."""
        return tuple(None if b is None else b * self.scale for b in (self.minimum, self.maximum))


# Written by every trial (not by a metric): what it cost.
TRIAL_COLUMNS = (
    Column("train_images_per_s", "training images/s", "higher", minimum=0.0),
    Column("sample_images_per_s", "sampling images/s", "higher", minimum=0.0),
    Column("mfu", "MFU", "higher", "% of the measured matrix-product peak", scale=100.0, minimum=0.0),
    Column("params_total", "parameters", None, "millions", scale=1e-6, name="params", minimum=0.0),
    Column("peak_memory_bytes", "peak memory", "lower", "MiB", scale=1 / 2**20, name="peak_memory",
           minimum=0.0),
)
