"""JSON answers that always encode, and the one error shape every 4xx and 5xx uses.

Shared by the routes (:mod:`vigil_exporter.app`) and the middlewares in front of them
(:mod:`vigil_exporter.policy`, ``RequestLimitsMiddleware``).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

__all__ = ["MAX_JSON_DEPTH", "BudgetedListResponse", "SafeJSONResponse", "encode_within",
           "error_response", "json_safe", "short"]

MAX_JSON_DEPTH = 256  # containers deep; leaves room for MAX_TREE_DEPTH nodes plus metadata
_MAX_INT_BITS = 13_000  # ~3900 digits: below Python's 4300-digit int-to-str limit
_MESSAGE_VALUE_LIMIT = 80  # characters of a received value echoed in an error message


def json_safe(value: object, _depth: int = 0) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts, never raising."""
    try:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return value if value.bit_length() <= _MAX_INT_BITS else \
                f"<integer of {value.bit_length()} bits>"
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if _depth >= MAX_JSON_DEPTH:
            return f"<nested deeper than {MAX_JSON_DEPTH} levels>"
        if isinstance(value, Mapping):
            return {k if isinstance(k, str) else str(k): json_safe(v, _depth + 1)
                    for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset | deque):
            return [json_safe(v, _depth + 1) for v in value]
        return str(value)
    # A broken __str__ or mapping, or a repr so deep it recurses, must not fail the response.
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class SafeJSONResponse(JSONResponse):
    """JSON through :func:`json_safe`; ASCII-escaped so lone surrogates cannot break it."""

    def render(self, content: Any) -> bytes:
        return json.dumps(json_safe(content), allow_nan=False, separators=(",", ":")).encode()


class BudgetedListResponse(Response):
    """A JSON array of as many of ``entries`` as fit in ``max_bytes`` (oldest left out last).

    Entries are made JSON-safe and encoded one at a time, so the answer is built within the
    budget plus one entry, whatever the buffers hold; an iterator of entries is consumed
    lazily (redaction of the entries left out never runs). When entries were left out the
    answer carries ``Vigil-Truncated: true``; ``Vigil-Entries`` always gives the count kept.
    """

    media_type = "application/json"

    def __init__(self, entries: Iterable[Any], max_bytes: int, *, status_code: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        body, kept, truncated = encode_within(entries, max_bytes)
        extra = {"Vigil-Entries": str(kept)}
        if truncated:
            extra["Vigil-Truncated"] = "true"
        super().__init__(body, status_code=status_code, headers={**(headers or {}), **extra})


def encode_within(entries: Iterable[Any], max_bytes: int) -> tuple[bytes, int, bool]:
    """``(json array bytes, entries kept, whether some were left out)`` within ``max_bytes``."""
    parts: list[bytes] = []
    size = 2  # the brackets
    for entry in entries:
        part = json.dumps(json_safe(entry), allow_nan=False, separators=(",", ":")).encode()
        if size + len(part) + (1 if parts else 0) > max_bytes:
            return b"[" + b",".join(parts) + b"]", len(parts), True
        size += len(part) + (1 if parts else 0)
        parts.append(part)
    return b"[" + b",".join(parts) + b"]", len(parts), False


def error_response(status: int, message: str, detail: list[Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> SafeJSONResponse:
    """The one error shape: ``{"error": "<one line>", "detail": [...]}``."""
    return SafeJSONResponse({"error": message, "detail": detail or []}, status_code=status,
                            headers=dict(headers) if headers else None)


def short(value: object) -> str:
    """A received value as it may appear in a message: short, ASCII, quoted."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > _MESSAGE_VALUE_LIMIT:
        text = text[:_MESSAGE_VALUE_LIMIT] + "..."
    return json.dumps(text)
