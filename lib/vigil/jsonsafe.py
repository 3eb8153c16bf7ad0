"""The one rule for values vigil writes as JSON: strict JSON always, never raising.

Metadata comes from user code: NaN from a division, a 10**5000 counter, a dataclass, a set, a
dict keyed by tuples, a structure that contains itself, an object whose ``__str__`` raises. Log
lines, alerts and the exporter's answers must still be valid, strict JSON (``allow_nan=False``,
UTF-8), so every path applies this rule:

* strings follow :mod:`vigil.text` (lone surrogates become U+FFFD);
* ``NaN``, ``Infinity`` and ``-Infinity`` become those words as strings (what Go and
  JavaScript print; ``null`` would lose that there was a value);
* an int past ``str()``'s digit limit becomes ``"<integer of N bits>"``;
* dataclass instances and NamedTuples become dicts of their fields; lists, tuples, sets and
  deques become lists; mapping keys become text;
* past :data:`MAX_DEPTH` levels of nesting a subtree becomes :data:`TOO_DEEP` (which also ends
  reference cycles); anything else becomes its text (``<unprintable T>`` if that raises).

:data:`MAX_DEPTH` counts from where user data enters (a log call's or an alert's ``metadata``,
a span's metadata). The exporter's answers nest vigil's own structures (a trace tree of up to
100 levels) around such data, so its safety net over a whole answer passes a larger
``max_depth``; the data inside was cut at :data:`MAX_DEPTH` where it entered.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from vigil.text import safe_text

__all__ = ["MAX_DEPTH", "TOO_DEEP", "json_number", "json_safe"]

MAX_DEPTH = 32
TOO_DEEP = "[TOO DEEP]"

# Ints longer than this many bits are past Python's default str() limit (4300 digits).
_INT_LIMIT = 1 << 14_000
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_number(value: float | int) -> Any:
    """``value`` as strict JSON writes it: itself, or the text of a non-finite float or of an
    int too long for ``str()``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if value != value else _NON_FINITE[value]
    if -_INT_LIMIT < value < _INT_LIMIT:
        return value
    return f"<integer of {int(value).bit_length()} bits>"


def json_safe(value: Any, *, max_depth: int = MAX_DEPTH, _depth: int = 0) -> Any:
    """A copy of ``value`` that ``json.dumps(allow_nan=False)`` accepts and UTF-8 encodes, by
    the module's rule; never raises, never modifies ``value``."""
    try:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return safe_text(value)
        if isinstance(value, int | float):
            number = json_number(value)
            # an int or float subclass (IntEnum, numpy scalars) is written as the plain number
            return int(number) if isinstance(number, int) else \
                float(number) if isinstance(number, float) else number
        if _depth >= max_depth:
            return TOO_DEEP
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        elif isinstance(value, tuple) and hasattr(value, "_asdict"):
            value = value._asdict()
        if isinstance(value, Mapping):
            return {safe_text(k): json_safe(v, max_depth=max_depth, _depth=_depth + 1)
                    for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset | deque):
            return [json_safe(v, max_depth=max_depth, _depth=_depth + 1) for v in value]
        return safe_text(value)
    # A broken mapping or iterator, or a property that raises, must not fail the caller.
    except Exception:
        return safe_text(f"<unprintable {type(value).__name__}>")
