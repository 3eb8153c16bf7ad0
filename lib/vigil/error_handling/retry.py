"""Retry with exponential backoff and jitter: the seed's ``@with_retry``, on sync and async code.

::

    @with_retry(max_attempts=3, retry_on=(IOError, ConnectionError))
    async def process_file(file_path: str): ...

Shape (tenacity's, not backoff's twin sync/async modules): :class:`RetryPolicy` is the whole
decision, written once and without I/O: given the attempt that just failed and its exception it
answers :class:`RetryDecision` (retry or give up, how long to wait, why). :class:`Retrier` holds
a policy, a clock and the bound metrics; its sync and async drivers are the same short loop,
one calling ``clock.sleep`` and the other awaiting ``clock.sleep_async``.

**What is retried.** An exception that is an instance of ``retry_on`` (a class or a tuple of
classes) and, when ``retry_if`` is given, for which ``retry_if(exc)`` is true. Never retried,
whatever ``retry_on`` says: :class:`~vigil.error_handling.errors.CircuitOpenError` (the breaker
decides when to try again) and anything that is not an ``Exception`` (``KeyboardInterrupt``,
``SystemExit``, ``asyncio.CancelledError``), which propagates at once, untouched and uncounted.
``retry_if`` is asked only when a retry is otherwise possible (type matches, attempts left); if
it raises, its exception propagates with the original as ``__context__``.

**Giving up.** The exception of the last attempt propagates itself (no wrapper type to unwrap),
carrying ``exc.vigil_attempts`` (the attempts made) and a note shown in its traceback, e.g.
``vigil: gave up after 3 attempts (operation 'fetch')``. Exception classes that refuse new
attributes or notes are left as they are.

**Backoff.** Retry *n* (1-based) has the base ``b = initial_delay * multiplier ** (n - 1)``.

* ``jitter=False``: the wait is ``min(b, max_delay)``.
* ``jitter=True`` (default, ``error_handling.retry.default_jitter``): let ``hi = min(2 * b,
  max_delay)``; the wait is uniform in
  ``[max(hi / 2, initial_delay), hi]``.

Below the cap that is ``[b, 2b]``: "equal jitter" (half the window is guaranteed backoff, half
spreads clients that failed together), placed above the base rather than below it, so
``initial_delay`` is a floor jitter never undercuts: ``initial_delay=1`` waits at least a
second, as the config key says ("before jitter"). With the default multiplier 2 the windows of
consecutive retries touch (``[1, 2]``, ``[2, 4]``, ...), so below the cap waits never shrink. At
the cap the window is ``[max_delay / 2, max_delay]``: jitter is not lost during a long outage,
when synchronised clients matter most (waits there vary rather than grow). Every wait lies in
``[initial_delay, max_delay]``; ``initial_delay=0`` retries at once. Randomness comes from
``rng`` (a ``random.Random``; inject a seeded one in tests).

**Defaults** (``None``) are read when the decorator is applied (or the policy built):
``error_handling.retry.default_*`` from :func:`vigil.configure`, :data:`vigil.clock.SYSTEM_CLOCK`,
``performance_monitor.registry``, and a shared ``StructuredLogger("vigil.retry")``.

**Metrics** (labels bound when the decorator is applied):

* ``vigil_retry_calls_total{operation,outcome}``: calls, by how they ended: ``success_first_try``,
  ``success_after_retry``, ``failure_after_retry`` (failed after at least one retry, attempts
  exhausted or a later error not retryable), ``failure_without_retry`` (first attempt failed and
  was not retried: not retryable, or ``max_attempts=1``). Calls ended by a non-``Exception``
  (cancellation, interrupt) are not an outcome of the operation and are not counted.
* ``vigil_retry_attempts_total{operation,exception}``: retries performed, i.e. failed attempts
  that were followed by a retry, by the failed attempt's exception class name. The final failed
  attempt of a call is not a retry and is not counted here.

**Events.** Each decorated function (and each :class:`Retrier`) has an
:class:`~vigil.error_handling.events.EventPublisher` named ``retry:<operation>`` (its label in
``vigil_event_subscriber_failures_total``) at ``fn.events`` (also
:func:`retry_events(fn) <retry_events>`, which finds it through other decorators):
:class:`RetryScheduled` before each wait, :class:`RetrySucceeded` when a call succeeds after
retrying, :class:`RetryGaveUp` when an exception leaves the call. Built-in subscribers count
``vigil_retry_attempts_total`` and write one WARNING line per retry (``operation``, ``attempt``,
``max_attempts``, ``delay``, ``exception``, ``error``) plus one when giving up after retries. A
subscriber that raises is logged and counted by the publisher, never breaks the call.

**Cost.** A call that succeeds first time does one ``try`` and one bound counter increment: no
policy call, no clock read, no event object.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import ConfigError, get_config
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.events import EventPublisher
from vigil.monitoring import instruments
from vigil.monitoring.logs import StructuredLogger, shared_logger
from vigil.text import safe_text

__all__ = [
    "GiveUpReason",
    "RetryDecision",
    "RetryEvent",
    "RetryGaveUp",
    "RetryOutcome",
    "RetryPolicy",
    "RetryScheduled",
    "RetrySucceeded",
    "Retrier",
    "retry_events",
    "with_retry",
]

P = ParamSpec("P")
R = TypeVar("R")

RetryOutcome = Literal["success_first_try", "success_after_retry", "failure_after_retry",
                       "failure_without_retry"]
OUTCOMES: tuple[RetryOutcome, ...] = ("success_first_try", "success_after_retry",
                                      "failure_after_retry", "failure_without_retry")
GiveUpReason = Literal["attempts_exhausted", "not_retryable", "circuit_open",
                       "rejected_by_retry_if", "not_an_exception"]
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]

_RNG = random.Random()  # shared default; random() on one Random is atomic under the GIL


# --- the decision (sans I/O) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or give up (``reason``)."""

    retry: bool
    delay: float = 0.0
    reason: GiveUpReason | None = None  # None when retrying


_WHY_NOT_RETRIED: dict[GiveUpReason, Callable[[BaseException], str]] = {
    "attempts_exhausted": lambda exc: "",
    "not_retryable": lambda exc: f"{type(exc).__name__} is not in retry_on",
    "circuit_open": lambda exc: f"{type(exc).__name__} is never retried",
    "rejected_by_retry_if": lambda exc: "retry_if returned False",
    "not_an_exception": lambda exc: f"{type(exc).__name__} is not an Exception",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry and how long to wait; validated on construction, immutable, no I/O.

    Build it from explicit values, or with :meth:`from_config` to fill the unset ones from
    ``error_handling.retry.default_*``. See the module docstring for the backoff formula.
    Bad values raise :class:`~vigil.config.ConfigError` naming the argument.
    """

    max_attempts: int
    initial_delay: float
    max_delay: float
    multiplier: float
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    jitter: bool = True
    retry_if: Callable[[Exception], bool] | None = None
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_int("max_attempts", self.max_attempts, 1)
        numbers = {"initial_delay": 0.0, "max_delay": 0.0, "multiplier": 1.0}
        for name, minimum in numbers.items():
            _check_number(name, getattr(self, name), minimum)
        if self.max_delay < self.initial_delay:
            raise ConfigError("max_delay", self.max_delay,
                              f"must be >= initial_delay ({self.initial_delay!r})")
        for name in numbers:  # as floats, so multiplier ** n never becomes a huge (slow) int
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on))
        if not isinstance(self.jitter, bool):
            raise ConfigError("jitter", self.jitter, "expected true or false")
        if self.retry_if is not None and not callable(self.retry_if):
            raise ConfigError("retry_if", self.retry_if,
                              "expected None or a callable taking the exception")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise ConfigError("rng", self.rng, "expected None or a random.Random")

    @classmethod
    def from_config(cls, max_attempts: int | None = None,
                    retry_on: ExceptionTypes = (Exception,), *,
                    initial_delay: float | None = None, max_delay: float | None = None,
                    multiplier: float | None = None, jitter: bool | None = None,
                    retry_if: Callable[[Exception], bool] | None = None,
                    rng: random.Random | None = None) -> RetryPolicy:
        """A policy whose ``None`` values come from the active ``error_handling.retry``."""
        if callable(max_attempts):  # @with_retry without parentheses
            raise ConfigError("max_attempts", max_attempts, "expected an integer >= 1",
                              hint="write @with_retry() with parentheses")
        defaults = get_config().error_handling.retry
        return cls(
            max_attempts=defaults.default_max_attempts if max_attempts is None else max_attempts,
            initial_delay=defaults.default_initial_delay if initial_delay is None
            else initial_delay,
            max_delay=defaults.default_max_delay if max_delay is None else max_delay,
            multiplier=defaults.default_multiplier if multiplier is None else multiplier,
            retry_on=cast(tuple[type[BaseException], ...], retry_on),
            jitter=defaults.default_jitter if jitter is None else jitter,
            retry_if=retry_if, rng=rng)

    def decide(self, attempt: int, error: BaseException) -> RetryDecision:
        """After attempt number ``attempt`` (1-based) failed with ``error``: retry or give up.

        Checks, in order: not an ``Exception``, ``CircuitOpenError``, not in ``retry_on``,
        no attempts left, then ``retry_if`` (so the predicate only runs when it decides).
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt!r}")
        if not isinstance(error, Exception):
            return RetryDecision(False, reason="not_an_exception")
        if isinstance(error, CircuitOpenError):
            return RetryDecision(False, reason="circuit_open")
        if not isinstance(error, self.retry_on):
            return RetryDecision(False, reason="not_retryable")
        if attempt >= self.max_attempts:
            return RetryDecision(False, reason="attempts_exhausted")
        if self.retry_if is not None and not self.retry_if(error):
            return RetryDecision(False, reason="rejected_by_retry_if")
        return RetryDecision(True, delay=self.delay(attempt))

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), jitter included."""
        if self.initial_delay == 0:
            return 0.0
        try:
            base = self.initial_delay * self.multiplier ** (retry - 1)
        except OverflowError:  # thousands of retries: the cap applies long before
            base = math.inf
        if not self.jitter:
            return min(base, self.max_delay)
        high = min(2.0 * base, self.max_delay)
        low = max(high / 2.0, self.initial_delay)
        rng = self.rng if self.rng is not None else _RNG
        return low + (high - low) * rng.random()


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"expected an integer >= {minimum}")


def _check_number(name: str, value: object, minimum: float) -> None:
    ok = (isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and value >= minimum)
    if not ok:
        raise ConfigError(name, value, f"expected a finite number >= {minimum:g}")


def _exception_types(value: object) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple of exception classes (a single class or a list is accepted)."""
    types = (value,) if isinstance(value, type) else value
    if (not isinstance(types, tuple | list) or not types
            or not all(isinstance(t, type) and issubclass(t, BaseException) for t in types)):
        raise ConfigError("retry_on", value,
                          "expected an exception class or a non-empty tuple of them")
    return tuple(types)


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """Attempt ``attempt`` of ``max_attempts`` failed with ``exception``; next after ``delay`` s."""

    operation: str
    attempt: int
    max_attempts: int
    delay: float
    exception: Exception


@dataclass(frozen=True, slots=True)
class RetrySucceeded:
    """The call succeeded on attempt ``attempts`` after retrying."""

    operation: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RetryGaveUp:
    """``exception`` leaves the call after ``attempts`` attempts, for ``reason``."""

    operation: str
    attempts: int
    reason: GiveUpReason
    exception: Exception


RetryEvent = RetryScheduled | RetrySucceeded | RetryGaveUp


def _safe_str(exc: BaseException) -> str:
    # vigil.text's rule: a broken __str__ must not cost the log line.
    return safe_text(exc)[:500]


class _MetricsSubscriber:
    """``vigil_retry_attempts_total{operation,exception}``, one increment per retry."""

    def __init__(self, registry: CollectorRegistry, operation: str) -> None:
        self._family = instruments.counter(
            registry, "vigil_retry_attempts_total",
            "Retries performed: failed attempts followed by another attempt, by exception class.",
            ["operation", "exception"])
        self._operation = operation

    def __call__(self, event: RetryEvent) -> None:
        if isinstance(event, RetryScheduled):
            self._family.labels(self._operation, type(event.exception).__name__).inc()


class _LogSubscriber:
    """One WARNING line per retry, and one when a call gives up after retrying."""

    def __init__(self, logger: StructuredLogger) -> None:
        self._logger = logger

    def __call__(self, event: RetryEvent) -> None:
        if isinstance(event, RetryScheduled):
            self._logger.warning(
                f"{event.operation}: attempt {event.attempt} of {event.max_attempts} failed; "
                f"retrying in {event.delay:.3f}s",
                metadata={"operation": event.operation, "attempt": event.attempt,
                          "max_attempts": event.max_attempts, "delay": event.delay,
                          "exception": type(event.exception).__name__,
                          "error": _safe_str(event.exception)})
        elif isinstance(event, RetryGaveUp) and event.attempts > 1:
            self._logger.warning(
                f"{event.operation}: gave up after {event.attempts} attempts",
                metadata={"operation": event.operation, "attempts": event.attempts,
                          "reason": event.reason, "exception": type(event.exception).__name__,
                          "error": _safe_str(event.exception)})




def _default_registry() -> CollectorRegistry:
    from vigil.monitoring import metrics  # attribute read late: the registry the exporter serves

    return metrics.performance_monitor.registry


# --- the drivers --------------------------------------------------------------------------


class Retrier:
    """A policy bound to an operation name, a clock, metrics and an event publisher.

    ``with_retry`` builds one per decorated function; build one yourself to retry calls
    without a decorator, like the seed's ``CircuitBreaker.call``::

        fetch_retry = Retrier(RetryPolicy.from_config(5, (IOError,)), operation="fetch")
        body = fetch_retry.call(fetch, url)
        body = await fetch_retry.call_async(fetch_async, url)

    ``policy`` defaults to ``RetryPolicy.from_config()``. Thread-safe: a call's state lives in
    the call; metrics and the publisher are thread-safe.
    """

    __slots__ = ("_calls", "_first_try", "clock", "events", "operation", "policy")

    def __init__(self, policy: RetryPolicy | None = None, *, operation: str,
                 clock: Clock | None = None, registry: CollectorRegistry | None = None,
                 logger: StructuredLogger | None = None) -> None:
        if not isinstance(operation, str) or not operation:
            raise ConfigError("operation", operation, "expected a non-empty string")
        self.policy = policy if policy is not None else RetryPolicy.from_config()
        operation = safe_text(operation)  # the operation label: vigil.text's rule
        self.operation = operation
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        registry = registry if registry is not None else _default_registry()
        family = instruments.counter(
            registry, "vigil_retry_calls_total",
            "Calls through with_retry, by outcome (success_first_try, success_after_retry, "
            "failure_after_retry, failure_without_retry).", ["operation", "outcome"])
        # Bound once: the success path is a single increment of a child held here.
        self._calls: dict[RetryOutcome, Any] = {o: family.labels(operation, o) for o in OUTCOMES}
        self._first_try: Callable[[], None] = self._calls["success_first_try"].inc
        self.events: EventPublisher[RetryEvent] = EventPublisher(f"retry:{operation}", registry)
        self.events.subscribe(_MetricsSubscriber(registry, operation))
        log = logger if logger is not None else shared_logger("vigil.retry")
        self.events.subscribe(_LogSubscriber(log))

    def __repr__(self) -> str:
        return f"Retrier(operation={self.operation!r}, policy={self.policy!r})"

    # The first attempt is inlined in call/call_async and in the decorator's wrappers; the
    # rest of the loop (failures only) lives in _retry_sync/_retry_async. decide() is called
    # inside the except block, so an exception from retry_if chains to the one it judged.

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)``, retried as the policy says."""
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            error, decision = exc, self.policy.decide(1, exc)
        else:
            self._first_try()
            return result
        return self._retry_sync(fn, args, kwargs, error, decision)

    async def call_async(self, fn: Callable[P, Awaitable[R]], /, *args: P.args,
                         **kwargs: P.kwargs) -> R:
        """``await fn(*args, **kwargs)``, retried as the policy says."""
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            error, decision = exc, self.policy.decide(1, exc)
        else:
            self._first_try()
            return result
        return await self._retry_async(fn, args, kwargs, error, decision)

    def _retry_sync(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any],
                    error: Exception, decision: RetryDecision) -> R:
        attempt = 1
        while decision.retry:
            self._scheduled(attempt, decision.delay, error)
            self.clock.sleep(decision.delay)
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                error, decision = exc, self.policy.decide(attempt, exc)
            else:
                self._succeeded(attempt)
                return result
        self._give_up(attempt, decision, error)
        try:
            raise error  # outside any except block: no chain to an earlier attempt's error
        finally:
            del error  # break the frame <-> traceback cycle

    async def _retry_async(self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...],
                           kwargs: dict[str, Any], error: Exception,
                           decision: RetryDecision) -> R:
        attempt = 1
        while decision.retry:
            self._scheduled(attempt, decision.delay, error)
            await self.clock.sleep_async(decision.delay)
            attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                error, decision = exc, self.policy.decide(attempt, exc)
            else:
                self._succeeded(attempt)
                return result
        self._give_up(attempt, decision, error)
        try:
            raise error  # outside any except block: no chain to an earlier attempt's error
        finally:
            del error  # break the frame <-> traceback cycle

    # --- what both drivers report -----------------------------------------------------

    def _scheduled(self, attempt: int, delay: float, error: Exception) -> None:
        self.events.publish(RetryScheduled(self.operation, attempt, self.policy.max_attempts,
                                           delay, error))

    def _succeeded(self, attempts: int) -> None:
        self._calls["success_after_retry"].inc()
        self.events.publish(RetrySucceeded(self.operation, attempts))

    def _give_up(self, attempts: int, decision: RetryDecision, error: Exception) -> None:
        """Count, annotate and publish a failed call; the driver then raises ``error``."""
        reason: GiveUpReason = decision.reason or "attempts_exhausted"
        outcome: RetryOutcome = "failure_after_retry" if attempts > 1 else "failure_without_retry"
        self._calls[outcome].inc()
        _annotate(error, attempts, self.operation, reason)
        self.events.publish(RetryGaveUp(self.operation, attempts, reason, error))


def _annotate(error: Exception, attempts: int, operation: str, reason: GiveUpReason) -> None:
    """Attach the attempt count; exception classes that refuse attributes/notes keep going."""
    plural = "s" if attempts != 1 else ""
    note = f"vigil: gave up after {attempts} attempt{plural} (operation {operation!r})"
    why = _WHY_NOT_RETRIED[reason](error)
    if why:
        note += f": {why}"
    with contextlib.suppress(Exception):
        error.vigil_attempts = attempts  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        error.add_note(note)


# --- the decorator ------------------------------------------------------------------------


def with_retry(max_attempts: int | None = None, retry_on: ExceptionTypes = (Exception,), *,
               initial_delay: float | None = None, max_delay: float | None = None,
               multiplier: float | None = None, jitter: bool | None = None,
               retry_if: Callable[[Exception], bool] | None = None,
               operation: str | None = None, clock: Clock | None = None,
               registry: CollectorRegistry | None = None, logger: StructuredLogger | None = None,
               rng: random.Random | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry the decorated function (sync or ``async def``) with exponential backoff and jitter.

    ``max_attempts`` counts the first attempt. ``retry_on``: exception class(es) worth retrying;
    ``retry_if(exc)``: an extra veto. ``operation`` (the metric label) defaults to the
    function's ``__qualname__``. ``None`` settings come from ``error_handling.retry`` at
    decoration time. The result keeps the function's metadata (``functools.wraps``) and has
    ``.events`` (its :class:`EventPublisher`) and ``.retrier``. Generator functions are refused:
    their errors surface after the call returns, where no retry can reach them.
    Everything else is in the module docstring.
    """
    policy = RetryPolicy.from_config(
        max_attempts, retry_on, initial_delay=initial_delay, max_delay=max_delay,
        multiplier=multiplier, jitter=jitter, retry_if=retry_if, rng=rng)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"with_retry cannot retry generator function {fn.__qualname__!r}")
        name = operation if operation is not None else _qualname(fn)
        retrier = Retrier(policy, operation=name, clock=clock,
                          registry=registry, logger=logger)
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            wrapper = _async_wrapper(cast(Callable[..., Coroutine[Any, Any, Any]], fn), retrier)
        else:
            wrapper = _sync_wrapper(fn, retrier)
        vars(wrapper).update(events=retrier.events, retrier=retrier)
        return cast(Callable[P, R], wrapper)

    return decorate


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


# The wrappers repeat Retrier.call's first attempt instead of calling it: one Python call
# less per success is a measurable share of a ~1 µs budget.


def _sync_wrapper(fn: Callable[P, R], retrier: Retrier) -> Callable[P, R]:
    decide, first_try, retry = retrier.policy.decide, retrier._first_try, retrier._retry_sync

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            error, decision = exc, decide(1, exc)
        else:
            first_try()
            return result
        return retry(fn, args, kwargs, error, decision)

    return wrapper


def _async_wrapper(fn: Callable[..., Coroutine[Any, Any, Any]],
                   retrier: Retrier) -> Callable[..., Coroutine[Any, Any, Any]]:
    decide, first_try, retry = retrier.policy.decide, retrier._first_try, retrier._retry_async

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            error, decision = exc, decide(1, exc)
        else:
            first_try()
            return result
        return await retry(fn, args, kwargs, error, decision)

    return wrapper


def retry_events(fn: Callable[..., Any]) -> EventPublisher[RetryEvent]:
    """The event publisher of a ``with_retry`` function, found through other decorators.

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
    raise TypeError(f"{_qualname(fn)!r} is not decorated with with_retry")
