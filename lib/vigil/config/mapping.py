"""Settings dataclasses to and from nested mappings in the file's shape: build one from a
mapping (naming the full key path in any error), turn one back into a mapping, merge two
mappings, and list every leaf setting with its dotted path."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any

from vigil.config.errors import ConfigError
from vigil.config.fields import is_section

__all__ = ["build", "join_key", "leaves", "merge", "to_mapping"]


def join_key(path: str, key: object) -> str:
    """``key`` under the dotted ``path`` (``""``: the root)."""
    return f"{path}.{key}" if path else str(key)


def _unknown_key(path: str, key: object, value: object, names: list[str]) -> ConfigError:
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    hint = f"did you mean {join_key(path, close[0])!r}?" if close else ""
    # Not shown: an unknown key may be a misspelt secret.
    return ConfigError(join_key(path, key), value, f"unknown key; known: {', '.join(names)}",
                       hint=hint, secret=True)


def build(cls: type[Any], data: Mapping[str, Any], path: str = "") -> Any:
    """Build settings class ``cls`` from ``data``, naming the full key path in any error."""
    if not isinstance(data, Mapping):  # a whole section: it may hold secrets
        raise ConfigError(path or "<root>", data, f"expected a mapping of {cls.__name__}",
                          secret=True)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(path, key, value, names)
        expected = hints[key]
        kwargs[key] = build(expected, value, join_key(path, key)) if is_section(expected) \
            else value
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise (err.under(path) if path else err) from None


def to_mapping(obj: Any) -> dict[str, Any]:
    """Settings ``obj`` as nested dicts in the file's shape."""
    return {f.name: (to_mapping(v) if dataclasses.is_dataclass(v := getattr(obj, f.name))
                     else v) for f in dataclasses.fields(obj)}


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on it, section by section."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def leaves(cls: type[Any], path: str = "") -> list[tuple[str, dataclasses.Field[Any], Any]]:
    """Every settings leaf as (dotted path, field, declared type)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = join_key(path, f.name)
        if is_section(hints[f.name]):
            out.extend(leaves(hints[f.name], key))
        else:
            out.append((key, f, hints[f.name]))
    return out
