"""The log line's one trick: the C scanner ``json.dumps`` builds per call, built once.

``json.dumps(entry, cls=..., default=...)`` makes a ``JSONEncoder`` and then its C scanner
(``json.encoder.c_make_encoder``) for every line: about a third of a line's cost. A formatter
keeps the scanner's arguments (:func:`scanner_args`) and calls :data:`c_make_encoder` with a
fresh circular-reference map per line, which writes the same bytes ``encoder.encode`` would.
:func:`applies` says when that holds (the stock ``json.dumps`` serializer, no indent, an encoder
class that keeps ``JSONEncoder``'s own ``encode`` and ``iterencode``); elsewhere the formatter
takes python-json-logger's own path. ``tests/unit/monitoring/test_logs_c_scanner.py`` pins the
bytes against ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

__all__ = ["applies", "c_make_encoder", "encode", "scanner_args"]

c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
"""The C scanner constructor (``None`` where the C accelerator is missing)."""


def applies(serializer: Callable[..., str], indent: object, cls: object) -> bool:
    """Whether the scanner writes what ``serializer(entry, cls=cls, indent=indent)`` would."""
    return (c_make_encoder is not None and serializer is json.dumps and indent is None
            and isinstance(cls, type) and issubclass(cls, json.JSONEncoder)
            and cls.encode is json.JSONEncoder.encode
            and cls.iterencode is json.JSONEncoder.iterencode)


def scanner_args(encoder: json.JSONEncoder, default: Callable[[Any], Any] | None = None
                 ) -> tuple[Any, ...]:
    """What ``c_make_encoder`` takes besides the markers, for ``encoder`` (``default``
    replacing the encoder's own when given)."""
    return (default if default is not None else encoder.default,
            encode_basestring_ascii if encoder.ensure_ascii else encode_basestring,
            None, encoder.key_separator, encoder.item_separator, encoder.sort_keys,
            encoder.skipkeys, encoder.allow_nan)


def encode(args: tuple[Any, ...], value: Any) -> str:
    """``value`` as JSON through the scanner ``args`` describe (a fresh marker map per call)."""
    return "".join(c_make_encoder({}, *args)(value, 0))
