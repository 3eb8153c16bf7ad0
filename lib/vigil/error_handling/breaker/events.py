"""What a breaker publishes: frozen event records, built by the state machine and the driver.

``cb.events`` carries :class:`StateTransition`, :class:`CallRejected`,
:class:`FailureRateExceeded`, :class:`SlowCallRateExceeded` and :class:`PredicateFailed`;
``cb.call_events`` carries one :class:`CallOutcome` per call that ran. Times (``at``) are the
breaker clock's monotonic seconds.

:class:`NamedBreaker` is what a breaker announces on ``CircuitBreaker.named`` (a
:class:`vigil.events.Hook`) when it is named: everything a reporter attaches to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from prometheus_client import CollectorRegistry

from vigil.error_handling.breaker.states import CircuitState, Outcome
from vigil.events import EventPublisher, ReportTo

__all__ = [
    "BreakerEvent",
    "CallOutcome",
    "CallRejected",
    "FailureRateExceeded",
    "NamedBreaker",
    "PredicateFailed",
    "RateExceeded",
    "SlowCallRateExceeded",
    "StateTransition",
]


@dataclass(frozen=True, slots=True)
class StateTransition:
    """The breaker ``breaker`` went ``from_state`` -> ``to_state`` at ``at`` (its clock's
    monotonic seconds) because of ``reason`` (human-readable: ``"5 failures in a row"``)."""

    breaker: str
    from_state: CircuitState
    to_state: CircuitState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class CallRejected:
    """A call was rejected without running: the breaker was ``state``; ``retry_after`` is the
    seconds until it lets a probe through (0 in ``HALF_OPEN``, where all slots were taken;
    ``math.inf`` in ``FORCED_OPEN``, which schedules no probe)."""

    breaker: str
    state: CircuitState
    retry_after: float


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A call that ran ended as ``outcome`` (success, slow, failure, ignored) after
    ``duration`` seconds. Published on ``call_events`` only while it has subscribers."""

    breaker: str
    outcome: Outcome
    duration: float


@dataclass(frozen=True, slots=True)
class RateExceeded:
    """A rate over the sliding window's ``calls`` calls reached ``rate`` >= ``threshold`` at
    ``at`` while the breaker was ``state``: the fields of the two events below (subscribe to
    either by its own class)."""

    breaker: str
    rate: float
    threshold: float
    calls: int
    state: CircuitState
    at: float


@dataclass(frozen=True, slots=True)
class FailureRateExceeded(RateExceeded):
    """Resilience4j's ``CircuitBreakerOnFailureRateExceededEvent``: the failure rate reached
    ``failure_rate_threshold``.

    Published just before the ``CLOSED`` -> ``OPEN`` transition it causes; in
    ``METRICS_ONLY`` (which never opens by itself) once each time the rate reaches the
    threshold after being below it.
    """


@dataclass(frozen=True, slots=True)
class SlowCallRateExceeded(RateExceeded):
    """Resilience4j's ``CircuitBreakerOnSlowCallRateExceededEvent``: the share of calls
    slower than ``slow_call_duration`` reached ``slow_call_rate_threshold``; published as
    :class:`FailureRateExceeded` is."""


@dataclass(frozen=True, slots=True)
class PredicateFailed:
    """A user predicate raised while judging a call (``expected_exception`` given as a
    function, or ``failure_on_result``); the call was counted as a failure. ``subject`` is the
    class name of what it was judging (the exception, or the returned value). Published inside
    the ``except`` that caught it: a subscriber that logs gets the traceback."""

    breaker: str
    predicate: Literal["expected_exception", "failure_on_result"]
    subject: str


BreakerEvent: TypeAlias = (StateTransition | CallRejected | CallOutcome | FailureRateExceeded
                           | SlowCallRateExceeded | PredicateFailed)


@dataclass(frozen=True, slots=True)
class NamedBreaker:
    """A breaker was named: what it announces on ``CircuitBreaker.named``.

    ``events`` and ``call_events`` are the breaker's publishers. ``count_calls`` holds one
    function per outcome that the driver calls for every call that ran or was rejected (a
    no-op until set): the per-call count is the benchmarked hot path, and a dict entry called
    directly costs what a bound counter did, where a :class:`CallOutcome` event per call would
    cost an object and a delivery loop. Set an entry to count that outcome; wrap the one
    already there to add to it. ``forked`` publishes the breaker's state in a forked child
    (prometheus_client gives the child fresh per-pid files, where a gauge must be set again).
    """

    name: str
    registry: CollectorRegistry
    report_to: ReportTo
    events: EventPublisher[BreakerEvent]
    call_events: EventPublisher[CallOutcome]
    count_calls: dict[Outcome, Callable[[], object]]
    forked: EventPublisher[CircuitState]
