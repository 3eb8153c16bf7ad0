"""``@with_retry``: a :class:`~vigil.error_handling.retry.retrier.Retrier` around a function.

The wrapper is :mod:`~vigil.error_handling.retry.fast_path`'s: the first attempt made inline,
then the one driver per protocol (:func:`~vigil.error_handling.retry.attempts.run_sync` /
``run_async``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from prometheus_client import CollectorRegistry

from vigil.clock import Clock
from vigil.error_handling.events import EventPublisher
from vigil.error_handling.retry.events import RetryEvent
from vigil.error_handling.retry.fast_path import async_wrapper, sync_wrapper
from vigil.error_handling.retry.policy import ExceptionTypes, RetryOptions, RetryPolicy
from vigil.error_handling.retry.retrier import Retrier, Retrying
from vigil.monitoring.logger_protocol import Logger

__all__ = ["retry_events", "with_retry"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def with_retry(max_attempts: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_retry(max_attempts: int | None = None, retry_on: ExceptionTypes = (Exception,), *,
               operation: str | None = None, clock: Clock | None = None,
               registry: CollectorRegistry | None = None, logger: Logger | None = None,
               expose_attempt: bool = False, **settings: Unpack[RetryOptions]
               ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def with_retry(max_attempts: Any = None, retry_on: ExceptionTypes = (Exception,), *,
               operation: str | None = None, clock: Clock | None = None,
               registry: CollectorRegistry | None = None, logger: Logger | None = None,
               expose_attempt: bool = False, **settings: Unpack[RetryOptions]) -> Any:
    """Retry the decorated function (sync or ``async def``) as the policy says.

    ``@with_retry`` (no parentheses) is ``@with_retry()``: every setting from
    ``error_handling.retry``. ``max_attempts`` counts the first attempt. ``retry_on``:
    exception class(es) worth retrying; ``retry_if(exc)``: an extra veto;
    ``retry_if_result(result)``: retry while true (the last result is returned when attempts
    or time run out); ``max_time``: seconds after which no attempt starts; ``wait``: a
    strategy ``fn(n) -> seconds`` replacing ``initial_delay``/``max_delay``/``multiplier``/
    ``jitter``/``rng``; ``expose_attempt``: make ``current_attempt()`` answer inside. The
    settings after ``retry_on`` are declared once, in
    :class:`~vigil.error_handling.retry.policy.RetryOptions`.
    ``operation`` (the metric label) defaults to the function's ``__qualname__``. ``None``
    settings come from ``error_handling.retry`` at decoration time. The result keeps the
    function's metadata (``functools.wraps``) and has ``.events`` (its
    :class:`EventPublisher`) and ``.retrier``. Generator functions are refused: their errors
    surface after the call returns, where no retry can reach them.
    """
    bare = callable(max_attempts)
    policy = RetryPolicy.from_config(None if bare else max_attempts, retry_on, **settings)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"with_retry cannot retry generator function {fn.__qualname__!r}")
        name = operation if operation is not None else _qualname(fn)
        retrier = Retrier(policy, operation=name, clock=clock, registry=registry,
                          logger=logger, expose_attempt=expose_attempt)
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            wrapper = async_wrapper(cast(Callable[..., Coroutine[Any, Any, Any]], fn), retrier)
        else:
            wrapper = sync_wrapper(fn, retrier)
        vars(wrapper).update(events=retrier.events, retrier=retrier)
        return cast(Callable[P, R], wrapper)

    return decorate(max_attempts) if bare else decorate


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def retry_events(fn: Callable[..., Any] | Retrying) -> EventPublisher[RetryEvent]:
    """The event publisher of a ``with_retry`` function (found through other decorators) or
    of a ``retrying()`` object.

    ``retry_events(process_file).subscribe(callback)`` is the typed spelling of
    ``process_file.events.subscribe(callback)``.
    """
    seen: Any = fn
    for _ in range(100):  # a __wrapped__ chain is short; never loop on a cyclic one
        retrier = getattr(seen, "retrier", None)
        if isinstance(retrier, Retrier):
            return retrier.events
        seen = getattr(seen, "__wrapped__", None)
        if seen is None:
            break
    name = _qualname(fn) if callable(fn) else repr(fn)
    raise TypeError(f"{name!r} is not decorated with with_retry")
