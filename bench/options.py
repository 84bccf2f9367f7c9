"""Command-line options declared once, on the dataclass fields they set.

A field made with ``option(...)`` carries its flag in its metadata (name, help, choices,
minimum, envvar, a parse function...); ``click_options(cls)`` makes the click options of a
dataclass's fields and ``values(cls, kw)`` takes their parsed values back out of a command's
keyword arguments. So a flag, its default and its help sit beside the field, and the command
line lists none of them. ``RunConfig`` (``bench.config``), the executors' options and
``SweepProtocol`` are declared this way.

Torch-free: the command line builds its options from here when it is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from typing import Any

import click

MISSING = dataclasses.MISSING
UNSET = object()  # Option.flag_default not given (dataclasses.MISSING would make it required)


@dataclasses.dataclass(frozen=True)
class Option:
    """How a field is set from the command line (see ``option``)."""

    help: str | None = None  # "{default}" in it is the field's default, formatted
    flag: str | None = None  # default: --field-name
    negatable: bool = False  # a bool field: --x/--no-x (else a bare --x, off by default)
    choices: tuple | str | None = None  # or "module:attribute": a mapping whose keys are the choices
    min: float | None = None  # an IntRange / FloatRange minimum
    min_open: bool = False
    path: str | None = None  # "file", "dir" or "any": a click.Path
    envvar: str | None = None
    metavar: str | None = None
    multiple: bool = False
    parse: Callable | None = None  # flag value -> field value; a ValueError is a bad value
    flag_default: Any = UNSET  # the flag's default, where it is not the field's
    show_default: bool = True
    via: tuple[str, ...] | None = None  # no flag of its own: what sets it (the command builds it)


def option(default: Any = MISSING, *, default_factory: Any = MISSING, **declaration) -> Any:
    """A dataclass field with its flag (``Option``'s fields as keywords). A field with ``parse``
    and no default gets ``parse(flag_default)`` (``()`` when ``multiple``): its default is the
    flag's, written once."""
    opt = Option(**declaration)
    if default is MISSING and default_factory is MISSING and opt.parse is not None:
        default_factory = functools.partial(opt.parse, () if opt.multiple else opt.flag_default)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"option": opt})


def declared(cls) -> list[tuple[dataclasses.Field, Option]]:
    """The fields of ``cls`` declared with ``option``, in order, with their declarations."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def flag_of(cls, name: str) -> str:
    """The flag of field ``name`` of ``cls`` (e.g. ``--gpus-per-trial``)."""
    field = cls.__dataclass_fields__[name]
    return _flag(field, field.metadata["option"])


def _flag(field: dataclasses.Field, opt: Option) -> str:
    return opt.flag or "--" + field.name.replace("_", "-")


def _param(field: dataclasses.Field, opt: Option) -> str:
    return _flag(field, opt)[2:].replace("-", "_")


def field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not MISSING:
        return field.default_factory()
    return field.default


def click_options(cls, names: tuple[str, ...] | None = None, help: dict | None = None,
                  optional: bool = False) -> list:
    """Click option decorators for the flagged fields of ``cls`` (``names``: only these, in this
    order). ``help`` replaces a field's help text in this command. ``optional``: every flag
    defaults to None, so a value means it was given (an executor's options), and the field's
    default is only said in the help."""
    fields = {f.name: (f, opt) for f, opt in declared(cls) if opt.via is None}
    return [_click_option(*fields[name], (help or {}).get(name), optional) for name in (names or fields)]


def apply(*groups: list):
    """A decorator adding every option of ``groups`` to a command, in the order given."""

    def decorate(command):
        for decorator in reversed([d for group in groups for d in group]):
            command = decorator(command)
        return command

    return decorate


def values(cls, params: dict) -> dict:
    """The values of ``cls``'s flagged fields, by field name, among a command's parsed parameters
    (a parameter is named after its flag, as click names it: ``--set`` is ``set``)."""
    return {f.name: params[_param(f, opt)] for f, opt in declared(cls)
            if opt.via is None and _param(f, opt) in params}


def given(cls, params: dict) -> dict:
    """Of ``optional`` flags: those given (not None), in field order, by field name."""
    return {name: value for name, value in values(cls, params).items() if value is not None}


def _click_option(field: dataclasses.Field, opt: Option, help_text: str | None, optional: bool):
    flag = _flag(field, opt)
    default = field_default(field)
    text = help_text or opt.help
    if text and "{default" in text:
        text = text.format(default=default)
    kwargs = dict(help=text, envvar=opt.envvar, metavar=opt.metavar, multiple=opt.multiple,
                  show_default=opt.show_default)
    if opt.parse is not None:
        kwargs["callback"] = _callback(opt.parse)
    if optional:
        default = None
    elif opt.multiple:
        default = ()
    elif opt.flag_default is not UNSET:
        default = opt.flag_default
    base = _base_type(field)
    if base == "bool":
        decls = [f"{flag}/--no-{flag[2:]}"] if opt.negatable else [flag]
        if not opt.negatable:
            kwargs["is_flag"] = True
    else:
        decls = [flag]
        kwargs["type"] = _click_type(base, opt)
    return click.option(*decls, _param(field, opt), default=default, **kwargs)


def _base_type(field: dataclasses.Field) -> str:
    """``int``, ``float``, ``str``, ``bool``... of an annotation such as ``int | None``."""
    annotation = field.type
    if not isinstance(annotation, str):  # a module without ``from __future__ import annotations``
        annotation = getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in annotation.split("|") if p.strip() != "None"]
    return parts[0] if len(parts) == 1 else annotation


def _click_type(base: str, opt: Option):
    if opt.choices is not None:
        choices = opt.choices
        if isinstance(choices, str):  # a registry above the declaring module, read when the flag is made
            module, attribute = choices.split(":")
            choices = getattr(importlib.import_module(module), attribute)
        return click.Choice(list(choices))
    if opt.path is not None:
        return click.Path(file_okay=opt.path != "dir", dir_okay=opt.path != "file")
    if base == "int":
        return int if opt.min is None else click.IntRange(min=opt.min, min_open=opt.min_open)
    if base == "float":
        return float if opt.min is None else click.FloatRange(min=opt.min, min_open=opt.min_open)
    return None


def _callback(parse: Callable):
    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback
