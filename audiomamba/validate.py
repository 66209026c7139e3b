"""One checker for configuration values. Recipe sections (:mod:`audiomamba.recipe`), a recipe's
model overrides and :class:`audiomamba.model.config.ModelConfig` all check a value against its
field's annotation here, and all suggest a close key the same way."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from audiomamba.errors import ConfigError


def suggest(key: str, options: Iterable[str]) -> str:
    """'did you mean X? valid: …' for an unknown ``key``."""
    options = list(options)
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}valid: {', '.join(options)}"


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def fits(value: Any, tp: Any) -> bool:
    """Whether a TOML value fits a (simple) annotation: int, float, str, bool, list[X], dict, X | None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        (inner,) = typing.get_args(tp)
        return isinstance(value, list) and all(fits(v, inner) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return True


def coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """``value`` checked against ``tp`` (ints become floats where a float is expected); a one-line
    ConfigError "bad value for 'key' in where: expected T, got V" otherwise."""
    if not fits(value, tp):
        raise ConfigError(f"bad value for {key!r} in {where}: expected {type_name(tp)}, got {value!r}")
    if tp is float or typing.get_args(tp) in ((float,), (float, type(None))):
        return value if value is None else (float(value) if not isinstance(value, list) else [float(v) for v in value])
    return value
