"""One protected run, as a context manager: the primitive behind ``cb.protect()`` and ``@cb``
on generator functions.

:class:`Protection` takes a permit from the breaker's state machine on entry (raising
:class:`~vigil.error_handling.errors.CircuitOpenError` when rejected: there is no fallback for
a block) and reports the block's outcome on exit, through the breaker's own settle methods, the
ones ``call()`` and ``call_async()`` use (so a block and a call are counted alike).

A generator is one protected run from its first ``next()``/``send()`` (or ``asend``) to its end:
the permit is taken when it starts (a rejection raises there), the outcome is recorded when it
returns (success), raises (a failure per ``expected_exception``, else ignored) or is closed
early by ``close()``/``aclose()`` or garbage collection. An early close is a *success*: the
generator had produced every item asked of it without failing (counting it as ignored would
leave a HALF_OPEN breaker whose probes are all closed early probing forever). Its duration runs
from the first ``next()`` to the end, the consumer's time between items included. (An async
generator dropped while ``asyncio.run`` is cancelling its tasks may receive the cancellation
instead of ``GeneratorExit``: counted as ignored, like any cancellation.)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from vigil.error_handling.breaker.events import CallRejected

if TYPE_CHECKING:
    from vigil.error_handling.breaker.driver import CircuitBreaker
    from vigil.error_handling.breaker.machine import BreakerStateMachine

__all__ = ["NO_RESULT", "Protection", "guard_async_generator", "guard_generator"]

NO_RESULT: Final = object()  # a block has no result for failure_on_result to judge


class Protection:
    """``with cb.protect():`` / ``async with cb.protect():``, one block at a time.

    Entering takes the permit (or raises CircuitOpenError); leaving records the outcome: a
    block that finishes normally is a success (or ``slow``), an exception counts per
    ``expected_exception`` and propagates unchanged, ``GeneratorExit`` is a success (the
    enclosing generator was closed early). The same object may be entered again once it has
    exited; make one per concurrent block.
    """

    __slots__ = ("_breaker", "_core", "_permit", "_start")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._core: BreakerStateMachine | None = None
        self._permit = 0
        self._start = 0.0

    def __enter__(self) -> Protection:
        if self._core is not None:
            raise RuntimeError("this protect() block is already running; call cb.protect() "
                               "for each block")
        breaker = self._breaker
        core = breaker._core or breaker._bind()
        start = breaker._now()
        permit = core.try_acquire(start)
        if isinstance(permit, CallRejected):
            raise breaker._open_error(permit)
        self._core, self._permit, self._start = core, permit, start
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Returns None: the exception, if any, always propagates.
        core = self._core
        if core is None:
            return
        self._core = None
        if exc is None:
            self._breaker._settle_result(core, self._permit, self._start, NO_RESULT)
        else:
            self._breaker._settle_error(core, self._permit, self._start, exc)

    async def __aenter__(self) -> Protection:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


def guard_generator(breaker: CircuitBreaker,
                    fn: Callable[..., Generator[Any, Any, Any]]
                    ) -> Callable[..., Generator[Any, Any, Any]]:
    """A generator function running ``fn``'s generator as one protected run."""

    def generator_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # The body starts at the first next(): that is when the permit is taken. yield from
        # forwards send(), throw() and close() to fn's generator.
        with Protection(breaker):
            return (yield from fn(*args, **kwargs))

    return generator_wrapper


def guard_async_generator(breaker: CircuitBreaker,
                          fn: Callable[..., AsyncGenerator[Any, Any]]
                          ) -> Callable[..., AsyncGenerator[Any, Any]]:
    """An async generator function running ``fn``'s as one protected run (``asend``,
    ``athrow`` and ``aclose`` are forwarded: async generators have no ``yield from``)."""

    async def async_generator_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        with Protection(breaker):
            inner = fn(*args, **kwargs)
            try:
                item = await inner.__anext__()
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await inner.aclose()
                        raise
                    except BaseException as thrown:
                        item = await inner.athrow(thrown)
                    else:
                        item = await inner.asend(sent)
            except StopAsyncIteration:
                return

    return async_generator_wrapper
