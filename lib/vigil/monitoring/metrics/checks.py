"""What a record must be: the value rule and the tag-key rule, and the errors that say so.

A counter increment and a histogram observation must be a finite number >= 0 (OpenMetrics
forbids a NaN or negative ``_sum``, and ``+Inf`` would pin the sum there for good); gauges take
any number. One name keeps one set of tag keys. Each error is a ``ValueError`` naming the
metric and what it got, in :mod:`vigil.text`'s rule (an unprintable value still makes a
message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from vigil.text import safe_text

__all__ = ["check_non_negative", "checked_tags", "tag_mismatch"]

_INF = math.inf


def check_non_negative(kind: str, noun: str, name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0: "``kind`` 'name': ``noun``
    must be a finite number >= 0, got ..." (``"counter", "increment"``)."""
    try:
        ok = 0 <= value < _INF  # NaN fails both comparisons
    except Exception:  # not a number at all (or a Decimal NaN, which raises)
        ok = False
    if not ok:
        raise ValueError(f"{kind} {safe_text(name)!r}: {noun} must be a finite number >= 0, "
                         f"got {_shown(value)}")


def checked_tags(name: str, keys: tuple[str, ...], tags: Mapping[str, object] | None
                 ) -> Mapping[str, object] | None:
    """``tags`` for a record of series ``name`` first recorded with tag keys ``keys``, or
    ``ValueError``. Keys that are not plain text (a lone surrogate, an int) match as their
    text."""
    if not keys:
        if tags:
            raise ValueError(tag_mismatch(name, keys, tags))
        return tags
    if _has_keys(tags, keys):
        return tags
    as_text = {safe_text(k): v for k, v in tags.items()} if tags else tags
    if _has_keys(as_text, keys):
        return as_text
    raise ValueError(tag_mismatch(name, keys, tags))


def _has_keys(tags: Mapping[str, object] | None, keys: tuple[str, ...]) -> bool:
    return tags is not None and len(tags) == len(keys) and all(k in tags for k in keys)


def tag_mismatch(name: str, keys: tuple[str, ...], tags: Mapping[str, object] | None) -> str:
    """The message for a record of ``name`` whose tag keys are not ``keys``."""
    got = sorted(safe_text(k) for k in tags) if tags else []
    return (f"metric {name!r} was first recorded with tag keys {list(keys)}; got {got} "
            f"(one name keeps one set of tag keys)")


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, even when that repr raises."""
    try:
        return safe_text(repr(value))
    except Exception:
        return safe_text(value)
