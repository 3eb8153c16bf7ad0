"""A policy bound to an operation: :class:`Retrier` (call a function) and :func:`retrying` (loop).

::

    fetch_retry = Retrier(RetryPolicy.from_config(5, (IOError,)), operation="fetch")
    body = fetch_retry.call(fetch, url)
    body = await fetch_retry.call_async(fetch_async, url)

    for attempt in retrying(max_attempts=5, retry_on=IOError, operation="fetch"):
        with attempt:
            body = fetch(url)

Both announce themselves (``Retrier.named``) once, when built, and vigil.reporting binds the
outcome counter's series then; build them once per operation (at import time, in
``__init__``), not per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar, ParamSpec, TypeVar, Unpack

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import ConfigError
from vigil.error_handling.retry.attempts import (
    AsyncAttempts,
    RetryCall,
    SyncAttempts,
    run_async,
    run_sync,
)
from vigil.error_handling.retry.events import NamedRetry, RetryEvent
from vigil.error_handling.retry.policy import (
    OUTCOMES,
    ExceptionTypes,
    RetryOptions,
    RetryOutcome,
    RetryPolicy,
)
from vigil.events import EventPublisher, Hook, ReportTo
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.text import safe_text

__all__ = ["Retrier", "Retrying", "retrying"]

P = ParamSpec("P")
R = TypeVar("R")


def _uncounted() -> None:
    """An outcome nobody counts (before a reporter sets ``NamedRetry.count_calls``)."""


class Retrier:
    """A policy bound to an operation name, a clock and an event publisher.

    ``with_retry`` builds one per decorated function, ``retrying()`` one per loop object;
    build one yourself to retry calls without a decorator, like the seed's
    ``CircuitBreaker.call``. ``policy`` defaults to ``RetryPolicy.from_config()``.
    ``expose_attempt=True`` makes :func:`~vigil.error_handling.retry.current_attempt` answer
    inside each attempt. Thread-safe: a call's state lives in the call; the counts and the
    publisher are thread-safe.
    """

    __slots__ = ("_calls", "clock", "events", "expose_attempt", "operation", "policy",
                 "report_to")

    named: ClassVar[Hook[NamedRetry]] = Hook("retry")
    """Announces every retrier when it is built (:class:`NamedRetry`); vigil.reporting
    attaches its metrics and log lines here."""

    def __init__(self, policy: RetryPolicy | None = None, *, operation: str,
                 clock: Clock | None = None, registry: CollectorRegistry | None = None,
                 logger: Logger | None = None, expose_attempt: bool = False) -> None:
        if not isinstance(operation, str) or not operation:
            raise ConfigError("operation", operation, "expected a non-empty string")
        if not isinstance(expose_attempt, bool):
            raise ConfigError("expose_attempt", expose_attempt, "expected true or false")
        self.policy = policy if policy is not None else RetryPolicy.from_config()
        operation = safe_text(operation)  # the operation label: vigil.text's rule
        self.operation = operation
        self.clock = clock if clock is not None else SYSTEM_CLOCK
        self.expose_attempt = expose_attempt
        # Carried for the reporting (vigil.reporting.retries), never used here.
        self.report_to = ReportTo(registry, logger)
        registry = registry if registry is not None else instruments.default_registry()
        self.events: EventPublisher[RetryEvent] = EventPublisher(f"retry:{operation}", registry)
        self._calls: dict[RetryOutcome, Callable[[], object]] = dict.fromkeys(OUTCOMES,
                                                                               _uncounted)
        self.named.announce(NamedRetry(operation, registry, self.report_to, self.events,
                                       self._calls))

    def __repr__(self) -> str:
        return f"Retrier(operation={self.operation!r}, policy={self.policy!r})"

    def count(self, outcome: RetryOutcome) -> None:
        """One more call ended with ``outcome`` (``vigil_retry_calls_total``)."""
        self._calls[outcome]()

    def first_try_counter(self) -> Callable[[], object]:
        """The ``success_first_try`` count, as set when announced (the decorator's fast path
        holds it)."""
        return self._calls["success_first_try"]

    def new_call(self) -> RetryCall:
        """The state of one call, its first attempt beginning now."""
        return RetryCall(self, self.clock.monotonic())

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)``, retried as the policy says."""
        return run_sync(self.new_call(), fn, args, kwargs)

    async def call_async(self, fn: Callable[P, Awaitable[R]], /, *args: P.args,
                         **kwargs: P.kwargs) -> R:
        """``await fn(*args, **kwargs)``, retried as the policy says."""
        return await run_async(self.new_call(), fn, args, kwargs)


class Retrying:
    """What :func:`retrying` returns: iterate it (``for`` or ``async for``) once per call.

    Each iteration is a new call: ``for attempt in fetch_attempts: with attempt: ...``. The
    loop ends after a successful attempt; when the policy gives up on an exception, that
    exception leaves the ``with`` block (and the loop) with the give-up note; when it gives
    up on a result (``retry_if_result``), the loop ends and the last result is the caller's.
    """

    __slots__ = ("retrier",)

    def __init__(self, retrier: Retrier) -> None:
        self.retrier = retrier

    @property
    def events(self) -> EventPublisher[RetryEvent]:
        """The operation's event publisher (as ``fn.events`` of a decorated function)."""
        return self.retrier.events

    def __repr__(self) -> str:
        return f"Retrying({self.retrier!r})"

    def __iter__(self) -> SyncAttempts:
        return SyncAttempts(self.retrier.new_call())

    def __aiter__(self) -> AsyncAttempts:
        return AsyncAttempts(self.retrier.new_call())


def retrying(max_attempts: int | None = None, retry_on: ExceptionTypes = (Exception,), *,
             operation: str, clock: Clock | None = None,
             registry: CollectorRegistry | None = None, logger: Logger | None = None,
             expose_attempt: bool = False, **settings: Unpack[RetryOptions]) -> Retrying:
    """Retry a block of code: ``for attempt in retrying(...): with attempt: ...``.

    The same arguments as ``with_retry`` and the same metrics, events and log lines; works
    with ``async for`` too (the waits are then awaited). ``operation`` (the metric label) is
    required: there is no function to name it after, and one shared default would mix
    unrelated loops in one series. Read ``attempt.number`` (1-based) and ``attempt.elapsed``
    inside; with ``retry_if_result`` report the block's value with ``attempt.set_result(v)``.
    """
    policy = RetryPolicy.from_config(max_attempts, retry_on, **settings)
    return Retrying(Retrier(policy, operation=operation, clock=clock, registry=registry,
                            logger=logger, expose_attempt=expose_attempt))
