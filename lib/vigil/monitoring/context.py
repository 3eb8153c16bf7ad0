"""The current trace, carried in a context variable, and its W3C Trace Context ids.

This module is the small piece that logs, metrics and the tracer share: the logger reads the
current ids to stamp log lines, ``monitor_performance`` reads them for exemplars, and the tracer
sets them. Because it is a :class:`contextvars.ContextVar`, the current span follows ``await`` and
is copied into asyncio tasks; threads start with an empty context, so use :func:`bind_context`
to carry it into a thread or an executor.

Ids follow W3C Trace Context (https://www.w3.org/TR/trace-context/): a 32-hex ``trace_id``
shared by a whole tree, a 16-hex ``span_id`` per entry, the sampled flag, and the vendors'
``tracestate``, which children inherit. Reading and writing them as HTTP headers
(``traceparent``, ``tracestate``, :func:`continue_trace`) is :mod:`vigil.monitoring.propagation`;
those names are importable from here too.

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
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple, ParamSpec, TypeVar

from vigil._lazy import forwarding
from vigil.config import VigilConfig, get_config_or_defaults, on_configure

__all__ = [
    "SpanContext",
    "attach",
    "bind_context",
    "current_span",
    "detach",
    "new_span_id",
    "new_trace_id",
    "share_opentelemetry_context",
    "use_span",
]

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


# The header functions moved to vigil.monitoring.propagation, which imports this module: read
# through here on first use, not imported at the top (that would be a cycle).
if TYPE_CHECKING:
    pass
else:
    __getattr__ = forwarding(__name__, dict.fromkeys((
        "TRACEPARENT_HEADER", "TRACESTATE_HEADER", "continue_trace", "extract_traceparent",
        "format_traceparent", "format_tracestate", "inject_traceparent", "parse_traceparent",
        "parse_tracestate"), "vigil.monitoring.propagation"))
