"""``@with_retry``: a :class:`~vigil.error_handling.retry.retrier.Retrier` around a function.

The wrapper is a thin use of the one driver per protocol (:func:`run_sync` /
:func:`run_async`), with one trick, kept here and only here: **the first-try fast path**.
The wrapper makes the first attempt itself. A success is one ``try`` and one bound counter
increment: no call state, no policy call, no event, and no clock read unless ``max_time``
needs the start (plus the ``retry_if_result`` predicate when there is one). Any other outcome
builds the call state (:class:`RetryCall`) and hands over to the driver with the wait already
decided. That saves the driver's per-call objects (about 1.3 µs, four times the rest).
``expose_attempt=True`` needs an :class:`Attempt` in the context variable from the first
attempt on, so it calls the driver directly. ``tests/unit/error_handling/test_retry_decorator.py``
pins both: what the fast path does not do, and that it reports exactly what the driver does.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast, overload

from prometheus_client import CollectorRegistry

from vigil.clock import Clock
from vigil.error_handling.events import EventPublisher
from vigil.error_handling.retry.attempts import RetryCall, run_async, run_sync
from vigil.error_handling.retry.events import RetryEvent
from vigil.error_handling.retry.policy import ExceptionTypes, RetryPolicy
from vigil.error_handling.retry.retrier import Retrier, Retrying
from vigil.error_handling.retry.wait import WaitFn
from vigil.monitoring.logger_protocol import Logger

__all__ = ["retry_events", "with_retry"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def with_retry(max_attempts: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_retry(max_attempts: int | None = None, retry_on: ExceptionTypes = (Exception,), *,
               initial_delay: float | None = None, max_delay: float | None = None,
               multiplier: float | None = None, jitter: bool | None = None,
               retry_if: Callable[[Exception], bool] | None = None,
               retry_if_result: Callable[[Any], bool] | None = None,
               max_time: float | None = None, wait: WaitFn | None = None,
               operation: str | None = None, clock: Clock | None = None,
               registry: CollectorRegistry | None = None,
               logger: Logger | None = None, rng: random.Random | None = None,
               expose_attempt: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def with_retry(max_attempts: Any = None, retry_on: ExceptionTypes = (Exception,), *,
               initial_delay: float | None = None, max_delay: float | None = None,
               multiplier: float | None = None, jitter: bool | None = None,
               retry_if: Callable[[Exception], bool] | None = None,
               retry_if_result: Callable[[Any], bool] | None = None,
               max_time: float | None = None, wait: WaitFn | None = None,
               operation: str | None = None, clock: Clock | None = None,
               registry: CollectorRegistry | None = None,
               logger: Logger | None = None, rng: random.Random | None = None,
               expose_attempt: bool = False) -> Any:
    """Retry the decorated function (sync or ``async def``) as the policy says.

    ``@with_retry`` (no parentheses) is ``@with_retry()``: every setting from
    ``error_handling.retry``. ``max_attempts`` counts the first attempt. ``retry_on``:
    exception class(es) worth retrying; ``retry_if(exc)``: an extra veto;
    ``retry_if_result(result)``: retry while true (the last result is returned when attempts
    or time run out); ``max_time``: seconds after which no attempt starts; ``wait``: a
    strategy ``fn(n) -> seconds`` replacing ``initial_delay``/``max_delay``/``multiplier``/
    ``jitter``/``rng``; ``expose_attempt``: make ``current_attempt()`` answer inside.
    ``operation`` (the metric label) defaults to the function's ``__qualname__``. ``None``
    settings come from ``error_handling.retry`` at decoration time. The result keeps the
    function's metadata (``functools.wraps``) and has ``.events`` (its
    :class:`EventPublisher`) and ``.retrier``. Generator functions are refused: their errors
    surface after the call returns, where no retry can reach them.
    """
    bare = callable(max_attempts)
    policy = RetryPolicy.from_config(
        None if bare else max_attempts, retry_on, initial_delay=initial_delay,
        max_delay=max_delay, multiplier=multiplier, jitter=jitter, retry_if=retry_if, rng=rng,
        retry_if_result=retry_if_result, max_time=max_time, wait=wait)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"with_retry cannot retry generator function {fn.__qualname__!r}")
        name = operation if operation is not None else _qualname(fn)
        retrier = Retrier(policy, operation=name, clock=clock, registry=registry,
                          logger=logger, expose_attempt=expose_attempt)
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            wrapper = _async_wrapper(cast(Callable[..., Coroutine[Any, Any, Any]], fn), retrier)
        else:
            wrapper = _sync_wrapper(fn, retrier)
        vars(wrapper).update(events=retrier.events, retrier=retrier)
        return cast(Callable[P, R], wrapper)

    return decorate(max_attempts) if bare else decorate


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def fast_path_applies(retrier: Retrier) -> bool:
    """Whether the wrapper makes the first attempt itself (the module docstring)."""
    return not retrier.expose_attempt


# --- the wrappers: the fast path lives here and nowhere else -----------------------------
#
# The first attempt inline: ``start`` is read only when max_time needs it, the result judged
# by retry_if_result only when there is one (the same test as RetryPolicy.rejects), and any
# other outcome builds the call state and hands over to the driver with the wait decided.


def _sync_wrapper(fn: Callable[P, R], retrier: Retrier) -> Callable[P, R]:
    if not fast_path_applies(retrier):
        new_call = retrier.new_call

        @functools.wraps(fn)
        def driven(*args: P.args, **kwargs: P.kwargs) -> R:
            return run_sync(new_call(), fn, args, kwargs)

        return driven

    first_try = retrier.first_try_counter()
    judge = retrier.policy.retry_if_result
    monotonic = retrier.clock.monotonic if retrier.policy.max_time is not None else None

    @functools.wraps(fn)
    def fast(*args: P.args, **kwargs: P.kwargs) -> R:
        start = monotonic() if monotonic is not None else None
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            call = RetryCall(retrier, start)
            delay = call.failed(exc)  # inside except: a retry_if error chains to exc
            if delay is None:
                raise
        else:
            if judge is None or not judge(result):
                first_try()
                return result
            call = RetryCall(retrier, start)
            delay = call.rejected(result)
            if delay is None:
                return result
        return run_sync(call, fn, args, kwargs, delay)

    return fast


def _async_wrapper(fn: Callable[..., Coroutine[Any, Any, Any]],
                   retrier: Retrier) -> Callable[..., Coroutine[Any, Any, Any]]:
    if not fast_path_applies(retrier):
        new_call = retrier.new_call

        @functools.wraps(fn)
        async def driven(*args: Any, **kwargs: Any) -> Any:
            return await run_async(new_call(), fn, args, kwargs)

        return driven

    first_try = retrier.first_try_counter()
    judge = retrier.policy.retry_if_result
    monotonic = retrier.clock.monotonic if retrier.policy.max_time is not None else None

    @functools.wraps(fn)
    async def fast(*args: Any, **kwargs: Any) -> Any:
        start = monotonic() if monotonic is not None else None
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            call = RetryCall(retrier, start)
            delay = call.failed(exc)  # inside except: a retry_if error chains to exc
            if delay is None:
                raise
        else:
            if judge is None or not judge(result):
                first_try()
                return result
            call = RetryCall(retrier, start)
            delay = call.rejected(result)
            if delay is None:
                return result
        return await run_async(call, fn, args, kwargs, delay)

    return fast


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
