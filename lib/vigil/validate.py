"""The one set of value checks, for settings files and constructor arguments alike.

Every check raises :class:`~vigil.config.ConfigError` naming the key (a setting's dotted path
or an argument's name), the value received and what is allowed, in one wording:

* type: ``expected an integer`` / ``expected a number``;
* NaN (and infinity where it means nothing): ``must be a finite number``;
* bounds: ``must be a number >= 1`` / ``must be a number > 0``;
* ratios: ``must be a ratio in (0, 1], e.g. 0.5 for 50%``.

``bool`` is never taken for a number (``True`` is an ``int`` to Python, never to a setting).
Each check returns the value (a ``float`` for numbers), so a constructor can validate and store
in one line.
"""

from __future__ import annotations

import math

__all__ = ["integer", "number", "ratio"]


def _error(key: str, value: object, allowed: str) -> Exception:
    from vigil.config import ConfigError  # late: vigil.config uses these checks itself

    return ConfigError(key, value, allowed)


def integer(key: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(key, value, "expected an integer")
    if minimum is not None and value < minimum:
        raise _error(key, value, f"must be a number >= {minimum}")
    return value


def number(key: str, value: object, *, minimum: float | None = None, exclusive: bool = False,
           infinite: bool = False) -> float:
    """``value`` as a ``float`` if it is a number (not a ``bool``, not NaN; infinite only with
    ``infinite``) at least ``minimum`` (above it with ``exclusive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(key, value, "expected a number")
    if math.isnan(value) or (math.isinf(value) and not infinite):
        raise _error(key, value, "must be a finite number")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise _error(key, value, f"must be a number {'>' if exclusive else '>='} {minimum:g}")
    return float(value)


def ratio(key: str, value: object) -> float:
    """``value`` as a ``float`` if it is a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise _error(key, value, "must be a ratio in (0, 1], e.g. 0.5 for 50%")
    return float(value)
