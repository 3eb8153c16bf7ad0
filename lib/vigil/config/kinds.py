"""The value types a setting may declare (bool, int, float, str, a list of strings), in one
table: how a value from a file or a constructor is checked, how an environment variable's text
is parsed, and the noun both errors use ("expected an integer", "VIGIL_X must be an integer").
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.config.errors import ConfigError

__all__ = ["BOOL_WORDS", "Kind", "check_type", "kind_of", "parse_text"]

# The spellings of true and false a boolean variable takes (and include_pid), any case.
BOOL_WORDS = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false",
              "off": "false"}


def _parse_bool(text: str) -> bool:
    word = text.lower()
    word = BOOL_WORDS.get(word, word)
    if word not in ("true", "false"):
        raise ValueError(text)
    return word == "true"


def _parse_strings(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around and between the commas are dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is no setting's 1


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_strings(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class Kind:
    """One declarable type: ``accepts`` a Python value, ``parse`` text (``ValueError`` if it
    cannot), ``noun`` what both errors say is expected."""

    accepts: Callable[[object], bool]
    parse: Callable[[str], object]
    noun: str


_KINDS: dict[object, Kind] = {
    bool: Kind(lambda value: isinstance(value, bool), _parse_bool, "true or false"),
    int: Kind(_is_int, int, "an integer"),
    float: Kind(_is_number, float, "a number"),
    str: Kind(lambda value: isinstance(value, str), str, "a string"),
    tuple: Kind(_is_strings, _parse_strings, "a list of strings"),
}


def kind_of(expected: Any) -> Kind:
    """The :class:`Kind` of a declared type (``tuple[str, ...]`` is the list of strings)."""
    kind = _KINDS.get(tuple if typing.get_origin(expected) is tuple else expected)
    if kind is None:  # pragma: no cover - a settings class declared a type this table lacks
        raise TypeError(f"unsupported settings type {expected!r}")
    return kind


def check_type(key: str, value: Any, expected: Any, *, secret: bool = False) -> None:
    """A :class:`ConfigError` on ``key`` unless ``value`` is of the declared type."""
    kind = kind_of(expected)
    if not kind.accepts(value):
        raise ConfigError(key, value, f"expected {kind.noun}", secret=secret)


def parse_text(name: str, key: str, raw: str, expected: Any) -> Any:
    """Variable ``name``'s text ``raw`` as a value of setting ``key``'s declared type."""
    kind = kind_of(expected)
    try:
        return kind.parse(raw.strip())
    except ValueError:
        raise ConfigError(key, raw, f"{name} must be {kind.noun}") from None
