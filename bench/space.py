"""Search spaces: what a variant declares worth searching, and the draws of ``bench sweep``.

Model data, so it sits low (standard library only; Optuna is imported when a draw is made) and
plugins import its names from ``bench`` itself (``from bench import LUCIC_SHARED, LogUniform``).

Search spaces for the equal-budget study (Lucic et al. 2018, "Are GANs Created Equal? A
Large-Scale Study", arXiv:1711.10337): random search, the same number of draws per variant.

A variant declares what is worth searching as a class attribute mapping fields of its Config
to distributions; the fields it leaves out stay at their defaults::

    class GAN(Variant):
        Config = GANConfig
        search_space: ClassVar[dict[str, Distribution]] = {
            "lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0)}

Every distribution has a text form, written by ``text()`` and read by ``parse_distribution``
(``--space-override gan.lr=loguniform(1e-4,1e-3)``): ``loguniform(1e-05,0.01)``,
``uniform(0,1)``, ``int(1,5)``, ``int(1,64,log)``, ``choice(nonsaturating,hinge)``.

``sample_settings`` draws a sweep's settings with Optuna's RandomSampler. Optuna stays inside
this module (imported when a draw is made): callers get plain dicts of field -> value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import types
import typing
from typing import Any

ACCEPTED = ("loguniform(LOW,HIGH), uniform(LOW,HIGH), int(LOW,HIGH), int(LOW,HIGH,log) "
            "or choice(A,B,...)")


class Distribution:
    """Base of the distributions below: ``text()`` (the form ``parse_distribution`` reads) and
    ``suggest(trial, name)`` (one draw through an Optuna trial)."""

    def text(self) -> str:
        raise NotImplementedError

    def suggest(self, trial, name: str):
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text()


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} bounds must be finite numbers, got {value!r}")
    return float(value)


def _num_text(value: float) -> str:
    # repr is the shortest text that reads back as the same float; whole numbers print as
    # integers (uniform(0,1), not uniform(0.0,1.0)).
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclasses.dataclass(frozen=True)
class LogUniform(Distribution):
    """Log-uniform on [low, high]: each factor of ten equally likely (learning rates, weights)."""

    low: float
    high: float

    def __post_init__(self):
        low, high = _real("loguniform", self.low), _real("loguniform", self.high)
        if not 0 < low < high:
            raise ValueError(f"loguniform needs 0 < low < high, got low={low!r}, high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def text(self) -> str:
        return f"loguniform({_num_text(self.low)},{_num_text(self.high)})"

    def suggest(self, trial, name: str) -> float:
        return float(trial.suggest_float(name, self.low, self.high, log=True))


@dataclasses.dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on [low, high)."""

    low: float
    high: float

    def __post_init__(self):
        low, high = _real("uniform", self.low), _real("uniform", self.high)
        if not low < high:
            raise ValueError(f"uniform needs low < high, got low={low!r}, high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def text(self) -> str:
        return f"uniform({_num_text(self.low)},{_num_text(self.high)})"

    def suggest(self, trial, name: str) -> float:
        return float(trial.suggest_float(name, self.low, self.high))


@dataclasses.dataclass(frozen=True)
class IntUniform(Distribution):
    """A whole number in [low, high], both ends included; ``log=True`` draws it log-uniformly
    (each doubling equally likely, e.g. widths)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self):
        for value in (self.low, self.high):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"int bounds must be whole numbers, got {value!r}")
        if not self.low < self.high:
            raise ValueError(f"int needs low < high, got low={self.low}, high={self.high} "
                             f"(for one value use choice({self.low}))")
        if self.log and self.low < 1:
            raise ValueError(f"int(...,log) needs low >= 1, got low={self.low}")
        object.__setattr__(self, "log", bool(self.log))

    def text(self) -> str:
        return f"int({self.low},{self.high}{',log' if self.log else ''})"

    def suggest(self, trial, name: str) -> int:
        return int(trial.suggest_int(name, self.low, self.high, log=self.log))


_SCALARS = (str, bool, int, float, type(None))  # what Optuna's suggest_categorical takes
_INVALID = object()


@dataclasses.dataclass(frozen=True)
class Categorical(Distribution):
    """One of ``choices``, each equally likely."""

    choices: tuple

    def __post_init__(self):
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, (tuple, list)):
            raise ValueError(f"choice needs a tuple of values, got {self.choices!r}")
        choices = tuple(self.choices)
        if not choices:
            raise ValueError("choice needs at least one value")
        for value in choices:
            if not isinstance(value, _SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
                raise ValueError(f"choice values must be strings, booleans or finite numbers, got {value!r}")
        if len(set(map(_key, choices))) < len(choices):
            raise ValueError(f"choice lists a value twice: {choices!r}")
        object.__setattr__(self, "choices", choices)

    def text(self) -> str:
        return "choice(" + ",".join(_choice_text(v) for v in self.choices) + ")"

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, self.choices)


def _key(value):
    # True == 1 == 1.0 in Python; as choices they are different values.
    return (type(value).__name__, value)


def _choice_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # a float keeps its point (1.0), so it reads back as a float
    if _parse_choice(value, quoted=False) == value and value and not set(value) & set(",()'\" \t\n"):
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"


# -- parsing -------------------------------------------------------------------------------------


def _parse_error(text: str, problem: str) -> ValueError:
    return ValueError(f"cannot read {text!r} as a distribution: {problem}; use {ACCEPTED}")


def _split_args(inner: str, text: str) -> list[tuple[str, bool]]:
    """The comma-separated arguments, stripped, each with whether it was quoted."""
    if not inner.strip():
        return []
    args, current, quote, quoted = [], [], None, False
    for char in inner:
        if quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "'\"":
            if "".join(current).strip():
                raise _parse_error(text, "a quote in the middle of a value")
            current, quote, quoted = [], char, True
        elif char == ",":
            args.append(("".join(current) if quoted else "".join(current).strip(), quoted))
            current, quoted = [], False
        elif quoted and not char.isspace():
            raise _parse_error(text, "text after a closing quote")
        elif not quoted:
            current.append(char)
    if quote:
        raise _parse_error(text, "an unclosed quote")
    args.append(("".join(current) if quoted else "".join(current).strip(), quoted))
    for arg, was_quoted in args:
        if not arg and not was_quoted:
            raise _parse_error(text, "an empty value")
    return args


def _number(token: str, text: str) -> float:
    # float() also reads 'inf' and 'nan'; a bound must be a finite number with digits.
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not any(c.isdigit() for c in token) or not math.isfinite(value):
        raise _parse_error(text, f"{token!r} is not a finite number")
    return value


def _parse_choice(token: str, quoted: bool):
    """A choice: quoted text stays a string; true/false are booleans; numbers are numbers."""
    if quoted:
        return token
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if any(c.isdigit() for c in token):
        try:
            return int(token)
        except ValueError:
            pass
        try:
            value = float(token)
        except ValueError:
            return token
        return value if math.isfinite(value) else token
    return token


def parse_distribution(text: str) -> Distribution:
    """Read ``loguniform(LOW,HIGH)``, ``uniform(LOW,HIGH)``, ``int(LOW,HIGH)``,
    ``int(LOW,HIGH,log)`` or ``choice(A,B,...)`` (spaces allowed; numbers in any float syntax;
    choices as bare words, numbers (read as numbers), true/false (booleans) or quoted text
    (kept as text)); anything else raises a one-line ValueError naming the accepted forms."""
    if not isinstance(text, str):
        raise ValueError(f"a distribution is text such as {ACCEPTED}, got {text!r}")
    body = text.strip()
    name, paren, rest = body.partition("(")
    name = name.strip().lower()
    if not paren or not rest.endswith(")") or not name:
        raise _parse_error(text, "expected NAME(...)")
    args = _split_args(rest[:-1], text)
    if name == "choice":
        if not args:
            raise _parse_error(text, "choice needs at least one value")
        values = tuple(_parse_choice(arg, quoted) for arg, quoted in args)
        return _build(text, Categorical, values)
    if any(quoted for _, quoted in args):
        raise _parse_error(text, f"{name} takes numbers, not quoted text")
    tokens = [arg for arg, _ in args]
    if name in ("loguniform", "uniform"):
        if len(tokens) != 2:
            raise _parse_error(text, f"{name} takes two numbers, LOW and HIGH")
        cls = LogUniform if name == "loguniform" else Uniform
        return _build(text, cls, _number(tokens[0], text), _number(tokens[1], text))
    if name == "int":
        log = len(tokens) == 3 and tokens[2].lower() == "log"
        if len(tokens) != 2 and not log:
            raise _parse_error(text, "int takes LOW,HIGH or LOW,HIGH,log")
        bounds = [_number(t, text) for t in tokens[:2]]
        if not all(b.is_integer() for b in bounds):
            raise _parse_error(text, "int takes whole numbers")
        return _build(text, IntUniform, int(bounds[0]), int(bounds[1]), log)
    raise _parse_error(text, f"unknown distribution {name!r}")


def _build(text: str, cls, *args) -> Distribution:
    try:
        return cls(*args)
    except ValueError as exc:
        raise ValueError(f"{text.strip()!r}: {exc}") from None


# -- a variant's space -----------------------------------------------------------------------------


def _members(kind) -> tuple:
    """The types a field accepts: a Union's non-None members, or the type itself."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(kind) if a is not type(None))
    return (kind,)


def _fit(field: str, kind, dist) -> Distribution:
    """``dist`` checked against the field's type, its values as that type (choice(1, 2) on a
    float field becomes choice(1.0, 2.0)); ValueError with the problem (no prefix) otherwise."""
    # bench.variant imports torch; imported here so that parsing spaces stays light.
    from bench.variant_config import convert_value, type_text

    def convert(value):
        try:
            return convert_value(field, kind, value)
        except ValueError:
            return _INVALID

    if not isinstance(dist, Distribution):
        raise ValueError(f"{dist!r} is not a distribution (LogUniform, Uniform, IntUniform or Categorical)")
    members = _members(kind)
    takes = type_text(kind)
    if isinstance(dist, (LogUniform, Uniform)):
        if kind is Any or float in members:
            return dist
        hint = "use int(LOW,HIGH) or choice(...)" if int in members else "use choice(...)"
        raise ValueError(f"{dist.text()} draws real numbers, but {field} takes {takes}; {hint}")
    if isinstance(dist, IntUniform):
        if kind is Any or int in members:
            return dist
        hint = "use uniform/loguniform(LOW,HIGH) or choice(...)" if float in members else "use choice(...)"
        raise ValueError(f"{dist.text()} draws whole numbers, but {field} takes {takes}; {hint}")
    converted = []
    for value in dist.choices:
        out = convert(value)
        if out is _INVALID and not isinstance(value, str):
            out = convert(_choice_text(value))  # choice(1) on a Literal['1'] field, choice(0,1) on a bool
        if out is _INVALID or not isinstance(out, _SCALARS):
            raise ValueError(f"{dist.text()}: {_choice_text(value)} is not {takes}")
        converted.append(out)
    try:
        return Categorical(tuple(converted))
    except ValueError as exc:
        raise ValueError(f"{dist.text()}: as {field}'s values, {exc}") from None


def _fields(variant_cls) -> dict[str, Any]:
    config_cls = variant_cls.Config
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls)}


def _checked(variant_cls, space: dict, where: str) -> dict[str, Distribution]:
    fields = _fields(variant_cls)
    out = {}
    for field, dist in space.items():
        if field not in fields:
            raise ValueError(f"{where}: {field!r} is not a field of {variant_cls.__name__}.Config; "
                             f"it has: {', '.join(sorted(fields)) or 'none'}")
        try:
            out[field] = _fit(field, fields[field], dist)
        except ValueError as exc:
            raise ValueError(f"{where}: {field}: {exc}") from None
    return out


def space_of(variant_cls) -> dict[str, Distribution]:
    """The variant's ``search_space`` ({} when it declares none), checked against its Config:
    every key a field, every distribution's values of the field's type (an int field takes
    ``int(...)`` or a choice of integers, a Literal field a choice among its values...).
    Choices come back converted to the field's type. Raises ValueError naming the variant,
    the field and the problem."""
    space = getattr(variant_cls, "search_space", None) or {}
    where = f"{variant_cls.__name__}.search_space"
    if not isinstance(space, dict):
        raise ValueError(f"{where} must be a dict of Config field -> distribution, "
                         f"got {type(space).__name__}")
    return _checked(variant_cls, space, where)


def parse_override(text: str) -> tuple[str, str, str]:
    """``MODEL.FIELD=DISTRIBUTION`` (the ``--space-override`` form) -> (model, field, text)."""
    left, eq, value = text.partition("=")
    model, dot, field = left.strip().partition(".")
    if not eq or not dot or not model or not field.strip() or not value.strip():
        raise ValueError(f"--space-override {text!r}: expected MODEL.FIELD=DISTRIBUTION, e.g. "
                         "gan.lr=loguniform(1e-4,1e-3), or MODEL.FIELD=default to leave FIELD at its default")
    return model, field.strip(), value.strip()


def apply_overrides(space: dict[str, Distribution], overrides: dict[str, str], variant_cls) -> dict:
    """``space`` with the command line's overrides (field -> distribution text) applied: a field's
    distribution replaced (to narrow it) or added; the text ``default`` takes the field out of the
    space, so it stays at its default. Checked as ``space_of`` checks; ``space`` is not changed."""
    out = dict(space)
    name = variant_cls.__name__
    fields = _fields(variant_cls)
    for field, text in overrides.items():
        where = f"{name} space override {field}={text}"
        if field not in fields:
            raise ValueError(f"{where}: {field!r} is not a field of {name}.Config; "
                             f"it has: {', '.join(sorted(fields)) or 'none'}")
        if text.strip().lower() == "default":
            out.pop(field, None)
            continue
        try:
            dist = parse_distribution(text)
        except ValueError as exc:
            raise ValueError(f"{name} space override {field}: {exc}") from None
        out[field] = _checked(variant_cls, {field: dist}, where)[field]
    return out


# -- drawing settings ------------------------------------------------------------------------------


def _stable_int(*parts) -> int:
    # Python's hash() of a str is salted per process (PYTHONHASHSEED); sha256 is the same
    # everywhere. numpy's RandomState (under Optuna's sampler) takes seeds below 2**32.
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**32


def sampler_seed(sweep_seed: int, model: str) -> int:
    """The sampler seed for one model in a sweep: stable across processes and machines, and
    different for each model so that the variants' draws are independent."""
    return _stable_int("bench-sweep", sweep_seed, model)


def sample_settings(space: dict[str, Distribution], n: int, seed: int,
                    study_name: str = "bench-sweep") -> list[dict[str, Any]]:
    """``n`` settings (field -> python value) drawn at random from ``space``: Optuna's
    RandomSampler through ask-and-tell on an in-memory study. A pure function of its arguments:
    the same call gives the same list, and a longer list starts with the shorter one's
    settings (so a sweep can be extended). ``study_name`` enters the sampler's seed."""
    import optuna  # imported here: a second or two, and only sweeps need it

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"the number of settings must be a whole number >= 0, got {n!r}")
    fields = sorted(space)  # draw order fixed by name, not by how the dict was built
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
    try:
        sampler = optuna.samplers.RandomSampler(seed=_stable_int(seed, study_name))
        study = optuna.create_study(sampler=sampler, study_name=study_name)
        settings = []
        for _ in range(n):
            trial = study.ask()
            settings.append({field: space[field].suggest(trial, field) for field in fields})
            # Random search ignores results; tell() only closes the trial.
            study.tell(trial, 0.0)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return settings


# -- shared ranges ---------------------------------------------------------------------------------

# The wide ranges of Lucic et al.'s first phase (100 random settings per model and data set),
# as their code draws them: google/compare_gan, compare_gan/src/params.py,
# GetDefaultWideRange(), sampled by GetSample() in compare_gan/src/generate_tasks_lib.py
# (continuous ranges uniform in [a, b], or 10**U[a, b] where is_log_scale).
LUCIC_SHARED: dict[str, Distribution] = {
    # "learning_rate": log scale, exponent range [-5.0, -2.0]
    "lr": LogUniform(1e-5, 1e-2),
    # "beta1": [0.0, 1.0], uniform. The draw lies in [0, 1), which torch's Adam needs (beta < 1).
    "beta1": Uniform(0.0, 1.0),
    # Adam's beta2 is not searched: compare_gan builds tf.train.AdamOptimizer(lr, beta1=beta1)
    # (src/gans/GAN.py and the other models), so beta2 stays at TensorFlow's 0.999.
}

# Model-specific wide ranges from the same file, keyed by bench's field names.
# Discriminator steps per generator step ("disc_iters", shared by all their GANs): the range
# is [1, 5] marked is_discrete, and GetSample draws a discrete range with random.choice over
# the list itself, so the draws are 1 or 5 (not 1..5).
LUCIC_DISC_STEPS = Categorical((1, 5))
# Gradient-penalty weight lambda of WGAN-GP and DRAGAN: log scale, exponent range [-1.0, 2.0].
LUCIC_PENALTY_WEIGHT = LogUniform(0.1, 100.0)


# -- listing ---------------------------------------------------------------------------------------


def describe(space: dict[str, Distribution], variant_cls=None) -> list[str]:
    """Lines for ``bench list --search-space MODEL``: ``field  distribution  (default X)``,
    in field order, columns aligned; the default part only when ``variant_cls`` is given.
    An empty space gives no lines."""
    if not space:
        return []
    defaults = {}
    if variant_cls is not None:
        config = variant_cls.Config()
        defaults = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    names = sorted(space)
    texts = {name: space[name].text() for name in names}
    width_name = max(map(len, names))
    width_text = max(map(len, texts.values()))
    lines = []
    for name in names:
        line = f"{name:<{width_name}}  {texts[name]:<{width_text}}"
        if name in defaults:
            line += f"  (default {_default_text(defaults[name])})"
        lines.append(line.rstrip())
    return lines


def _default_text(value) -> str:
    if isinstance(value, (bool, type(None))):
        return _choice_text(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)
