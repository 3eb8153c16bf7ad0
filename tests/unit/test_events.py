"""vigil.events: the publisher, the process's failure sink, and the announcement hook."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from vigil import events
from vigil.events import EventPublisher, Hook, ReportTo


@pytest.fixture
def sink() -> Iterator[list[tuple[str, str]]]:
    """Failed deliveries recorded as (publisher, event type) instead of reported."""
    seen: list[tuple[str, str]] = []

    def record(publisher: EventPublisher[Any], subscriber: object, event: object) -> None:
        seen.append((publisher.name, type(event).__name__))

    previous = events.set_failure_sink(record)
    try:
        yield seen
    finally:
        events.set_failure_sink(previous)


def test_every_subscriber_gets_each_event_in_order() -> None:
    """Subscribers see every event, in the order they subscribed."""
    publisher: EventPublisher[int] = EventPublisher("p")
    seen: list[tuple[str, int]] = []
    publisher.subscribe(lambda e: seen.append(("a", e)))
    publisher.subscribe(lambda e: seen.append(("b", e)))
    publisher.publish(1)
    publisher.publish(2)
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    """The function subscribe() returns ends delivery; calling it twice is harmless."""
    publisher: EventPublisher[int] = EventPublisher("p")
    seen: list[int] = []
    stop = publisher.subscribe(seen.append)
    publisher.publish(1)
    stop()
    stop()
    publisher.publish(2)
    assert seen == [1]
    assert not publisher.has_subscribers


def test_a_raising_subscriber_goes_to_the_sink_and_the_others_still_run(
        sink: list[tuple[str, str]]) -> None:
    """One subscriber raising neither stops the next one nor reaches the publisher's caller."""
    publisher: EventPublisher[int] = EventPublisher("p")
    seen: list[int] = []

    def broken(event: int) -> None:
        raise RuntimeError("subscriber bug")

    publisher.subscribe(broken)
    publisher.subscribe(seen.append)
    publisher.publish(7)
    assert seen == [7]
    assert sink == [("p", "int")]


def test_a_raising_sink_falls_back_to_stdlib_logging(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises is itself caught: the failure is logged through logging, not lost."""
    def broken_sink(publisher: EventPublisher[Any], subscriber: object, event: object) -> None:
        raise ValueError("sink bug")

    previous = events.set_failure_sink(broken_sink)
    try:
        publisher: EventPublisher[int] = EventPublisher("p")
        publisher.subscribe(lambda e: 1 / 0)
        with caplog.at_level(logging.ERROR, logger="vigil.events"):
            publisher.publish(1)
    finally:
        events.set_failure_sink(previous)
    assert any("publisher p" in r.getMessage() for r in caplog.records)


def test_set_failure_sink_none_restores_logging_and_returns_the_previous() -> None:
    """None puts back the stdlib-logging sink; the call answers the sink it replaced."""
    def mine(publisher: EventPublisher[Any], subscriber: object, event: object) -> None:
        return None

    original = events.set_failure_sink(mine)
    try:
        assert events.set_failure_sink(None) is mine
    finally:
        events.set_failure_sink(original)


def test_hook_announces_to_attached_functions_in_order_until_detached() -> None:
    """attach() sees every later announcement, in attach order; detach() ends it."""
    hook: Hook[str] = Hook("things")
    seen: list[tuple[str, str]] = []
    detach_a = hook.attach(lambda c: seen.append(("a", c)))
    hook.attach(lambda c: seen.append(("b", c)))
    hook.announce("x")
    detach_a()
    hook.announce("y")
    assert seen == [("a", "x"), ("b", "x"), ("b", "y")]
    assert "attached=1" in repr(hook)


def test_a_raising_attached_function_fails_the_announcement() -> None:
    """An attach function that raises propagates: the construction that announced fails."""
    hook: Hook[str] = Hook("things")

    def refuse(component: str) -> None:
        raise ValueError(f"cannot report on {component}")

    hook.attach(refuse)
    with pytest.raises(ValueError, match="cannot report on x"):
        hook.announce("x")


def test_components_carry_what_they_were_given_for_the_reporting() -> None:
    """A breaker's and a retrier's ReportTo hold the registry and logger they were given, and
    None (the shared default) for what they were not."""
    from prometheus_client import CollectorRegistry

    from vigil.error_handling.breaker import CircuitBreaker
    from vigil.error_handling.retry import Retrier
    from vigil.testing import LogCapture

    registry, logger = CollectorRegistry(), LogCapture().logger("mine")
    assert CircuitBreaker(name="given", registry=registry).report_to == \
        ReportTo(registry, None, None)
    assert Retrier(operation="given", logger=logger).report_to == ReportTo(None, logger, None)
