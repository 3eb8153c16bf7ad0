"""W3C Trace Context on the wire: the ``traceparent`` and ``tracestate`` headers.

https://www.w3.org/TR/trace-context/: :func:`parse_traceparent` / :func:`parse_tracestate`
read them (an invalid header is ``None`` or ``""``, as the spec asks, never an error),
:func:`format_traceparent` / :func:`format_tracestate` write them for a span (default: the
current one), :func:`inject_traceparent` / :func:`extract_traceparent` do so on a mapping of
HTTP headers, and :func:`continue_trace` makes an incoming request's span the current one. The
span itself and the current-span context are :mod:`vigil.monitoring.context`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from vigil.monitoring.context import SpanContext, current_span, use_span

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "continue_trace",
    "extract_traceparent",
    "format_traceparent",
    "format_tracestate",
    "inject_traceparent",
    "parse_traceparent",
    "parse_tracestate",
]

TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
# One tracestate list member, as W3C Trace Context level 1 writes the key and value grammar.
_TRACESTATE_MEMBER = re.compile(
    r"^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
_TRACESTATE_MAX_MEMBERS = 32  # the spec's limit
_TRACESTATE_MAX_CHARS = 512  # what the spec asks every vendor to propagate at least


def format_traceparent(span: SpanContext | None = None) -> str | None:
    """The ``traceparent`` header value for ``span`` (default: the current one), or ``None``.

    The flags are the span's own: ``01`` when sampled, ``00`` when not.
    """
    span = span if span is not None else current_span()
    if span is None:
        return None
    return f"00-{span.trace_id}-{span.span_id}-{'01' if span.sampled else '00'}"


def format_tracestate(span: SpanContext | None = None) -> str | None:
    """The ``tracestate`` header value for ``span`` (default: the current one), or ``None``."""
    span = span if span is not None else current_span()
    return span.tracestate or None if span is not None else None


def parse_tracestate(header: str | None) -> str:
    """A ``tracestate`` header normalised (members trimmed, empty ones dropped), or "".

    As the spec allows, an invalid header (a member that breaks the grammar, a key twice, more
    than 32 members) is dropped whole; past 512 characters the last members are left out.
    """
    if not header:
        return ""
    members = [m.strip() for m in header.split(",")]
    members = [m for m in members if m]
    if len(members) > _TRACESTATE_MAX_MEMBERS:
        return ""
    keys = set()
    for member in members:
        if _TRACESTATE_MEMBER.match(member) is None:
            return ""
        key = member.split("=", 1)[0]
        if key in keys:
            return ""
        keys.add(key)
    kept: list[str] = []
    size = -1
    for member in members:
        size += len(member) + 1
        if size > _TRACESTATE_MAX_CHARS:
            break
        kept.append(member)
    return ",".join(kept)


def parse_traceparent(header: str | None, tracestate: str | None = None) -> SpanContext | None:
    """Parse a ``traceparent`` header; ``None`` when absent or invalid (as the spec asks).

    ``tracestate`` is the same request's ``tracestate`` header, kept on the span (see
    :func:`parse_tracestate`); it is ignored when the ``traceparent`` is invalid.
    """
    if not header or not isinstance(header, str):
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    state = parse_tracestate(tracestate) if isinstance(tracestate, str) else ""
    return SpanContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1), remote=True,
                       tracestate=state)


def inject_traceparent(headers: MutableMapping[str, str],
                       span: SpanContext | None = None) -> MutableMapping[str, str]:
    """Add ``traceparent`` (and ``tracestate`` when there is one) for ``span`` (default: the
    current one) to outgoing ``headers``; the sampled flag is the span's own."""
    span = span if span is not None else current_span()
    value = format_traceparent(span)
    if value is not None:
        headers[TRACEPARENT_HEADER] = value
        if span is not None and span.tracestate:
            headers[TRACESTATE_HEADER] = span.tracestate
    return headers


def extract_traceparent(headers: Mapping[str, Any]) -> SpanContext | None:
    """Read ``traceparent`` (and ``tracestate``) from incoming ``headers``, any capitalisation."""
    parent = state = None
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else ""
        if lowered == TRACEPARENT_HEADER:
            parent = value
        elif lowered == TRACESTATE_HEADER:
            state = value
    return parse_traceparent(parent, state)


@contextmanager
def continue_trace(traceparent: str | Mapping[str, str] | None) -> Iterator[SpanContext | None]:
    """Continue a trace started in another process.

    ``traceparent`` is a header value or a mapping of incoming headers. Inside the block, traces
    started with ``trace_context``/``trace_execution``/``start_trace`` join the caller's trace as
    children of its span. An absent or invalid header leaves the context as it is.
    """
    remote = (extract_traceparent(traceparent) if isinstance(traceparent, Mapping)
              else parse_traceparent(traceparent))
    if remote is None:
        yield None
        return
    with use_span(remote):
        yield remote
