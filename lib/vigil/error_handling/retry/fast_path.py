"""The one trick of the retry package, kept here and only here: **the first-try fast path**.

The wrapper makes the first attempt itself. A success is one ``try`` and one counter call: no
call state, no policy call, no event, and no clock read unless ``max_time`` needs the start
(plus the ``retry_if_result`` predicate when there is one, the same test as
``RetryPolicy.rejects``). Any other outcome builds the call state (:class:`RetryCall`) and
hands over to the driver with the wait already decided. That saves the driver's per-call
objects: ``bench/retry_options.py`` measures the driver from the first attempt
(``expose_attempt``) at about 5x the fast path, 1 to 1.7x backoff's decorator, where the
bench's target is 0.5x (bench/RESULTS.md: 0.20x sync, 0.24x async with the fast path).

The sync and async wrappers are twins that differ only in ``await``: Python has no way to
write the two once without an object or a generator per call, which is what the trick saves.
``expose_attempt=True`` needs an :class:`Attempt` in the context variable from the first
attempt on, so it calls the driver directly. ``tests/unit/error_handling/test_retry_decorator.py``
pins both: what the fast path does not do, and that it reports exactly what the driver does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from vigil.error_handling.retry.attempts import RetryCall, run_async, run_sync
from vigil.error_handling.retry.retrier import Retrier

__all__ = ["async_wrapper", "fast_path_applies", "sync_wrapper"]

P = ParamSpec("P")
R = TypeVar("R")


def fast_path_applies(retrier: Retrier) -> bool:
    """Whether the wrapper makes the first attempt itself (the module docstring)."""
    return not retrier.expose_attempt


def sync_wrapper(fn: Callable[P, R], retrier: Retrier) -> Callable[P, R]:
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


def async_wrapper(fn: Callable[..., Coroutine[Any, Any, Any]],
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
