"""A variant's config from plain values: ``--set MODEL.FIELD=VALUE`` text, or a manifest's JSON
values, converted to each field's annotated type, over the defaults of the preset and the
backbone the config names. Standard library only: the command line checks ``--set`` before torch is imported.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any


def config_from_dict(variant_cls, values: dict[str, Any] | None):
    """Build a variant's Config from plain values (``--set`` strings, or the JSON values of a
    manifest), each converted to its field's type, over the preset and backbone defaults they
    name (``with_defaults``); an unknown field or a value that is not of its field's
    type raises ValueError naming the field, its type and the value."""
    values = dict(values or {})
    config_cls = variant_cls.Config
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if "backbone" in unknown:
        raise ValueError(f"{variant_cls.__name__} takes no backbone: its Config has no backbone field, "
                         "so it builds its own networks; leave it out of --backbone runs or give its "
                         "Config bench.BackboneConfig's fields")
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {variant_cls.__name__}; "
            f"it accepts: {', '.join(sorted(fields)) or 'none'}"
        )
    hints = typing.get_type_hints(config_cls)
    converted = {name: convert_value(name, hints.get(name, Any), value) for name, value in values.items()}
    return config_cls(**with_defaults(variant_cls, converted))


def with_defaults(variant_cls, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over the fields of the preset they name (``Variant.presets``, for a Config with a
    ``preset`` field), over the defaults the variant declares for the backbone they name
    (``Variant.backbone_defaults``); either name falls back to its field's default."""
    fields = {f.name: f for f in dataclasses.fields(variant_cls.Config)}
    chosen = lambda name: values.get(name, fields[name].default)  # noqa: E731
    layers: dict[str, Any] = {}
    if "backbone" in fields:
        layers.update(getattr(variant_cls, "backbone_defaults", {}).get(chosen("backbone"), {}))
    if "preset" in fields:
        layers.update(getattr(variant_cls, "presets", {}).get(chosen("preset"), {}))
    return {**layers, **values}


def resolved_config(variant_cls, values: dict[str, Any] | None) -> dict[str, Any]:
    """Every field of the variant's Config, defaults and overrides, as plain values."""
    return dataclasses.asdict(config_from_dict(variant_cls, values))


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def type_text(kind) -> str:
    """How a field's type is named in an error: ``a float``, ``one of 'a', 'b'``..."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    if kind is type(None):
        return "none"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if kind in names:
        return names[kind]
    return getattr(kind, "__name__", str(kind))


class OptionValueError(ValueError):
    """A config value that is not of its field's type; the message starts with ``field=value``."""


def convert_value(field: str, kind, value):
    """``value`` as the type ``kind`` of ``field``: strings are parsed, numbers widened (int to
    float); anything else raises ValueError saying what the field takes."""
    converted = _convert(kind, value)
    if converted is _INVALID:
        raise OptionValueError(f"{field}={value}: {field} takes {type_text(kind)}, and {value!r} is not that")
    return converted


_INVALID = object()


def _convert(kind, value):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str)
                                                     and value.strip().lower() in ("none", "null"))):
            return None
        for arg in args:
            if arg is not type(None) and (out := _convert(arg, value)) is not _INVALID:
                return out
        return _INVALID
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        return _INVALID
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        return _INVALID
    if kind is int:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    if kind is float:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                return _INVALID
            return out
        return _INVALID
    if kind is str:
        return value if isinstance(value, str) else _INVALID
    if origin in (tuple, list):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return _INVALID
        if not isinstance(value, (list, tuple)):
            return _INVALID
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return _INVALID
            items = [_convert(a, v) for a, v in zip(args, value, strict=True)]
        else:
            items = [_convert(args[0] if args else Any, v) for v in value]
        return _INVALID if any(i is _INVALID for i in items) else origin(items)
    return value  # a type bench does not know: taken as given
