"""The generator forms of ``trace_execution``: one entry over the whole iteration, current only
while the generator's own code runs.

Generators share their consumer's context, so holding the span across a ``yield`` would make the
consumer's own work a child of the generator. The entry is started without becoming current
(``_start(enter=False)``) and each step of the inner generator (made, sent to, thrown into,
closed) runs with its span attached. It ends with the tracer's one ``_end`` (through
:class:`_Ending`, a ``with`` around the whole iteration: its cost is nothing beside a
generator's), from the first ``next`` to exhaustion, an exception, or ``close`` (a success).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from vigil.monitoring import context as _context
from vigil.monitoring.context import SpanContext
from vigil.monitoring.tracing.entry import Entry
from vigil.monitoring.tracing.shared import shared_tracer
from vigil.monitoring.tracing.tracer import ExecutionTracer

__all__ = ["InSpan", "trace_async_generator", "trace_generator"]

T = TypeVar("T")

_attach = _context.attach  # shared with OpenTelemetry's context when the bridge is on
_detach = _context.detach


def _in_span(span: SpanContext, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` with ``span`` current, and the span before it after."""
    token = _attach(span)
    try:
        return call(*args, **kwargs)
    finally:
        _detach(token)


async def _awaited_in(span: SpanContext, step: Awaitable[T]) -> T:
    """``await step`` with ``span`` current, and the span before it after."""
    token = _attach(span)
    try:
        return await step
    finally:
        _detach(token)


class _Ending:
    """Ends ``entry`` when the block leaves: ``_end(entry, the exception or None)``."""

    __slots__ = ("_entry", "_tracer")

    def __init__(self, tracer: ExecutionTracer, entry: Entry) -> None:
        self._tracer, self._entry = tracer, entry

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._tracer._end(self._entry, exc)


class InSpan(Generator[Any, Any, Any]):
    """``inner`` with ``span`` current during each of its steps (send, throw, close) only.

    ``yield from`` this object forwards every step of the consumer's (values sent, exceptions
    thrown, closing) as PEP 380 says.
    """

    __slots__ = ("_inner", "_span")

    def __init__(self, inner: Generator[Any, Any, Any], span: SpanContext) -> None:
        self._inner = inner
        self._span = span

    def send(self, value: Any) -> Any:
        return _in_span(self._span, self._inner.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        return _in_span(self._span, self._inner.throw, typ, val, tb)

    def close(self) -> None:
        _in_span(self._span, self._inner.close)


def trace_generator(fn: Callable[..., Generator[Any, Any, Any]], component: str,
                    operation: str, metadata: Mapping[str, Any] | None,
                    tracer: ExecutionTracer | None) -> Callable[..., Any]:
    """``fn`` (a generator function) traced over each iteration."""

    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        used = tracer if tracer is not None else shared_tracer()
        entry = used._start(component, operation, metadata)
        span = entry.span
        with _Ending(used, entry):
            return (yield from InSpan(_in_span(span, fn, *args, **kwargs), span))

    return traced


def trace_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], component: str,
                          operation: str, metadata: Mapping[str, Any] | None,
                          tracer: ExecutionTracer | None) -> Callable[..., Any]:
    """``fn`` (an async generator function) traced over each iteration."""

    async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        used = tracer if tracer is not None else shared_tracer()
        entry = used._start(component, operation, metadata)
        span = entry.span
        with _Ending(used, entry):
            # There is no ``yield from`` for async generators: each step is forwarded by hand.
            inner = _in_span(span, fn, *args, **kwargs)
            step: Awaitable[Any] = inner.asend(None)
            while True:
                try:
                    item = await _awaited_in(span, step)
                except StopAsyncIteration:
                    break
                try:
                    step = inner.asend((yield item))
                except GeneratorExit:
                    await _awaited_in(span, inner.aclose())
                    raise
                except BaseException as exc:
                    step = inner.athrow(exc)

    return traced
