"""The span scope: :class:`TraceScope`, which :func:`trace_context` returns.

A thin use of the tracer's one start/end pair: ``__enter__`` is
:meth:`ExecutionTracer._start <vigil.monitoring.tracing.tracer.ExecutionTracer._start>` with the
entry made the current span, ``__exit__`` is ``_end`` with the exception the block raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from vigil.monitoring.tracing.entry import Entry
from vigil.monitoring.tracing.shared import shared_tracer
from vigil.monitoring.tracing.tracer import ExecutionTracer
from vigil.text import safe_text

__all__ = ["SPAN_KINDS", "TraceScope", "span_kind", "trace_context"]

SPAN_KINDS = ("client", "consumer", "internal", "producer", "server")  # OpenTelemetry's


class TraceScope:
    """The context manager :func:`trace_context` returns; usable with ``with`` and ``async with``.

    One instance traces one block at a time; entering it again after it exits starts a new entry.
    """

    __slots__ = ("_component", "_entry", "_kind", "_metadata", "_operation", "_tracer", "_used")

    _used: ExecutionTracer  # set by __enter__

    def __init__(self, component: str, operation: str, metadata: Mapping[str, Any] | None = None,
                 tracer: ExecutionTracer | None = None, kind: str | None = None) -> None:
        self._component = component
        self._operation = operation
        self._metadata = metadata
        self._tracer = tracer
        self._kind = None if kind is None else span_kind(kind)  # (one call less per block)
        self._entry: Entry | None = None  # while the block runs

    def __enter__(self) -> str:
        if self._entry is not None:
            raise RuntimeError("this trace_context is already active; make one per block")
        tracer = self._tracer if self._tracer is not None else shared_tracer()
        entry = tracer._start(self._component, self._operation, self._metadata, enter=True)
        if self._kind is not None:
            entry.kind = self._kind
        self._used = tracer
        self._entry = entry
        return entry.id

    def update(self, *, operation: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> None:
        """While the block runs: rename the entry's operation and/or add ``metadata`` to it.

        For what is known only once the work is under way (an HTTP server span learns its route
        after routing). The operation is a label of ``vigil_trace_duration_seconds``: give it a
        value from a small set (a route template, never a raw path).
        """
        entry = self._entry
        if entry is None:
            raise RuntimeError("this trace_context is not active")
        tracer = self._used
        with tracer._lock:  # a running entry's fields change under the lock (see Entry)
            if operation is not None:
                entry.operation = operation if type(operation) is str else safe_text(operation)
            if metadata:
                entry.metadata = ({**entry.metadata, **metadata} if entry.metadata
                                  else dict(metadata))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry = self._entry
        if entry is None:
            raise RuntimeError("this trace_context was not entered")
        self._entry = None
        self._used._end(entry, exc)

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


def trace_context(component: str, operation: str, metadata: Mapping[str, Any] | None = None, *,
                  tracer: ExecutionTracer | None = None, kind: str | None = None) -> TraceScope:
    """Trace a block: ``with trace_context("Comp", "op") as trace_id: ...``.

    The entry is the current span inside the block (``async with`` works too). If the block
    raises, the entry ends with ``status="error"`` and the exception's type and message, and the
    exception propagates. ``tracer`` defaults to the module's ``execution_tracer``. ``kind``
    (one of :data:`SPAN_KINDS`, e.g. ``"server"`` for a request handler) is the exported
    span's kind; by default ``server`` under a remote parent, else ``internal``.
    """
    return TraceScope(component, operation, metadata, tracer, kind)


def span_kind(kind: str | None) -> str | None:
    """``kind`` as one of :data:`SPAN_KINDS` (case and spaces ignored); ValueError otherwise."""
    if kind is None:
        return None
    name = kind.strip().lower() if isinstance(kind, str) else kind
    if name not in SPAN_KINDS:
        raise ValueError(f"trace_context: kind must be one of {', '.join(SPAN_KINDS)}, "
                         f"got {kind!r}")
    return name
