"""The current trace, carried in a context variable, and W3C Trace Context ids and headers.

This module is the small piece that logs, metrics and the tracer share: the logger reads the
current ids to stamp log lines, ``monitor_performance`` reads them for exemplars, and the tracer
sets them. Because it is a :class:`contextvars.ContextVar`, the current span follows ``await`` and
is copied into asyncio tasks; threads start with an empty context, so use :func:`bind_context`
to carry it into a thread or an executor.

Ids follow W3C Trace Context (https://www.w3.org/TR/trace-context/): a 32-hex ``trace_id``
shared by a whole tree, a 16-hex ``span_id`` per entry.
"""

from __future__ import annotations

import contextvars
import functools
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import NamedTuple, ParamSpec, TypeVar

__all__ = [
    "TRACEPARENT_HEADER",
    "SpanContext",
    "attach",
    "detach",
    "bind_context",
    "continue_trace",
    "current_span",
    "extract_traceparent",
    "format_traceparent",
    "inject_traceparent",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
    "use_span",
]

TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

P = ParamSpec("P")
R = TypeVar("R")


class SpanContext(NamedTuple):
    """The identity of one span: its tree's ``trace_id`` and its own ``span_id``.

    A NamedTuple, not a dataclass: one is made per span, and a tuple is about half the cost.
    """

    trace_id: str
    span_id: str
    sampled: bool = True
    remote: bool = False


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


def current_span() -> SpanContext | None:
    """The span the calling code runs in, or ``None`` outside any trace."""
    return _current.get()


def attach(span: SpanContext | None) -> contextvars.Token[SpanContext | None]:
    """Make ``span`` current until :func:`detach` is called with the returned token.

    The cheap form of :func:`use_span` for code that already has a ``try/finally``.
    """
    return _current.set(span)


def detach(token: contextvars.Token[SpanContext | None]) -> None:
    """Restore the span that was current before the matching :func:`attach`."""
    _current.reset(token)


@contextmanager
def use_span(span: SpanContext | None) -> Iterator[SpanContext | None]:
    """Make ``span`` the current span inside the ``with`` block."""
    token = _current.set(span)
    try:
        yield span
    finally:
        _current.reset(token)


def format_traceparent(span: SpanContext | None = None) -> str | None:
    """The ``traceparent`` header value for ``span`` (default: the current one), or ``None``."""
    span = span if span is not None else _current.get()
    if span is None:
        return None
    return f"00-{span.trace_id}-{span.span_id}-{'01' if span.sampled else '00'}"


def parse_traceparent(header: str | None) -> SpanContext | None:
    """Parse a ``traceparent`` header; ``None`` when absent or invalid (as the spec asks)."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return SpanContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1), remote=True)


def inject_traceparent(headers: MutableMapping[str, str],
                       span: SpanContext | None = None) -> MutableMapping[str, str]:
    """Add the ``traceparent`` of ``span`` (default: the current one) to outgoing ``headers``."""
    value = format_traceparent(span)
    if value is not None:
        headers[TRACEPARENT_HEADER] = value
    return headers


def extract_traceparent(headers: Mapping[str, str]) -> SpanContext | None:
    """Read the ``traceparent`` of incoming ``headers`` (any capitalisation of the name)."""
    for name, value in headers.items():
        if name.lower() == TRACEPARENT_HEADER:
            return parse_traceparent(value)
    return None


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
