"""One call's attempts: the state, the reporting of each decision, and the two drivers.

This is tenacity's ``Retrying.iter()`` / ``AttemptManager`` shape, split in three:

* :class:`RetryCall` is one call's state (attempt number, start time; tenacity's
  ``RetryCallState``). ``failed(exc)`` and ``returned(result)`` ask the policy, count the
  outcome, publish the event and annotate a give-up, then answer the seconds to wait before
  the next attempt, or ``None`` when the call is over. No I/O: nothing here sleeps.
* :class:`Attempt` is one attempt, used as ``with attempt:``. Its ``__exit__`` hands the
  body's exception (or its result, :meth:`Attempt.set_result`) to the call: a retried
  exception is suppressed, a final one propagates untouched (the original object, with the
  give-up note), a non-``Exception`` propagates at once, uncounted.
* :class:`SyncAttempts` and :class:`AsyncAttempts` iterate the attempts of one call; their
  shared ``_step()`` decides, and the only difference is ``clock.sleep`` against ``await
  clock.sleep_async``. :func:`run_sync` / :func:`run_async` call a function through them: the
  one retry loop per protocol that ``Retrier.call``, ``retrying()`` and the decorator use.

:func:`current_attempt` answers the running :class:`Attempt` inside a retry built with
``expose_attempt=True`` (a ``ContextVar``, set in ``__enter__`` and reset in ``__exit__``),
else ``None``. Setting and resetting it costs about 80 ns per attempt, a quarter of a
first-try success, so it is not done unless asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from vigil.error_handling.retry.events import (
    RetryGaveUp,
    RetryScheduled,
    RetrySucceeded,
    annotate,
)
from vigil.error_handling.retry.policy import GiveUpReason, RetryDecision

if TYPE_CHECKING:
    from vigil.error_handling.retry.retrier import Retrier

__all__ = [
    "AsyncAttempts",
    "Attempt",
    "RetryCall",
    "SyncAttempts",
    "current_attempt",
    "run_async",
    "run_sync",
]

R = TypeVar("R")

_CURRENT: ContextVar[Attempt | None] = ContextVar("vigil.retry.current_attempt", default=None)


def current_attempt() -> Attempt | None:
    """The running attempt of the innermost retry built with ``expose_attempt=True``.

    Inside a function decorated ``@with_retry(..., expose_attempt=True)`` (or the body of a
    ``retrying(..., expose_attempt=True)`` attempt): ``current_attempt().number`` is 1 on
    the first attempt, ``.elapsed`` the seconds since the first one began. Elsewhere
    ``None``. A retry without ``expose_attempt`` sets nothing, so code it calls still sees
    an outer exposing retry's attempt.
    """
    return _CURRENT.get()


class RetryCall:
    """One call's retry state and the reporting of the policy's answers (no I/O).

    ``start`` is the clock's ``monotonic()`` when the first attempt began. It is ``None``
    only on the decorator's fast path when the policy has no ``max_time`` (its attempts are
    not exposed either): nothing there reads :attr:`elapsed`.
    """

    __slots__ = ("number", "retrier", "start")

    def __init__(self, retrier: Retrier, start: float | None = None) -> None:
        self.retrier = retrier
        self.number = 1  # the attempt running or just ended
        self.start = start

    @property
    def elapsed(self) -> float:
        """Seconds since the first attempt began (the retrier's clock)."""
        start = self.start
        return 0.0 if start is None else self.retrier.clock.monotonic() - start

    def failed(self, error: Exception) -> float | None:
        """Attempt ``number`` raised ``error``: seconds to wait before the next one, or
        ``None`` (given up: counted, annotated and published; the driver re-raises)."""
        retrier = self.retrier
        policy = retrier.policy
        elapsed = self.elapsed if policy.max_time is not None else 0.0
        decision = policy.decide(self.number, error, elapsed=elapsed)
        if decision.retry:
            return self._scheduled(decision, error, None)
        reason: GiveUpReason = decision.reason or "attempts_exhausted"
        self._gave_up(reason)
        annotate(error, self.number, retrier.operation, policy.explain(reason, error))
        retrier.events.publish(RetryGaveUp(retrier.operation, self.number, reason, error))
        return None

    def returned(self, result: object) -> float | None:
        """Attempt ``number`` returned ``result``: seconds to wait before the next one, or
        ``None`` (the call is over and returns ``result``: a success, or a give-up)."""
        if self.retrier.policy.rejects(result):
            return self.rejected(result)
        retrier = self.retrier
        if self.number == 1:
            retrier.count("success_first_try")
        else:
            retrier.count("success_after_retry")
            retrier.events.publish(RetrySucceeded(retrier.operation, self.number))
        return None

    def rejected(self, result: object) -> float | None:
        """Attempt ``number`` returned ``result``, which ``retry_if_result`` rejected: as
        :meth:`returned` after that check (the decorator's fast path made it already)."""
        retrier = self.retrier
        policy = retrier.policy
        elapsed = self.elapsed if policy.max_time is not None else 0.0
        decision = policy.decide_rejected(self.number, elapsed=elapsed)
        if decision.retry:
            return self._scheduled(decision, None, result)
        reason: GiveUpReason = decision.reason or "attempts_exhausted"
        self._gave_up(reason)
        retrier.events.publish(RetryGaveUp(retrier.operation, self.number, reason, None, result))
        return None

    def _scheduled(self, decision: RetryDecision, error: Exception | None,
                   result: object) -> float:
        retrier = self.retrier
        retrier.events.publish(RetryScheduled(retrier.operation, self.number,
                                              retrier.policy.max_attempts, decision.delay,
                                              error, result))
        self.number += 1
        return decision.delay

    def _gave_up(self, reason: GiveUpReason) -> None:
        self.retrier.count("failure_after_retry" if self.number > 1 else "failure_without_retry")


_NEW, _ENTERED, _EXITED = 0, 1, 2


class Attempt:
    """One attempt of a retried call: ``with attempt: ...``.

    ``number`` (1-based) and ``elapsed`` (seconds since the call's first attempt began) are
    readable inside. With ``retry_if_result``, report the body's value with
    :meth:`set_result` (a body that reports nothing returned ``None``, as in tenacity).
    """

    __slots__ = ("_call", "_next", "_result", "_state", "_token", "number")

    def __init__(self, call: RetryCall) -> None:
        self._call = call
        self.number: int = call.number
        self._result: Any = None
        self._state = _NEW
        self._next: float | None = None
        self._token: Token[Attempt | None] | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the call's first attempt began, read from the retry's clock."""
        return self._call.elapsed

    @property
    def operation(self) -> str:
        """The retry's operation name (its metric label)."""
        return self._call.retrier.operation

    @property
    def result(self) -> Any:
        """The value given to :meth:`set_result` (``None`` until then)."""
        return self._result

    def set_result(self, value: object) -> None:
        """The body's result, judged by ``retry_if_result`` when the block ends."""
        self._result = value

    def __repr__(self) -> str:
        return f"Attempt(operation={self.operation!r}, number={self.number})"

    def __enter__(self) -> Attempt:
        if self._state != _NEW:
            raise RuntimeError("an Attempt is entered once: `with attempt:` inside the loop")
        self._state = _ENTERED
        if self._call.retrier.expose_attempt:
            self._token = _CURRENT.set(self)
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self._state = _EXITED  # _next stays None (the call is over) if the policy raises
        try:
            if exc is None:
                self._next = self._call.returned(self._result)
                return False
            if not isinstance(exc, Exception):  # interrupt, exit, cancellation: not an outcome
                return False
            # Called while ``exc`` is being handled: an exception from retry_if or the wait
            # strategy gets it as __context__.
            self._next = self._call.failed(exc)
            return self._next is not None  # True: suppressed, the loop goes on
        finally:
            if self._token is not None:
                _CURRENT.reset(self._token)
                self._token = None

    def _finish(self) -> float | None:
        if self._state != _EXITED:
            raise RuntimeError("use each attempt as `with attempt:` "
                               "(for attempt in retrying(...): with attempt: ...)")
        return self._next


class _End(enum.Enum):
    DONE = "done"


_DONE: Final = _End.DONE


class _Attempts:
    """The iteration's decision, shared by both drivers: what to do before the next attempt."""

    __slots__ = ("_call", "_done", "_last", "_pending")

    def __init__(self, call: RetryCall, pending: float | None = None) -> None:
        self._call = call
        self._last: Attempt | None = None
        self._pending = pending  # a wait decided before the first attempt yielded here
        self._done = False

    @property
    def call(self) -> RetryCall:
        """The call these attempts belong to."""
        return self._call

    def _step(self) -> float | Literal[_End.DONE] | None:
        """Seconds to wait before the next attempt (``None``: start it now), or ``_DONE``."""
        last = self._last
        if last is None:
            return self._pending
        if self._done:
            return _DONE
        delay = last._finish()
        if delay is None:
            self._done = True
            return _DONE
        return delay

    def _begin(self) -> Attempt:
        self._last = attempt = Attempt(self._call)
        return attempt

    def _result(self) -> Any:
        """The last attempt's result, once the iteration is over (the drivers return it)."""
        return self._last._result if self._last is not None else None


class SyncAttempts(_Attempts):
    """``for attempt in ...``: the sync driver (sleeps with ``clock.sleep``)."""

    __slots__ = ()

    def __iter__(self) -> SyncAttempts:
        return self

    def __next__(self) -> Attempt:
        delay = self._step()
        if delay is _DONE:
            raise StopIteration
        if delay is not None:
            self._call.retrier.clock.sleep(delay)
        return self._begin()


class AsyncAttempts(_Attempts):
    """``async for attempt in ...``: the async driver (awaits ``clock.sleep_async``)."""

    __slots__ = ()

    def __aiter__(self) -> AsyncAttempts:
        return self

    async def __anext__(self) -> Attempt:
        delay = self._step()
        if delay is _DONE:
            raise StopAsyncIteration
        if delay is not None:
            await self._call.retrier.clock.sleep_async(delay)
        return self._begin()


def run_sync(call: RetryCall, fn: Callable[..., R], args: tuple[Any, ...],
             kwargs: dict[str, Any], pending: float | None = None) -> R:
    """``fn(*args, **kwargs)`` through the attempts of ``call``; ``pending``: a wait already
    decided (the decorator's fast path hands over after its first attempt failed)."""
    attempts = SyncAttempts(call, pending)
    for attempt in attempts:
        with attempt:
            attempt._result = fn(*args, **kwargs)
    result: R = attempts._result()
    return result


async def run_async(call: RetryCall, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...],
                    kwargs: dict[str, Any], pending: float | None = None) -> R:
    """``await fn(*args, **kwargs)`` through the attempts of ``call`` (see :func:`run_sync`)."""
    attempts = AsyncAttempts(call, pending)
    async for attempt in attempts:
        with attempt:
            attempt._result = await fn(*args, **kwargs)
    result: R = attempts._result()
    return result
