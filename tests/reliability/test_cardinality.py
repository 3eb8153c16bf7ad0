"""Cardinality: labels fed unbounded values through the public API stay capped, memory flat.

Already proven elsewhere (cited, not repeated): the cap on a handful of values
(tests/unit/monitoring/test_instruments.py::test_labels_past_the_cap_go_to_other_and_are_counted,
tests/unit/monitoring/test_metrics.py::test_label_cardinality_is_capped), exception classes of
@monitor_performance (test_metrics.py::test_exception_classes_are_capped).

Here: 100,000 distinct user ids and paths (1,000,000 under ``-m heavy``) through
``PerformanceMonitor``, trace operations named by path, alert and error components, and
alertnames arriving on the webhook: each metric keeps at most ``max_series_per_metric`` label
sets plus one ``other`` series, every overflowing record is counted in
``vigil_dropped_series_total{metric}``, and traced memory does not grow once the cap is reached.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import vigil
from tests.reliability.conftest import (
    HEAVY,
    LiveExporter,
    live_exporter,
    post_bytes,
    raw_request,
)
from vigil.error_handling.recovery import ErrorRecoveryManager
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer, trace_context

CAP = 200
GROWTH_LIMIT = 256 * 1024  # bytes of traced memory allowed to appear after the cap is reached


def null_stream() -> io.TextIOWrapper:
    """A stream that keeps nothing (a StringIO would hold every line written)."""
    return open(os.devnull, "w", encoding="utf-8")  # closed by the caller


@pytest.fixture(autouse=True)
def _small_cap() -> None:
    """A cap of CAP label sets per metric (tests/conftest.py restores the defaults after)."""
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": CAP}}})


def _series(registry: CollectorRegistry, sample_name: str) -> dict[tuple[tuple[str, str], ...],
                                                                     float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in registry.collect() for s in family.samples if s.name == sample_name}


def _dropped(registry: CollectorRegistry, metric: str) -> float:
    return registry.get_sample_value("vigil_dropped_series_total", {"metric": metric}) or 0.0


def _growth_after_cap(feed: Callable[[int], None], total: int, warm_up: int) -> int:
    """Bytes of traced memory that stay allocated while ``feed(i)`` runs for i in
    [warm_up, total), after ``feed`` already ran for [0, warm_up) (past the cap and every
    bounded buffer)."""
    for i in range(warm_up):
        feed(i)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(warm_up, total):
            feed(i)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("distinct", [
    pytest.param(100_000, id="100k-values"),
    pytest.param(1_000_000, id="1M-values", marks=HEAVY),
])
def test_user_ids_and_paths_are_capped_and_memory_stays_flat(distinct: int) -> None:
    """increment_counter by user id and record_histogram by path, each with `distinct` values:
    CAP series + one `other`, overflow counted exactly, no memory growth after the cap."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())

    def feed(i: int) -> None:
        monitor.increment_counter("user_requests", tags={"user_id": f"user-{i}"})
        monitor.record_histogram("path_latency_ms", i % 500, tags={"path": f"/files/{i}.pdf"})

    growth = _growth_after_cap(feed, distinct, warm_up=5_000)
    reg = monitor.registry
    counters = _series(reg, "user_requests_total")
    assert len(counters) == CAP + 1
    assert counters[(("user_id", "other"),)] == distinct - CAP
    assert sum(counters.values()) == distinct
    assert _dropped(reg, "user_requests_total") == distinct - CAP
    counts = _series(reg, "path_latency_seconds_count")  # exposed in seconds
    assert len(counts) == CAP + 1
    assert counts[(("path", "other"),)] == distinct - CAP
    assert _dropped(reg, "path_latency_seconds") == distinct - CAP
    assert growth < GROWTH_LIMIT, f"{growth} bytes still allocated after the cap"
    # The scrape is bounded too: CAP+1 counter series and CAP+1 histograms of 15 buckets.
    assert len(generate_latest(reg)) < 2_000_000


def test_trace_operations_named_by_path_are_capped_and_memory_stays_flat() -> None:
    """100k traced operations each named after a different path: the duration histogram
    keeps CAP operations + `other`, the tracer's memory stays flat after the cap."""
    registry = CollectorRegistry()
    tracer = ExecutionTracer(registry=registry, retention=100)
    distinct = 100_000

    def feed(i: int) -> None:
        with trace_context("api", f"GET /files/{i}", tracer=tracer):
            pass

    growth = _growth_after_cap(feed, distinct, warm_up=5_000)
    counts = _series(registry, "vigil_trace_duration_seconds_count")
    assert len(counts) == CAP + 1
    other = (("component", "other"), ("operation", "other"), ("status", "other"))
    assert counts[other] == distinct - CAP
    assert _dropped(registry, "vigil_trace_duration_seconds") == distinct - CAP
    assert len(tracer.get_recent_traces(1000)) == 100
    assert growth < GROWTH_LIMIT, f"{growth} bytes still allocated after the cap"


def test_alert_and_error_components_are_capped_and_memory_stays_flat() -> None:
    """20k alerts and 20k handled errors, each from a different component: their counters
    keep CAP components + `other`, buffers stay at their size, memory flat after the cap."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry, buffer_size=100, dedup_window=60.0)
    devnull = null_stream()
    errors = ErrorRecoveryManager(registry=registry, alert_manager=alerts, history_size=100,
                                  logger=StructuredLogger("errors", registry=registry,
                                                          stream=devnull, buffer_size=100))
    distinct = 20_000
    failure = ConnectionError("upstream down")

    def feed(i: int) -> None:
        alerts.send_alert("low", f"user-{i}", "quota exceeded")
        errors.handle_error(failure, "API_CALL", "LOW", f"user-{i}", "fetch")

    try:
        growth = _growth_after_cap(feed, distinct, warm_up=2_000)
    finally:
        alerts.close()
        devnull.close()
    sent = _series(registry, "vigil_alerts_total")
    assert len(sent) == CAP + 1
    assert sent[(("component", "other"), ("severity", "other"))] == distinct - CAP
    assert _dropped(registry, "vigil_alerts_total") == distinct - CAP
    handled = _series(registry, "vigil_errors_total")
    assert len(handled) == CAP + 1
    assert sum(handled.values()) == distinct
    assert _dropped(registry, "vigil_errors_total") == distinct - CAP
    assert len(alerts.get_recent_alerts(1000)) == 100
    assert errors.get_error_stats()["retained"] == 100
    assert growth < GROWTH_LIMIT, f"{growth} bytes still allocated after the cap"


@pytest.fixture
def capped_exporter() -> Iterator[LiveExporter]:
    with contextlib.ExitStack() as stack:
        yield live_exporter(stack)


def test_alertnames_from_the_webhook_are_capped(capped_exporter: LiveExporter) -> None:
    """Alertmanager notifications carrying 1,000 distinct alertnames over the socket: the
    received counter keeps CAP alertnames + `other`, the rest counted as dropped."""
    live = capped_exporter
    distinct = 1_000
    for batch in range(0, distinct, 250):
        alerts = [{"status": "firing", "labels": {"alertname": f"Generated{i}"},
                   "annotations": {}, "fingerprint": f"{i:016x}",
                   "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
                  for i in range(batch, batch + 250)]
        body = json.dumps({"version": "4", "alerts": alerts}).encode()
        status, answer, _ = raw_request(live.url, post_bytes(body))
        assert status == 200, answer[:300]
    assert len(live.delivered()) == distinct
    received = _series(live.registry, "vigil_alertmanager_alerts_received_total")
    assert len(received) == CAP + 1
    assert received[(("alertname", "other"), ("status", "other"))] == distinct - CAP
    assert _dropped(live.registry, "vigil_alertmanager_alerts_received_total") == distinct - CAP
