"""Values made ready for a strict JSON line, and the cut of an oversize one.

What strict JSON cannot write made text (:func:`json_ready`, and :func:`safe_default` for the
encoder's ``default``), invalid text made valid (:func:`valid_tree`), the line breaks JSON
leaves raw escaped (:func:`escape_line_breaks`), a line made ASCII for a stream that needs it
(:func:`ascii_json`), and an entry cut to the size cap (:func:`cut_value`). The rules are in the
package docstring (:mod:`vigil.monitoring.logs`); all of these are pure.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from types import TracebackType
from typing import Any

from vigil.jsonsafe import MAX_DEPTH, TOO_DEEP, json_number
from vigil.monitoring.logs.exceptions import described
from vigil.text import safe_text, unprintable, valid_text

__all__ = ["ascii_json", "cut_value", "escape_line_breaks", "json_ready", "safe_default",
           "valid_tree"]

# These walks start at the entry, above its metadata, which redaction already cut at
# MAX_DEPTH: twice that is past anything redaction leaves, and still ends every walk.
_MAX_DEPTH = 2 * MAX_DEPTH

# What python-json-logger's encoder writes in its own way; anything else it writes as str().
_ENCODER_TYPES = (datetime.date, datetime.time, enum.Enum, bytes, bytearray, TracebackType, type)


def safe_default(base: Callable[[Any], Any], *, plain: bool) -> Callable[[Any], Any]:
    """The encoder's ``default`` (what JSON cannot hold), following vigil.text's rule.

    ``plain``: ``base`` is python-json-logger's own; objects it would write as ``str()`` are
    written by :func:`safe_text` instead (its ``repr()`` fallback would dodge the rule).
    """

    def default(value: Any) -> Any:
        if isinstance(value, BaseException):
            return described(value)
        if plain and not isinstance(value, _ENCODER_TYPES) \
                and not dataclasses.is_dataclass(value):
            return safe_text(value)
        try:
            return base(value)
        except Exception:
            return unprintable(value)

    return default



def json_ready(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot write made text: NaN and the infinities as
    ``"NaN"``/``"Infinity"``/``"-Infinity"``, ints too long for ``str()`` as a placeholder.
    Other objects are kept for the encoder's ``default``."""
    if isinstance(value, float | int):
        return json_number(value)
    if depth > _MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {_json_key(k): json_ready(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v, depth + 1) for v in value]
    return value


def _json_key(key: Any) -> Any:
    if isinstance(key, str) or key is None:
        return key
    if isinstance(key, float | int):
        number = json_number(key)
        return number if number is key else safe_text(number)
    return safe_text(key)


def valid_tree(value: Any, depth: int = 0) -> Any:
    """``value`` with every string in it (keys too) made valid text (:func:`valid_text`)."""
    if isinstance(value, str):
        return valid_text(value)
    if depth > _MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {valid_text(k) if isinstance(k, str) else k: valid_tree(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [valid_tree(v, depth + 1) for v in value]
    return value


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# Line breaks JSON leaves raw but str.splitlines() and JavaScript split on: escaped, as Go does.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def escape_line_breaks(line: str) -> str:
    """A JSON line with U+0085, U+2028 and U+2029 as ``\\u`` escapes (only strings hold them)."""
    return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def ascii_json(line: str) -> str:
    """A JSON line with every non-ASCII character as a ``\\uXXXX`` escape (ensure_ascii's bytes).

    Non-ASCII characters can only be inside JSON strings, and none of them needs any other
    escape, so escaping the runs of them in place is escaping them in each string.
    """
    return _NON_ASCII_RUN.sub(lambda m: encode_basestring_ascii(m.group())[1:-1], line)


_CUT_MARK = "..."
_MIN_STRING = 16  # a cut string keeps at least this many characters


def cut_value(value: Any, room: list[int], default: Callable[[Any], Any], depth: int = 0) -> Any:
    """``value`` cut to about ``room[0]`` characters of JSON (``room`` is used up as it goes).

    A string keeps at most half the room left when it is reached, so the fields after it get
    a share; containers keep their first items while there is room and say how many they
    dropped. Objects JSON cannot hold are cut as what the encoder would write for them.
    """
    if isinstance(value, str):
        limit = max(_MIN_STRING, room[0] // 2)
        if len(value) > limit:
            value = value[:limit] + _CUT_MARK
        room[0] -= len(value) + 3
        return value
    if value is None or isinstance(value, bool | int | float):
        room[0] -= 8
        return json_number(value) if isinstance(value, float | int) else value
    if depth > _MAX_DEPTH:
        room[0] -= len(TOO_DEEP)
        return TOO_DEEP
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for index, (k, v) in enumerate(value.items()):
            if room[0] <= 0:
                out[_CUT_MARK] = f"{len(value) - index} more keys"
                break
            key = cut_value(k, room, default, depth + 1) if isinstance(k, str) else _json_key(k)
            out[key] = cut_value(v, room, default, depth + 1)
        room[0] -= 2
        return out
    if isinstance(value, list | tuple):
        kept: list[Any] = []
        for index, item in enumerate(value):
            if room[0] <= 0:
                kept.append(f"[{len(value) - index} more items]")
                break
            kept.append(cut_value(item, room, default, depth + 1))
        room[0] -= 2
        return kept
    return cut_value(default(value), room, default, depth + 1)

