"""The current trace, carried in a context variable, and W3C Trace Context ids and headers.

This module is the small piece that logs, metrics and the tracer share: the logger reads the
current ids to stamp log lines, ``monitor_performance`` reads them for exemplars, and the tracer
sets them. Because it is a :class:`contextvars.ContextVar`, the current span follows ``await`` and
is copied into asyncio tasks; threads start with an empty context, so use :func:`bind_context`
to carry it into a thread or an executor.

Ids follow W3C Trace Context (https://www.w3.org/TR/trace-context/): a 32-hex ``trace_id``
shared by a whole tree, a 16-hex ``span_id`` per entry, the sampled flag, and the vendors'
``tracestate``, which children inherit and :func:`inject_traceparent` passes on.

**OpenTelemetry.** Once ``opentelemetry.trace`` is imported (by the application or any library)
and ``monitoring.tracing.opentelemetry_context`` is on, the current span is shared with
OpenTelemetry's context: :func:`current_span` answers OpenTelemetry's current span when one is
set (so a vigil span started inside ``tracer.start_as_current_span`` is its child, and log lines
carry its ids), and every span vigil makes current is also made current in OpenTelemetry's context
(so an OpenTelemetry span started inside it is its child). The bridge lives in
:mod:`vigil.monitoring._otel_bridge`, imported only then; without OpenTelemetry nothing of it is
imported and the current span is this module's context variable alone.
"""

from __future__ import annotations

import contextvars
import functools
import os
import random
import re
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any, NamedTuple, ParamSpec, TypeVar

from vigil.config import VigilConfig, get_config_or_defaults, on_configure

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "SpanContext",
    "attach",
    "detach",
    "bind_context",
    "continue_trace",
    "current_span",
    "extract_traceparent",
    "format_traceparent",
    "format_tracestate",
    "inject_traceparent",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
    "parse_tracestate",
    "use_span",
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

P = ParamSpec("P")
R = TypeVar("R")


class SpanContext(NamedTuple):
    """The identity of one span: its tree's ``trace_id`` and its own ``span_id``.

    ``sampled`` is the W3C sampled flag (an unsampled span still gives its ids to log lines; it
    is not exported), ``remote`` whether it came from another process, ``tracestate`` the
    vendors' header value, inherited by children ("" when there is none).

    A NamedTuple, not a dataclass: one is made per span, and a tuple is about half the cost.
    """

    trace_id: str
    span_id: str
    sampled: bool = True
    remote: bool = False
    tracestate: str = ""


_current: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar(
    "vigil_current_span", default=None)

# random.getrandbits is several times cheaper than os.urandom / uuid4 and ids need to be
# unique, not unguessable. A dedicated Random keeps users' random.seed() from repeating ids; it
# is reseeded in forked children (the random module only does that for its own instance), or
# prefork workers (gunicorn, multiprocess mode) would repeat each other's ids.
_random = random.Random()
_bits = _random.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def new_trace_id() -> str:
    """A random 32-hex W3C trace id (never all zeros)."""
    # to_bytes().hex() is about 3x cheaper than f"{n:032x}", and this runs per root span.
    return (_bits(128) or 1).to_bytes(16, "big").hex()


def new_span_id() -> str:
    """A random 16-hex W3C span id (never all zeros)."""
    return (_bits(64) or 1).to_bytes(8, "big").hex()


# --- sharing the current span with OpenTelemetry ------------------------------------------

_OTEL_TRACE = "opentelemetry.trace"  # once imported, OpenTelemetry spans may exist
_modules = sys.modules
# monitoring.tracing.opentelemetry_context; None until first needed (read then, not at import)
_sharing: bool | None = None
_bridge: ModuleType | None = None  # vigil.monitoring._otel_bridge, once it is in use


class _Joint(NamedTuple):
    """The token of a span made current in both contexts (see :func:`_join`)."""

    vigil: contextvars.Token[SpanContext | None]
    otel: object
    leave: Callable[[object], None]


def _bridged() -> ModuleType | None:
    """The bridge, when OpenTelemetry's trace API is imported and sharing is on."""
    global _bridge, _sharing
    if _sharing is False or _OTEL_TRACE not in _modules:
        return None
    if _sharing is None:
        _sharing = get_config_or_defaults().monitoring.tracing.opentelemetry_context
        if not _sharing:
            return None
    if _bridge is None:
        try:
            from vigil.monitoring import _otel_bridge
        except Exception:  # e.g. out of file descriptors: vigil's own span, and retry next time
            return None
        _bridge = _otel_bridge
    return _bridge


def share_opentelemetry_context(on: bool) -> None:
    """Turn sharing with OpenTelemetry's context on or off (``opentelemetry_context``)."""
    global _sharing
    _sharing = bool(on)


@on_configure
def _follow_configuration(config: VigilConfig) -> None:
    share_opentelemetry_context(config.monitoring.tracing.opentelemetry_context)


def _join(span: SpanContext | None,
          token: contextvars.Token[SpanContext | None]) -> contextvars.Token[SpanContext | None]:
    """Make ``span`` (already current here, by ``token``) current in OpenTelemetry's context too.

    Returns what :func:`_part` undoes: ``token`` itself when nothing is shared. Typed as the
    plain token so callers keep one type; a :class:`_Joint` is told apart by its type.
    """
    bridge = _bridged()
    if bridge is None:
        return token
    # span None too: use_span(None) leaves no current span on either side.
    return _Joint(token, bridge.enter(span), bridge.leave)  # type: ignore[return-value]


def _part(token: object) -> None:
    """Undo :func:`attach` / :func:`_join`: restore the span current before, in both contexts."""
    if type(token) is _Joint:
        try:
            token.leave(token.otel)
        finally:
            _current.reset(token.vigil)
    else:
        _current.reset(token)  # type: ignore[arg-type]


def current_span() -> SpanContext | None:
    """The span the calling code runs in, or ``None`` outside any trace.

    With OpenTelemetry sharing on (see the module's docstring), OpenTelemetry's current span
    when it has one, else vigil's own.
    """
    if _bridge is None and (_sharing is False or _OTEL_TRACE not in _modules):
        return _current.get()
    bridge = _bridged()
    return _current.get() if bridge is None else bridge.current(_current.get())


def attach(span: SpanContext | None) -> contextvars.Token[SpanContext | None]:
    """Make ``span`` current until :func:`detach` is called with the returned token.

    The cheap form of :func:`use_span` for code that already has a ``try/finally``.
    """
    return _join(span, _current.set(span))


def detach(token: contextvars.Token[SpanContext | None]) -> None:
    """Restore the span that was current before the matching :func:`attach`."""
    _part(token)


@contextmanager
def use_span(span: SpanContext | None) -> Iterator[SpanContext | None]:
    """Make ``span`` the current span inside the ``with`` block."""
    token = attach(span)
    try:
        yield span
    finally:
        _part(token)


# --- W3C headers -----------------------------------------------------------------------------


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


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so it runs in a copy of the caller's context (current trace included).

    Threads and ``concurrent.futures`` executors do not inherit context variables::

        executor.submit(bind_context(work), item)
        threading.Thread(target=bind_context(work)).start()
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run
