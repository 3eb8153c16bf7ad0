"""vigil.reporting: metrics, logs and alerts attach from outside through the components' hooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vigil import reporting
from vigil.error_handling.breaker import CircuitBreaker, NamedBreaker
from vigil.error_handling.recovery import ErrorHandled, ErrorRecoveryManager, NamedRecovery
from vigil.error_handling.retry import Retrier, RetryPolicy
from vigil.error_handling.retry.events import NamedRetry
from vigil.testing import FakeClock, MetricReader, capture_events, capture_logs


@pytest.fixture
def without_vigil_reporting() -> Iterator[None]:
    """vigil's reporting detached for the test, attached again after."""
    reporting.uninstall()
    try:
        yield
    finally:
        reporting.install()


def test_a_breaker_without_vigils_reporting_still_works_and_reports_nothing(
        without_vigil_reporting: None) -> None:
    """The breaker needs no reporter: detached, it opens and rejects, and no series appears."""
    registry = CollectorRegistry()
    cb = CircuitBreaker(failure_threshold=1, recovery_timeout=5, name="bare", registry=registry,
                        clock=FakeClock())
    with pytest.raises(ZeroDivisionError):
        cb.call(lambda: 1 / 0)
    assert cb.state.value == "OPEN"
    assert list(registry.collect()) == []


def test_install_is_idempotent_and_reattaches_after_uninstall() -> None:
    """install() twice attaches once; after uninstall() and install(), breakers report again."""
    reporting.install()
    assert "attached=1" in repr(CircuitBreaker.named)
    reporting.uninstall()
    try:
        assert "attached=0" in repr(CircuitBreaker.named)
    finally:
        reporting.install()
    registry = CollectorRegistry()
    CircuitBreaker(name="again", registry=registry).call(lambda: None)
    assert MetricReader(registry).value("vigil_circuit_breaker_calls_total",
                                        breaker="again", outcome="success") == 1


def test_a_user_attachment_sees_each_breaker_when_named_before_its_first_call() -> None:
    """CircuitBreaker.named announces an unnamed breaker once, under its function's name."""
    seen: list[NamedBreaker] = []
    detach = CircuitBreaker.named.attach(seen.append)
    try:
        registry = CollectorRegistry()
        cb = CircuitBreaker(registry=registry)

        @cb
        def fetch() -> int:
            return 1

        assert [n.name for n in seen] == [fetch.__qualname__]
        fetch()
        fetch()
    finally:
        detach()
    assert len(seen) == 1
    assert seen[0].registry is registry


def test_a_user_can_count_calls_beside_vigils_counter() -> None:
    """Wrapping a count_calls entry adds a counter without losing vigil's own."""
    mine: list[str] = []

    def add_mine(named: NamedBreaker) -> None:
        vigils = named.count_calls["success"]

        def both() -> None:
            vigils()
            mine.append(named.name)

        named.count_calls["success"] = both

    detach = CircuitBreaker.named.attach(add_mine)
    try:
        registry = CollectorRegistry()
        CircuitBreaker(name="both", registry=registry).call(lambda: None)
    finally:
        detach()
    assert mine == ["both"]
    assert MetricReader(registry).value("vigil_circuit_breaker_calls_total",
                                        breaker="both", outcome="success") == 1


def test_each_retrier_is_announced_with_its_operation() -> None:
    """Retrier.named announces a NamedRetry carrying the operation and its registry."""
    seen: list[NamedRetry] = []
    detach = Retrier.named.attach(seen.append)
    try:
        registry = CollectorRegistry()
        retrier = Retrier(RetryPolicy.from_config(2, (ValueError,)), operation="op",
                          registry=registry, clock=FakeClock())
        assert retrier.call(lambda: 3) == 3
    finally:
        detach()
    assert [(n.operation, n.registry) for n in seen] == [("op", registry)]
    assert MetricReader(registry).value("vigil_retry_calls_total", operation="op",
                                        outcome="success_first_try") == 1


class _BrokenAlerts:
    """An alert manager whose send_alert always raises."""

    def send_alert(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("alert backend down")


def test_a_failing_alert_never_reaches_handle_errors_caller() -> None:
    """An alert manager that raises is isolated: the action is returned, the error counted,
    the failure counted in vigil_event_subscriber_failures_total."""
    registry = CollectorRegistry()
    with capture_logs() as logs:
        manager = ErrorRecoveryManager(registry=registry, alert_manager=_BrokenAlerts(),
                                       logger=logs.logger("vigil.recovery"))
        with capture_events(manager.events) as events:
            action = manager.handle_error(ValueError("bad"), "system", "critical", "Svc", "run")
    assert action.action_type.value == "abort"
    [event] = events.of_type(ErrorHandled)
    assert event.alert
    assert event.record.component == "Svc"
    reader = MetricReader(registry)
    assert reader.value("vigil_errors_total", category="system", severity="critical",
                        component="Svc") == 1
    assert reader.value("vigil_event_subscriber_failures_total", publisher="recovery") == 1
    assert logs.messages("ERROR")[0] == "Svc.run failed: ValueError: bad"


def test_below_the_alert_threshold_the_event_says_no_alert() -> None:
    """ErrorHandled.alert follows the manager's alert_min_severity."""
    seen: list[NamedRecovery] = []
    detach = ErrorRecoveryManager.named.attach(seen.append)
    try:
        manager = ErrorRecoveryManager(registry=CollectorRegistry(),
                                       alert_min_severity="critical")
    finally:
        detach()
    assert seen[0].events is manager.events
    with capture_events(manager.events) as events:
        manager.handle_error(ValueError("x"), "system", "high", "Svc", "run")
    assert [e.alert for e in events.of_type(ErrorHandled)] == [False]
