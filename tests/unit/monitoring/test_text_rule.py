"""vigil.text's rule where text enters labels and alerts: instruments, metrics, traces, breakers,
the recovery manager and the alert manager."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from vigil.error_handling.breaker import CircuitBreaker
from vigil.error_handling.recovery import ErrorCategory, ErrorRecoveryManager, ErrorSeverity
from vigil.jsonsafe import MAX_DEPTH, TOO_DEEP
from vigil.monitoring import instruments
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance, prometheus_name
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock

FSDECODED = os.fsdecode(b"report-\xff.pdf")
CLEAN = "report-\ufffd.pdf"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


class Quiet:
    def warning(self, *args: Any, **kwargs: Any) -> None:
        pass

    def error(self, *args: Any, **kwargs: Any) -> None:
        pass

    def info(self, *args: Any, **kwargs: Any) -> None:
        pass


def _text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode("utf-8")


def test_family_labels_store_valid_text_and_share_children() -> None:
    """A raw value and its text find one child; the stored label is the text."""
    registry = CollectorRegistry()
    family = instruments.counter(registry, "t_total", "d", ["file"])
    family.labels(FSDECODED).inc()
    family.labels(CLEAN).inc()
    family.labels(Unprintable()).inc()
    family.labels(["un", "hashable"]).inc()
    assert family.labels(FSDECODED) is family.labels(CLEAN)
    assert family.series_count() == 3
    assert registry.get_sample_value("t_total", {"file": CLEAN}) == 2
    assert registry.get_sample_value("t_total", {"file": "<unprintable Unprintable>"}) == 1
    assert registry.get_sample_value("t_total", {"file": "['un', 'hashable']"}) == 1


def test_monitor_names_and_tag_keys_are_text() -> None:
    """Seed names and tag keys with lone surrogates are recorded and found as their text."""
    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)
    for _ in range(2):
        monitor.increment_counter(f"files.{FSDECODED}", 1, {FSDECODED: FSDECODED})
    assert monitor.metric_names() == [f"files.{CLEAN}"]
    assert monitor.get_metric_stats(f"files.{FSDECODED}")["count"] == 2
    assert monitor.get_all_metrics()[f"files.{CLEAN}"][0]["tags"] == {CLEAN: CLEAN}
    assert "\ufffd" in _text(registry)


def test_colons_leave_metric_names() -> None:
    """Colons become underscores in Prometheus names, so OpenMetrics output parses back."""
    assert prometheus_name("job:requests:rate5m") == "job_requests_rate5m"
    registry = CollectorRegistry()
    PerformanceMonitor(registry=registry).increment_counter(":", 1, {"": ""})
    assert registry.get_sample_value("__total", {"_": ""}) == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5, "1"])
def test_histograms_refuse_what_openmetrics_cannot_hold(value: Any) -> None:
    """NaN, infinities, negatives (and non-numbers) are a ValueError naming the histogram."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    with pytest.raises(ValueError, match=r"histogram 'latency_ms'.*finite number >= 0"):
        monitor.record_histogram("latency_ms", value)
    assert monitor.get_metric_stats("latency_ms")["count"] == 0


def test_counters_name_a_non_number_too() -> None:
    """A string increment is a ValueError, not a TypeError from a comparison."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    with pytest.raises(ValueError, match=r"counter 'jobs'.*got '1'"):
        monitor.increment_counter("jobs", "1")  # type: ignore[arg-type]


def test_gauges_take_any_number() -> None:
    """A gauge may be NaN or infinite: both are valid exposition."""
    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)
    monitor.record_gauge("temperature", math.nan)
    assert math.isnan(registry.get_sample_value("temperature") or 0.0)
    monitor.record_gauge("temperature", math.inf)
    assert registry.get_sample_value("temperature") == math.inf


def test_monitor_performance_function_label_is_text() -> None:
    """@monitor_performance(name) with a lone surrogate labels the function with its text."""
    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)

    @monitor_performance(FSDECODED, monitor=monitor)
    def work() -> None:
        pass

    work()
    assert registry.get_sample_value("vigil_function_calls_total", {"function": CLEAN}) == 1


def test_trace_labels_are_text_whatever_the_component_and_status() -> None:
    """Components, operations and statuses that are not valid text still label durations."""
    registry = CollectorRegistry()
    tracer = ExecutionTracer(registry=registry, clock=FakeClock(), logger=Quiet())
    with trace_context(FSDECODED, ["un", "hashable"], tracer=tracer):  # type: ignore[arg-type]
        pass
    span = tracer.start_trace(Unprintable(), "op")  # type: ignore[arg-type]
    tracer.end_trace(span, status=FSDECODED)
    count = "vigil_trace_duration_seconds_count"
    assert registry.get_sample_value(count, {"component": CLEAN, "operation": "['un', 'hashable']",
                                             "status": "success"}) == 1
    assert registry.get_sample_value(count, {"component": "<unprintable Unprintable>",
                                             "operation": "op", "status": CLEAN}) == 1


def test_raw_variants_of_one_text_share_one_series_and_do_not_grow_indexes() -> None:
    """128 components differing only in a lone surrogate: one series, bounded caches."""
    registry = CollectorRegistry()
    tracer = ExecutionTracer(registry=registry, clock=FakeClock(), logger=Quiet())
    monitor = PerformanceMonitor(registry=registry)
    family = instruments.counter(registry, "v_total", "d", ["c"])
    for low in range(0xDC80, 0xDD00):
        raw = "c" + chr(low)
        with trace_context(raw, "op", tracer=tracer):
            pass
        monitor.increment_counter(raw, 1)
        family.labels(raw).inc()
    assert registry.get_sample_value("vigil_trace_duration_seconds_count", {
        "component": "c\ufffd", "operation": "op", "status": "success"}) == 128
    assert registry.get_sample_value("c__total") == 128
    assert registry.get_sample_value("v_total", {"c": "c\ufffd"}) == 128
    assert len(tracer._series) == 1
    assert monitor.metric_names() == ["c\ufffd"]
    assert family.series_count() == 1


def test_breaker_name_is_text_everywhere() -> None:
    """A breaker named from an fsdecoded path has that name as text: name, labels, alert."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock(), logger=Quiet())
    breaker = CircuitBreaker(failure_threshold=1, name=FSDECODED, clock=FakeClock(),
                             registry=registry, alert_manager=manager, logger=Quiet())
    with contextlib.suppress(ValueError):
        breaker.call(_raise)
    assert breaker.name == CLEAN
    assert registry.get_sample_value("vigil_circuit_breaker_state",
                                     {"breaker": CLEAN, "state": "OPEN"}) == 1
    (alert,) = manager.get_recent_alerts()
    assert alert.component == CLEAN
    assert alert.labels == {"breaker": CLEAN}
    manager.close()


def _raise() -> None:
    raise ValueError("boom")


class BrokenError(Exception):
    def __str__(self) -> str:
        raise TypeError("no")


def test_handle_error_reports_unprintable_errors_and_surrogates_as_text() -> None:
    """handle_error reports unprintable errors and surrogates as text everywhere."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock(), logger=Quiet())
    recovery = ErrorRecoveryManager(registry=registry, alert_manager=manager, logger=Quiet(),
                                    clock=FakeClock())
    recovery.handle_error(BrokenError(), ErrorCategory.FILE_PROCESSING, ErrorSeverity.HIGH,
                          FSDECODED, "read", {"file": FSDECODED})
    (record,) = recovery.get_recent_errors()
    assert (record.component, record.message) == (CLEAN, "<unprintable BrokenError>")
    assert registry.get_sample_value("vigil_errors_total", {
        "category": "file_processing", "severity": "high", "component": CLEAN}) == 1
    (alert,) = manager.get_recent_alerts()
    assert alert.message == "read failed with BrokenError: <unprintable BrokenError>"
    assert alert.metadata["file"] == CLEAN
    manager.close()


@dataclasses.dataclass
class Settings:
    host: str
    password: str


def test_alert_metadata_is_strict_json_with_structure_kept_for_redaction() -> None:
    """Alert metadata is strict JSON and keeps structure (dataclasses) for redaction."""
    manager = AlertManager(registry=CollectorRegistry(), clock=FakeClock(), logger=Quiet())
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):  # past vigil.jsonsafe's one depth rule
        deep = {"k": deep}
    alert = manager.send_alert("high", FSDECODED, FSDECODED, {
        "nan": math.nan, "inf": -math.inf, "db": Settings("h", "hunter2"), "big": 10 ** 5000,
        "odd": Unprintable(), FSDECODED: {1, 2}, "deep": deep},
        labels={FSDECODED: Unprintable()}, annotations={"a": FSDECODED})  # type: ignore[dict-item]
    metadata = alert.metadata
    assert (metadata["nan"], metadata["inf"]) == ("NaN", "-Infinity")
    assert metadata["db"] == {"host": "h", "password": "hunter2"}
    assert metadata["big"] == "<integer of 16610 bits>"
    assert metadata["odd"] == "<unprintable Unprintable>"
    assert sorted(metadata[CLEAN]) == [1, 2]
    assert TOO_DEEP in json.dumps(metadata["deep"])
    assert (alert.component, alert.message) == (CLEAN, CLEAN)
    assert alert.labels == {CLEAN: "<unprintable Unprintable>"}
    assert alert.annotations == {"a": CLEAN}
    json.dumps(dict(alert), allow_nan=False, ensure_ascii=False).encode("utf-8")
    # The raw and the cleaned text are the same alert: one fingerprint, folded.
    again = manager.send_alert("high", CLEAN, CLEAN, labels={CLEAN: "<unprintable Unprintable>"})
    assert again is alert
    assert alert.count == 2
    manager.close()
