"""``trace_execution``: the decorator, which picks a form by what it decorates.

The function and coroutine forms are the tracer's one start/end pair around the call, written
out (``_start`` making the entry current, ``_end`` with the exception or ``None``): the same
wrapper as ``with TraceScope(...)`` measured 1.14x slower (a scope object and the ``with``
protocol per call; bench/RESULTS.md). The generator forms are in :mod:`.generators`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from vigil.monitoring.tracing.generators import trace_async_generator, trace_generator
from vigil.monitoring.tracing.shared import shared_tracer
from vigil.monitoring.tracing.tracer import ExecutionTracer

__all__ = ["trace_execution"]

P = ParamSpec("P")
R = TypeVar("R")


def trace_execution(component: str, operation: str, metadata: Mapping[str, Any] | None = None, *,
                    tracer: ExecutionTracer | None = None,
                    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function, ``async def``, generator or async generator to trace each call.

    For a generator the entry covers the whole iteration, from the first ``next`` to exhaustion
    or ``close``, and is the current span only while the generator's own code runs.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isasyncgenfunction(fn):
            wrapped: Callable[..., Any] = trace_async_generator(
                fn, component, operation, metadata, tracer)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _trace_coroutine(fn, component, operation, metadata, tracer)
        elif inspect.isgeneratorfunction(fn):
            wrapped = trace_generator(fn, component, operation, metadata, tracer)
        else:
            wrapped = _trace_function(fn, component, operation, metadata, tracer)
        return cast(Callable[P, R], functools.wraps(fn)(wrapped))

    return decorate


def _trace_function(fn: Callable[..., Any], component: str, operation: str,
                    metadata: Mapping[str, Any] | None,
                    tracer: ExecutionTracer | None) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        used = tracer if tracer is not None else shared_tracer()
        entry = used._start(component, operation, metadata, enter=True)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            used._end(entry, exc)
            raise
        used._end(entry, None)
        return result

    return traced


def _trace_coroutine(fn: Callable[..., Coroutine[Any, Any, Any]], component: str,
                     operation: str, metadata: Mapping[str, Any] | None,
                     tracer: ExecutionTracer | None) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> Any:
        # The variable belongs to this task's context, so it holds across the awaits below.
        used = tracer if tracer is not None else shared_tracer()
        entry = used._start(component, operation, metadata, enter=True)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            used._end(entry, exc)
            raise
        used._end(entry, None)
        return result

    return traced
