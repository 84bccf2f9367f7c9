"""Registries of models, backbones, datasets, metrics and trackers; every registration is validated here.

A bad registration (duplicate name, invalid name, a class that does not honour
the variant contract, a metric column another metric already declares) raises
``ValueError`` naming the plugin and the problem.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

from bench.store.rows import EVALUATION, IDENTITY, PROGRESS
from bench.variant import FAMILIES, Variant

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    plugin: str  # the plugin's name (module, entry point or file)
    source: str  # "built-in", "package <dist>" or "file <path>"
    version: str | None = None  # of the package that registered it (None for a local file)


def check_variant_class(obj: Any) -> None:
    """Raise ValueError unless ``obj`` is a concrete Variant subclass with a usable Config."""
    if not (inspect.isclass(obj) and issubclass(obj, Variant)):
        raise ValueError(f"{obj!r} is not a subclass of bench.Variant")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise ValueError(f"{obj.__name__} does not implement {missing}")
    if obj.family not in FAMILIES:
        raise ValueError(f"{obj.__name__}.family is {obj.family!r}; it must be one of {FAMILIES}")
    if not dataclasses.is_dataclass(obj.Config):
        raise ValueError(f"{obj.__name__}.Config must be a dataclass")
    try:
        obj.Config()
    except TypeError as exc:
        raise ValueError(f"{obj.__name__}.Config needs a default for every field ({exc})") from None


def check_dataset_loader(obj: Any) -> None:
    if not callable(obj):
        raise ValueError(f"dataset loader {obj!r} is not callable")


RESERVED_COLUMNS = frozenset(IDENTITY + EVALUATION + PROGRESS)


def check_metric_columns(obj: Any, existing: dict[str, Entry]) -> None:
    """A metric's columns must be its own: not another metric's, not a row's own columns."""
    for column in obj.columns:
        if column.key in RESERVED_COLUMNS:
            raise ValueError(f"column {column.key!r} is one of the row's own columns; rename it")
        for entry in existing.values():
            if column.key in entry.obj.keys:
                raise ValueError(f"column {column.key!r} is already declared by metric {entry.name!r} "
                                 f"(plugin {entry.plugin!r})")


class RegistrationError(ValueError):
    """A registration refused; ``kind`` is the registry's (``model``, ``backbone``, ...)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class Registry:
    """Name -> Entry for one kind of thing (``model``, ``backbone``, ``dataset``, ``metric`` or ``tracker``).

    ``check(obj)`` validates one object; ``check_against(obj, entries)`` (optional) validates it
    against the entries registered before it.
    """

    def __init__(self, kind: str, check: Callable[[Any], None],
                 check_against: Callable[[Any, dict], None] | None = None):
        self.kind = kind
        self._check = check
        self._check_against = check_against
        self._entries: dict[str, Entry] = {}

    def prepare(self, items, *, plugin: str, source: str, version: str | None = None) -> dict[str, Entry]:
        """Validate ``(name, obj)`` pairs against this registry without changing it."""
        staged = dict(self._entries)
        for name, obj in items:
            staged[name] = self._validated(name, obj, staged, plugin, source, version)
        return staged

    def commit(self, staged: dict[str, Entry]) -> None:
        self._entries = staged

    def _validated(self, name, obj, existing, plugin, source, version=None) -> Entry:
        problem = None
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problem = (
                f"invalid {self.kind} name {name!r}: use lower-case letters, digits, '-' or '_', "
                "starting with a letter"
            )
        elif name in existing:
            other = existing[name]
            problem = (
                f"duplicate {self.kind} name {name!r}, "
                f"already registered by plugin {other.plugin!r} ({other.source})"
            )
        else:
            try:
                self._check(obj)
                if self._check_against is not None:
                    self._check_against(obj, existing)
            except ValueError as exc:
                problem = f"{self.kind} {name!r}: {exc}"
        if problem:
            raise RegistrationError(f"plugin {plugin!r}: {problem}", self.kind)
        return Entry(name, obj, plugin, source, version)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known} (see `bench list`)") from None
