"""How the report writes values: numbers for tables, intervals, p-values, and the small
helpers that read a value out of a manifest dict or a DataFrame column without failing."""

from __future__ import annotations

import math

import pandas as pd


def fmt(value) -> str:
    """A number for a table: n/a when missing, about 4 significant digits otherwise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1_000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.4g}"


def fmt_fid(value) -> str:
    """An FID (or another quantity measured to about 0.1): one decimal, "-" when missing."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return f"{x:.1f}" if math.isfinite(x) else "-"


def fmt_interval(mean, low, high, n: int, seeds: int | None = None) -> str:
    """``41.17 [37.9, 44.4]``; says why there is no interval (no value, one seed), and how many
    seeds have the value when that is fewer than ``seeds``."""
    if n == 0:
        return "n/a"
    if n == 1:
        return f"{fmt(mean)} (CI n/a: 1 seed)"
    text = f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"
    return text + (f" (n={n})" if seeds is not None and n < seeds else "")


def fmt_p(p: float, prefix: str = "") -> str:
    """``0.012``, ``< 0.001`` (``p = 0.012``, ``p < 0.001`` with ``prefix="p"``)."""
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return f"{prefix} < 0.001".strip()
    return f"{prefix} = {p:.3f}" if prefix else f"{p:.3f}"


def show(value) -> str:
    """A setting as the report names it: ``n/a``, ``2,000``, or the text."""
    return "n/a" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def seed_text(value) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def to_int(value) -> int | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return int(x) if math.isfinite(x) else None


def is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def dig(d, *keys, default=None):
    """``d[k1][k2]...``, or ``default`` where a level is missing or not a dict (manifests of any age)."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def dig_float(d, *keys) -> float:
    try:
        x = float(dig(d, *keys))
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def first(series: pd.Series):
    """The first value that is neither None nor NaN, or None."""
    values = [v for v in series if v is not None and not is_nan(v)]
    return values[0] if values else None


def unique(series: pd.Series) -> list[str]:
    """The distinct non-empty values as text, in order of appearance."""
    return list(dict.fromkeys(str(v) for v in series.dropna() if str(v) != ""))
