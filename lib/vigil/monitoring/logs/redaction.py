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
    needles = keys if isinstance(keys, tuple) else tuple(k.lower() for k in keys)
    if _depth > _MAX_REDACT_DEPTH:
        return TOO_DEEP
    if type(value) is not dict:  # a plain dict, the usual metadata, skips the checks below
        if type(value) is str:
            return mask_credentials(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        elif isinstance(value, tuple) and hasattr(value, "_asdict"):
            value = value._asdict()
        if not isinstance(value, Mapping):
            if isinstance(value, list | tuple | set | frozenset | deque):
                return [redact(v, needles, _depth + 1) for v in value]
            return value
    memo = _secret_memo(needles)
    # Scalars are copied inline unless one level down is already past the depth cut.
    atoms = _ATOMS if _depth < _MAX_REDACT_DEPTH else frozenset()
    out = {}
    for k, v in value.items():
        if type(k) is str:
            secret = memo.get(k)
            if secret is None:
                secret = _is_secret(k, needles)
                if len(memo) >= _SECRET_MEMO_SIZE:
                    memo.clear()
                memo[k] = secret
        else:
            # JSON object keys are strings; a tuple or bytes key would fail the whole line.
            k = k if isinstance(k, int | float | bool) or k is None else safe_text(k)
            secret = _is_secret(k, needles)
        if secret:
            out[k] = REDACTED
        elif type(v) in atoms:
            out[k] = mask_credentials(v) if type(v) is str and "@" in v else v
        else:
            out[k] = redact(v, needles, _depth + 1)
    return out

