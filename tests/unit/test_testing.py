"""vigil.testing: a fake clock that moves only when told to, and capture/read-back helpers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest
from prometheus_client import CollectorRegistry, Counter

from vigil.error_handling.events import EventPublisher
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.testing import (
    FakeClock,
    LogCapture,
    MetricReader,
    capture_alerts,
    capture_events,
    capture_logs,
)


def test_fake_clock_moves_only_when_advanced() -> None:
    """monotonic() and time() stay put until advance(), then move together."""
    clock = FakeClock(start=10.0, wall=1000.0)
    assert (clock.monotonic(), clock.time()) == (10.0, 1000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (12.5, 1002.5)


def test_fake_clock_refuses_to_go_backwards() -> None:
    """A negative advance is an error."""
    with pytest.raises(ValueError, match=">= 0"):
        FakeClock().advance(-1)


def test_fake_sleeps_advance_and_are_recorded() -> None:
    """sleep and sleep_async return at once, advance the clock and record the durations."""
    clock = FakeClock(start=0.0)
    clock.sleep(1.5)
    asyncio.run(clock.sleep_async(3.0))
    assert clock.sleeps == [1.5, 3.0]
    assert clock.monotonic() == 4.5


# --- capture and read-back helpers -------------------------------------------------------


def test_capture_logs_collects_lines_of_loggers_without_a_stream_and_restores() -> None:
    """Inside the block a StructuredLogger with no stream of its own writes to the capture,
    parsed by messages(level); after it, lines go where they went before."""
    logger = StructuredLogger("Job", registry=CollectorRegistry())
    outside = io.StringIO()
    with contextlib.redirect_stdout(outside):
        with capture_logs() as logs:
            logger.info("started", metadata={"n": 1})
            logger.error("failed")
        logger.info("after")
    assert logs.messages() == ["started", "failed"]
    assert logs.messages("error") == ["failed"]
    assert logs.lines()[0]["metadata"] == {"n": 1}
    assert [json.loads(line)["message"] for line in outside.getvalue().splitlines()] == ["after"]


def test_log_capture_builds_loggers_that_write_to_it() -> None:
    """LogCapture.logger(name) is a StructuredLogger on the capture's stream."""
    capture = LogCapture()
    capture.logger("Worker").warning("slow", metadata={"ms": 900})
    assert capture.lines()[0]["component"] == "Worker"
    assert capture.messages("WARNING") == ["slow"]


def test_capture_alerts_sees_dispatched_alerts_and_unregisters() -> None:
    """The capturing handler receives what the manager dispatched in the block (after the
    handler threads caught up, also for an alert sent just before leaving it) and is gone
    afterwards."""
    manager = AlertManager(registry=CollectorRegistry(), clock=FakeClock())
    try:
        with capture_alerts(manager) as captured:
            manager.send_alert("high", "Billing", "card declined")
            assert [a.component for a in captured.alerts()] == ["Billing"]
            manager.send_alert("low", "Search", "slow index")  # read only after the block
        assert captured not in manager.handlers().values()
        assert [a.component for a in captured.alerts()] == ["Billing", "Search"]
    finally:
        manager.close()


def test_capture_events_records_published_events_in_order() -> None:
    """Events published while subscribed are recorded in order, of_type filters them, and
    nothing is recorded after the block."""
    publisher: EventPublisher[object] = EventPublisher("test", CollectorRegistry())
    with capture_events(publisher) as events:
        publisher.publish("one")
        publisher.publish(2)
    publisher.publish("late")
    assert events.events == ["one", 2]
    assert events.of_type(str) == ["one"]


def test_metric_reader_values_deltas_and_series() -> None:
    """value() is 0.0 for a missing series, delta() counts from the baseline (rebase moves
    it), series() lists the label sets of a family's samples."""
    registry = CollectorRegistry()
    calls = Counter("jobs", "Jobs.", ["outcome"], registry=registry)
    calls.labels("ok").inc(3)
    reader = MetricReader(registry)
    assert reader.value("jobs_total", outcome="failed") == 0.0
    calls.labels("ok").inc()
    calls.labels("failed").inc(2)
    assert reader.value("jobs_total", {"outcome": "ok"}) == 4.0
    assert reader.delta("jobs_total", outcome="ok") == 1.0
    assert reader.delta("jobs_total", outcome="failed") == 2.0
    reader.rebase()
    assert reader.delta("jobs_total", outcome="ok") == 0.0
    assert reader.series("jobs_total") == [{"outcome": "ok"}, {"outcome": "failed"}]
