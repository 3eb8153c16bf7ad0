"""JSON answers that always encode, and the one error shape every 4xx and 5xx uses.

Shared by the routes (:mod:`vigil_exporter.routes`) and the middlewares in front of them
(:mod:`vigil_exporter.policy`, ``RequestLimitsMiddleware``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

from vigil.jsonsafe import json_safe as _json_safe

__all__ = ["MAX_JSON_DEPTH", "BudgetedListResponse", "SafeJSONResponse", "encode_within",
           "error_response", "json_safe", "short"]

MAX_JSON_DEPTH = 256  # containers deep; leaves room for MAX_TREE_DEPTH nodes plus metadata
_MESSAGE_VALUE_LIMIT = 80  # characters of a received value echoed in an error message


def json_safe(value: object) -> Any:
    """``value`` by :func:`vigil.jsonsafe.json_safe`'s rule, with room for the answers' own
    nesting (:data:`MAX_JSON_DEPTH`, from the answer's root; the user data inside was cut at
    :data:`vigil.jsonsafe.MAX_DEPTH` where it entered)."""
    return _json_safe(value, max_depth=MAX_JSON_DEPTH)


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
