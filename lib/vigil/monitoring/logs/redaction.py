"""Redaction: secret-looking keys replaced at every depth, URL credentials masked.

:func:`redact` runs on a line's metadata before anything in it is turned into text;
:func:`mask_credentials` on every string (the message and the exception too). See the
package docstring (:mod:`vigil.monitoring.logs`) for what a line promises.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from vigil.jsonsafe import MAX_DEPTH, TOO_DEEP
from vigil.text import safe_text

__all__ = ["REDACTED", "mask_credentials", "redact"]

REDACTED = "[REDACTED]"
_MAX_REDACT_DEPTH = MAX_DEPTH  # deeper structures are cut (vigil.jsonsafe's one depth rule)
# scheme://userinfo@ : the userinfo runs to the last "@" before the authority ends (a "/", "?",
# "#" or a space), so a password holding a raw "@" is masked whole.
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
_MASKED_CREDENTIALS = r"\1" + REDACTED + "@"


def _is_secret(key: object, needles: tuple[str, ...]) -> bool:
    lowered = safe_text(key).lower()
    return any(needle in lowered for needle in needles)


def mask_credentials(text: str) -> str:
    """``text`` with the ``user:password`` of every ``scheme://user:password@host`` masked.

    The whole userinfo becomes ``[REDACTED]`` (a token alone before the ``@``, as in
    ``https://TOKEN@github.com``, is a credential too).
    """
    if "@" not in text or "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(_MASKED_CREDENTIALS, text)


# Whether a str key is secret, per tuple of needles: metadata keys come from a small set, and
# the substring scan is most of the cost of redaction. Bounded: cleared when it fills up.
_SECRET_MEMO_SIZE = 4096
_secret_memos: dict[tuple[str, ...], dict[str, bool]] = {}
# Values kept as they are without a recursive call (bool is an int; None is a singleton).
_ATOMS = frozenset({str, int, float, bool, type(None)})


def _secret_memo(needles: tuple[str, ...]) -> dict[str, bool]:
    memo = _secret_memos.get(needles)
    if memo is None:
        if len(_secret_memos) >= 64:  # only a reconfiguration makes a new tuple of needles
            _secret_memos.clear()
        memo = _secret_memos.setdefault(needles, {})
    return memo


def redact(value: Any, keys: Iterable[str], _depth: int = 0) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced by ``[REDACTED]``.

    A key is secret when it contains one of ``keys`` (case-insensitive): ``db_password`` and
    ``X-Api-Key`` both match. Dicts nested in dicts, lists, tuples and sets are redacted too
    (sets and tuples become lists), and so are dataclass instances and NamedTuples (as dicts of
    their fields: the JSON encoder would otherwise write their fields unredacted). Every string
    value (``value`` itself too) has URL credentials masked (``scheme://[REDACTED]@host``, see
    :func:`mask_credentials`). Keys that are not strings, ints, floats, bools or None become
    their text (:func:`vigil.text.safe_text`). Past 32 levels a subtree is replaced by
    ``"[TOO DEEP]"``: nothing is ever turned into a string before it is redacted. Other objects
    are kept as they are and written as their ``str()``: do not put secrets in them. The
    caller's objects are never modified.
    """
    return _redact(value, _lowered(keys), _depth)


def _redact(value: Any, needles: tuple[str, ...], depth: int) -> Any:
    """:func:`redact` with its needles already lowered (every recursive call comes here)."""
    if depth > _MAX_REDACT_DEPTH:
        return TOO_DEEP
    if type(value) is dict:  # a plain dict, the usual metadata, skips the checks of the rest
        return _redact_mapping(value, needles, depth)
    return _redact_other(value, needles, depth)


# The last tuple of needles lowered and its lower-case form: the formatter passes the same
# tuple object on every line, so an identity test answers (one pair, swapped atomically).
_last_lowered: tuple[object, tuple[str, ...]] = ((), ())


def _lowered(keys: Iterable[str]) -> tuple[str, ...]:
    """``keys`` lower-cased, as a tuple (the last tuple's answer remembered; holding it keeps
    its identity from being reused)."""
    global _last_lowered
    given, lowered = _last_lowered
    if keys is given:
        return lowered
    lowered = tuple(safe_text(k).lower() for k in keys)
    if isinstance(keys, tuple):
        _last_lowered = (keys, lowered)
    return lowered


def _redact_other(value: Any, needles: tuple[str, ...], depth: int) -> Any:
    """Whatever is not a plain dict: a string masked (a str subclass, such as a StrEnum
    member, too), a record or mapping redacted as a dict, a collection as a list; anything
    else as it is."""
    if isinstance(value, str):
        return mask_credentials(value)
    value = _fields_of_record(value)
    if isinstance(value, Mapping):
        return _redact_mapping(value, needles, depth)
    if isinstance(value, list | tuple | set | frozenset | deque):
        return [_redact(v, needles, depth + 1) for v in value]
    return value


def _fields_of_record(value: Any) -> Any:
    """A dataclass instance or a NamedTuple as the dict of its fields; anything else as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return value._asdict()
    return value


def _redact_mapping(value: Mapping[Any, Any], needles: tuple[str, ...], depth: int
                    ) -> dict[Any, Any]:
    """The mapping's items with secret values replaced and the rest redacted in turn.

    The per-item work stays inline (a call per item is most of a small dict's cost): a str
    key is judged once per tuple of needles (:func:`_secret_memo`), a scalar value copied
    without a recursive call unless one level down is already past the depth cut.
    """
    memo = _secret_memo(needles)
    atoms = _ATOMS if depth < _MAX_REDACT_DEPTH else frozenset()
    out = {}
    for k, v in value.items():
        if type(k) is str:
            secret = memo.get(k)
            if secret is None:
                secret = _judge(k, needles, memo)
        else:
            k, secret = _json_key(k, needles)
        if secret:
            out[k] = REDACTED
        elif type(v) in atoms:
            out[k] = mask_credentials(v) if type(v) is str and "@" in v else v
        else:
            out[k] = _redact(v, needles, depth + 1)
    return out


def _judge(key: str, needles: tuple[str, ...], memo: dict[str, bool]) -> bool:
    """Whether ``key`` is secret, remembered in ``memo`` (emptied when it fills up)."""
    secret = _is_secret(key, needles)
    if len(memo) >= _SECRET_MEMO_SIZE:
        memo.clear()
    memo[key] = secret
    return secret


def _json_key(key: object, needles: tuple[str, ...]) -> tuple[Any, bool]:
    """A key that is not a str, as JSON can hold it (its text unless a number, a bool or
    None: a tuple or bytes key would fail the whole line), and whether it is secret."""
    if not (isinstance(key, int | float | bool) or key is None):
        key = safe_text(key)
    return key, _is_secret(key, needles)
