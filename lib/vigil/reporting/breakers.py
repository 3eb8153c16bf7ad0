"""What a named breaker reports: its metrics, a log line per transition or exceeded rate, and
an alert when it opens. :func:`attach_breaker` builds a :class:`Reporter` for each breaker
announced on ``CircuitBreaker.named`` and subscribes it to the breaker's events.

Metrics (on the breaker's registry; label children bound once, when the breaker is named):

* ``vigil_circuit_breaker_state{breaker,state}`` gauge: 1 for the current state, 0 for the
  five others; all six series exist from the moment the breaker is named.
* ``vigil_circuit_breaker_transitions_total{breaker,from_state,to_state}`` counter.
* ``vigil_circuit_breaker_calls_total{breaker,outcome}`` counter (``success``, ``slow``,
  ``failure``, ``ignored``, ``rejected``); the driver counts the calls that ran, this module
  the rejected ones.
* ``vigil_circuit_breaker_rate_exceeded_total{breaker,rate}`` counter: the failure rate
  (``rate="failure"``) or slow-call rate (``"slow"``) reached its threshold.

The alert goes to the breaker's ``alert_manager=``, or else to
``vigil.monitoring.alerts.alert_manager`` read as a module attribute when the alert is sent (so
a breaker that never opens never creates the default alert manager). The log lines go to the
breaker's ``logger=``, or else to a shared ``vigil.circuit_breaker`` logger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry

from vigil.error_handling.breaker.events import (
    BreakerEvent,
    CallRejected,
    FailureRateExceeded,
    NamedBreaker,
    PredicateFailed,
    SlowCallRateExceeded,
    StateTransition,
)
from vigil.error_handling.breaker.registry import all_breakers
from vigil.error_handling.breaker.states import OUTCOMES, REJECTED, CircuitState, Outcome
from vigil.monitoring import alerts as _alerts
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import shared_logger
from vigil.reporting import failures

__all__ = [
    "AlertSender",
    "CALLS_METRIC",
    "RATE_EXCEEDED_METRIC",
    "Reporter",
    "STATE_METRIC",
    "TRANSITIONS_METRIC",
    "attach_breaker",
]

STATE_METRIC: Final = "vigil_circuit_breaker_state"
TRANSITIONS_METRIC: Final = "vigil_circuit_breaker_transitions_total"
CALLS_METRIC: Final = "vigil_circuit_breaker_calls_total"
RATE_EXCEEDED_METRIC: Final = "vigil_circuit_breaker_rate_exceeded_total"

# The states in which calls are refused: entering one is logged at WARNING.
_REFUSING: Final = frozenset({CircuitState.OPEN, CircuitState.FORCED_OPEN})


class AlertSender(Protocol):
    """The part of :class:`~vigil.monitoring.alerts.AlertManager` a breaker uses."""

    def send_alert(self, severity: Any, component: str, message: str,
                   metadata: Mapping[str, Any] | None = ..., *,
                   labels: Mapping[str, str] | None = ...) -> object: ...


class Reporter:
    """Metrics, the log lines and the open alert of one named breaker.

    Holds no reference to the breaker (it gets the name and the publishers), so a breaker
    nobody uses can be collected (and leave ``all_breakers()``) without waiting for the cycle
    collector.
    """

    __slots__ = ("_alerts", "_exceeded", "_logger", "_name", "_state", "_transitions",
                 "calls")

    def __init__(self, name: str, registry: CollectorRegistry, logger: Logger,
                 alert_sender: AlertSender | None) -> None:
        self._name = name
        self._logger = logger
        self._alerts = alert_sender
        # Per worker under multiprocess mode ("liveall", vigil.monitoring.multiprocess).
        state = instruments.gauge(
            registry, STATE_METRIC,
            "Circuit breaker state: 1 for the current state, 0 for the others.",
            ["breaker", "state"])
        self._state = {member: state.labels(name, member.value) for member in CircuitState}
        self.show(CircuitState.CLOSED)
        self._transitions = instruments.counter(
            registry, TRANSITIONS_METRIC, "Circuit breaker state changes.",
            ["breaker", "from_state", "to_state"])
        calls = instruments.counter(
            registry, CALLS_METRIC,
            "Calls through a circuit breaker, by outcome: success, slow (succeeded but slower "
            "than slow_call_duration), failure, ignored (an exception that is not a failure) "
            "or rejected (not run).", ["breaker", "outcome"])
        self.calls: dict[Outcome, Any] = {outcome: calls.labels(name, outcome)
                                          for outcome in OUTCOMES}
        exceeded = instruments.counter(
            registry, RATE_EXCEEDED_METRIC,
            "Times a circuit breaker's failure rate (rate=failure) or slow-call rate "
            "(rate=slow) reached its threshold.", ["breaker", "rate"])
        self._exceeded = {kind: exceeded.labels(name, kind) for kind in ("failure", "slow")}

    def show(self, current: CircuitState) -> None:
        """Set the state gauge: 1 for ``current``, 0 for the others."""
        for member, child in self._state.items():
            child.set(1 if member is current else 0)

    def count(self, event: BreakerEvent) -> None:
        """Metrics subscriber: state gauge and transitions, rejected calls, exceeded rates."""
        if isinstance(event, StateTransition):
            self._state[event.from_state].set(0)
            self._state[event.to_state].set(1)
            self._transitions.labels(self._name, event.from_state.value,
                                     event.to_state.value).inc()
        elif isinstance(event, CallRejected):
            self.calls[REJECTED].inc()
        elif isinstance(event, FailureRateExceeded):
            self._exceeded["failure"].inc()
        elif isinstance(event, SlowCallRateExceeded):
            self._exceeded["slow"].inc()

    def log(self, event: BreakerEvent) -> None:
        """Log subscriber: one line per transition (WARNING when it starts refusing calls,
        INFO otherwise), a WARNING per exceeded rate, an ERROR per raising predicate (with
        its traceback: the event comes inside the ``except``)."""
        if isinstance(event, StateTransition):
            write = self._logger.warning if event.to_state in _REFUSING else self._logger.info
            write(f"circuit breaker '{event.breaker}' {event.from_state.value} -> "
                  f"{event.to_state.value}: {event.reason}",
                  metadata={"breaker": event.breaker, "from_state": event.from_state.value,
                            "to_state": event.to_state.value, "reason": event.reason})
        elif isinstance(event, PredicateFailed):
            field = "exception" if event.predicate == "expected_exception" else "result_type"
            self._logger.error(
                f"circuit breaker {event.predicate} predicate raised; counting a failure",
                metadata={"breaker": event.breaker, field: event.subject})
        elif isinstance(event, FailureRateExceeded | SlowCallRateExceeded):
            kind = "failure" if isinstance(event, FailureRateExceeded) else "slow"
            what = "failure rate" if kind == "failure" else "slow call rate"
            self._logger.warning(
                f"circuit breaker '{event.breaker}' {what} {event.rate:.0%} reached its "
                f"threshold {event.threshold:.0%} over {event.calls} calls",
                metadata={"breaker": event.breaker, "rate": kind, "value": event.rate,
                          "threshold": event.threshold, "calls": event.calls,
                          "state": event.state.value})

    def alert(self, event: BreakerEvent) -> None:
        """Alert subscriber: a ``high`` alert each time the breaker opens by itself or by
        ``force_open()`` (not on FORCED_OPEN, an operator's deliberate choice)."""
        if isinstance(event, StateTransition) and event.to_state is CircuitState.OPEN:
            # The message is fixed per breaker so that a flapping breaker's repeats fold into
            # one alert within the alert manager's de-duplication window.
            sender: AlertSender = self._alerts if self._alerts is not None \
                else _alerts.alert_manager
            sender.send_alert(
                "high", self._name, f"circuit breaker '{self._name}' is OPEN",
                metadata={"breaker": self._name, "from_state": event.from_state.value,
                          "reason": event.reason},
                labels={"breaker": self._name})


def attach_breaker(named: NamedBreaker) -> Reporter:
    """Report on a breaker just named: metrics, log lines, the alert (``CircuitBreaker.named``).

    Also warns when another live breaker reports under the same name into the same registry:
    allowed (a breaker per worker object, re-created in tests), but never silently, since their
    states and counts land in one set of series.
    """
    report_to = named.report_to
    logger: Logger = report_to.logger if report_to.logger is not None \
        else shared_logger("vigil.circuit_breaker")
    reporter = Reporter(named.name, named.registry, logger, report_to.alert_manager)
    for outcome, child in reporter.calls.items():
        named.count_calls[outcome] = child.inc
    named.events.subscribe(reporter.count)
    named.events.subscribe(reporter.log)
    named.events.subscribe(reporter.alert)
    named.forked.subscribe(reporter.show)
    failures.watch(named.events)
    # The breaker being named is not listed yet: it is the +1.
    sharing = 1 + sum(1 for other in all_breakers()
                      if other.registry is named.registry and other.name == named.name)
    if sharing > 1:
        logger.warning(
            "another live circuit breaker has this name on the same registry; both report "
            "into the same vigil_circuit_breaker_* series (give each its own name, or share "
            "one breaker: error_recovery_manager.get_circuit_breaker(name))",
            {"breaker": named.name, "live_with_this_name": sharing})
    return reporter
