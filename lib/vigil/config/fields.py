"""Declaring a setting and enforcing the declaration: :func:`setting` makes a dataclass field
carrying its constraint and its README line; :class:`Settings`, the base of every settings
dataclass, coerces and validates each field when the dataclass is built."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import field
from typing import Any

from vigil import validate
from vigil.config.errors import ConfigError
from vigil.config.kinds import check_type

__all__ = ["Settings", "is_section", "positive", "setting", "validate_fields"]


def setting(default: Any, *, doc: str, minimum: float | None = None, exclusive: bool = False,
            choices: tuple[str, ...] | None = None, secret: bool = False) -> Any:
    """A dataclass field with its constraint and its one-line description (for the README).

    ``secret``: the value is never shown (errors, repr) and may come from a ``_FILE`` variable.
    """
    meta = {"doc": doc, "minimum": minimum, "exclusive": exclusive, "choices": choices,
            "secret": secret}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


def positive(default: Any, doc: str) -> Any:
    """A number setting that must be > 0."""
    return setting(default, doc=doc, minimum=0, exclusive=True)


def is_section(expected: Any) -> bool:
    """Whether a declared type is a section (a settings dataclass) rather than a setting."""
    return isinstance(expected, type) and dataclasses.is_dataclass(expected)


def _check_leaf(name: str, value: Any, expected: Any, meta: typing.Mapping[str, Any]) -> None:
    """One setting against its declared type, bounds and choices."""
    secret = bool(meta.get("secret"))
    check_type(name, value, expected, secret=secret)
    minimum = meta.get("minimum")
    # Numbers are never secrets: their bounds are vigil.validate's (NaN and the infinities
    # are no setting).
    if expected is float:
        validate.number(name, value, minimum=minimum, exclusive=bool(meta.get("exclusive")))
    elif expected is int and minimum is not None:
        validate.integer(name, value, minimum=minimum)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(name, value, f"must be one of {', '.join(choices)}", secret=secret)


def validate_fields(obj: Any) -> None:
    """Check every field of a settings dataclass against its declared type and constraint."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        expected = hints[f.name]
        if not is_section(expected):
            _check_leaf(f.name, value, expected, f.metadata)
        elif not isinstance(value, expected):  # a whole section: it may hold secrets
            raise ConfigError(f.name, value, f"expected a mapping of {expected.__name__}",
                              secret=True)


class Settings:
    """Base for the settings dataclasses: validation on construction, float coercion."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            # YAML writes 60 for 60.0: accept an int where a float is declared, store a float.
            if hints[f.name] is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        validate_fields(self)
