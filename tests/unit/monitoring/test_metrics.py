"""vigil.monitoring.metrics: the seed's PerformanceMonitor (the decorator's tests are in
test_metrics_decorator.py)."""

from __future__ import annotations

import decimal
import math
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import vigil
from vigil.monitoring.metrics import (
    PerformanceMonitor,
    monitor_performance,
    performance_monitor,
    prometheus_name,
)
from vigil.monitoring.metrics.naming import exposed_name, label_name
from vigil.monitoring.metrics.stats import summarize
from vigil.testing import FakeClock


def _monitor(**kwargs: object) -> PerformanceMonitor:
    return PerformanceMonitor(registry=CollectorRegistry(), **kwargs)  # type: ignore[arg-type]


def test_seed_example_records_and_reports_stats() -> None:
    """The seed's Performance Monitoring example runs and its stats have the documented keys."""
    monitor = PerformanceMonitor()
    monitor.record_gauge("cpu_usage", 45.5)
    monitor.increment_counter("api_calls", tags={"endpoint": "/chat"})
    monitor.record_histogram("response_time_ms", 123.4)
    stats = monitor.get_metric_stats("response_time_ms")
    assert {k: stats[k] for k in ("count", "sum", "min", "max", "avg")} == {
        "count": 1, "sum": 123.4, "min": 123.4, "max": 123.4, "avg": 123.4}
    usage = monitor.capture_resource_usage()
    assert usage.memory_mb > 0


def test_each_monitor_owns_its_registry() -> None:
    """Two monitors recording the same name never collide."""
    first, second = PerformanceMonitor(), PerformanceMonitor()
    first.increment_counter("jobs")
    second.increment_counter("jobs", 5)
    assert first.registry is not second.registry
    assert first.registry.get_sample_value("jobs_total") == 1
    assert second.registry.get_sample_value("jobs_total") == 5


def test_counter_gauge_histogram_reach_prometheus_under_sanitised_names() -> None:
    """Dotted seed names become valid Prometheus names; counters get _total."""
    monitor = _monitor()
    monitor.increment_counter("agent.executions", 2)
    monitor.record_gauge("queue-depth", 7)
    monitor.record_histogram("agent.duration_ms", 40)
    reg = monitor.registry
    assert reg.get_sample_value("agent_executions_total") == 2
    assert reg.get_sample_value("queue_depth") == 7
    # Milliseconds are exposed in Prometheus's base unit; the local view keeps them.
    assert reg.get_sample_value("agent_duration_ms_count") is None
    assert reg.get_sample_value("agent_duration_seconds_count") == 1
    assert reg.get_sample_value("agent_duration_seconds_sum") == pytest.approx(0.04)
    assert monitor.get_metric_stats("agent.duration_ms")["sum"] == 40


def test_prometheus_name_handles_awkward_input() -> None:
    """Invalid characters and a leading digit are made valid; empty names are refused."""
    assert prometheus_name("a.b-c/d") == "a_b_c_d"
    assert prometheus_name("5xx.rate") == "_5xx_rate"
    with pytest.raises(ValueError, match="empty"):
        prometheus_name("")


def test_millisecond_histograms_are_exposed_in_seconds() -> None:
    """A name ending in _ms is exposed as _seconds with seconds buckets (123.4 ms lands in
    le=0.25), as a _seconds name is; neither has millisecond buckets."""
    monitor = _monitor()
    monitor.record_histogram("response_time_ms", 123.4)
    monitor.record_histogram("wait_seconds", 0.2)
    reg = monitor.registry
    assert reg.get_sample_value("response_time_seconds_bucket", {"le": "0.1"}) == 0
    assert reg.get_sample_value("response_time_seconds_bucket", {"le": "0.25"}) == 1
    assert reg.get_sample_value("wait_seconds_bucket", {"le": "0.25"}) == 1
    assert reg.get_sample_value("wait_seconds_bucket", {"le": "250.0"}) is None


def test_tags_become_labels() -> None:
    """Tags are Prometheus labels, one series per tag-value set."""
    monitor = _monitor()
    monitor.increment_counter("api_calls", tags={"endpoint": "/chat"})
    monitor.increment_counter("api_calls", tags={"endpoint": "/chat"})
    monitor.increment_counter("api_calls", tags={"endpoint": "/files"})
    reg = monitor.registry
    assert reg.get_sample_value("api_calls_total", {"endpoint": "/chat"}) == 2
    assert reg.get_sample_value("api_calls_total", {"endpoint": "/files"}) == 1


def test_one_name_with_two_tag_key_sets_is_an_error() -> None:
    """Re-using a name with different tag keys raises a ValueError that names both sets."""
    monitor = _monitor()
    monitor.increment_counter("api_calls", tags={"endpoint": "/chat"})
    with pytest.raises(ValueError, match=r"tag keys \['endpoint'\]; got \['method'\]"):
        monitor.increment_counter("api_calls", tags={"method": "GET"})
    with pytest.raises(ValueError, match="tag keys"):
        monitor.increment_counter("api_calls")


def test_one_name_as_two_kinds_is_an_error() -> None:
    """A counter name cannot be recorded as a gauge."""
    monitor = _monitor()
    monitor.increment_counter("jobs")
    with pytest.raises(ValueError, match="'jobs' is a counter; it cannot also be used as a gauge"):
        monitor.record_gauge("jobs", 1)


def test_two_seed_names_colliding_in_prometheus_is_an_error() -> None:
    """'a.b' and 'a_b' would share one Prometheus name: the second is refused."""
    monitor = _monitor()
    monitor.record_gauge("a.b", 1)
    with pytest.raises(ValueError, match="both become the Prometheus name 'a_b'"):
        monitor.record_gauge("a_b", 2)


def test_negative_counter_increment_is_refused() -> None:
    """Counters only go up."""
    with pytest.raises(ValueError, match=">= 0"):
        _monitor().increment_counter("jobs", -1)


def test_history_is_bounded_by_retention_count() -> None:
    """Only the newest retention_count records of a name are kept."""
    monitor = _monitor(retention_count=3)
    for value in range(10):
        monitor.record_histogram("latency_ms", value)
    stats = monitor.get_metric_stats("latency_ms")
    assert stats["count"] == 3
    assert (stats["min"], stats["max"]) == (7, 9)
    assert len(monitor.get_all_metrics()["latency_ms"]) == 3
    assert monitor.registry.get_sample_value("latency_seconds_count") == 10


def test_retention_follows_configure() -> None:
    """vigil.configure() resizes the shared monitor's history, keeping the newest records."""
    for value in range(5):
        performance_monitor.record_histogram("test.retention_ms", value)
    vigil.configure({"monitoring": {"metrics": {"retention_count": 2}}})
    performance_monitor.record_histogram("test.retention_ms", 99)
    values = [r["value"] for r in performance_monitor.get_all_metrics()["test.retention_ms"]]
    assert values == [4, 99]


def test_stats_include_percentiles() -> None:
    """p50/p95/p99 interpolate over the retained values."""
    monitor = _monitor()
    for value in range(1, 101):
        monitor.record_histogram("latency_ms", value)
    stats = monitor.get_metric_stats("latency_ms")
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p95"] == pytest.approx(95.05)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["avg"] == pytest.approx(50.5)


def test_unknown_metric_stats_are_empty() -> None:
    """Stats of a name never recorded have count 0 and no values."""
    stats = _monitor().get_metric_stats("nothing")
    assert stats["count"] == 0
    assert stats["avg"] is None


def test_get_all_metrics_shape_and_clock() -> None:
    """Records carry the injected clock's wall time, the value and the tags."""
    clock = FakeClock()
    monitor = _monitor(clock=clock)
    monitor.increment_counter("api_calls", tags={"endpoint": "/chat"})
    assert monitor.get_all_metrics() == {
        "api_calls": [{"timestamp": clock.time(), "value": 1.0, "tags": {"endpoint": "/chat"}}]}


def test_counts_exact_under_concurrent_threads() -> None:
    """8 threads x 5,000 increments give exactly 40,000."""
    monitor = _monitor()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(5000):
            monitor.increment_counter("hits", tags={"kind": "x"})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert monitor.registry.get_sample_value("hits_total", {"kind": "x"}) == 40000


def test_label_cardinality_is_capped() -> None:
    """Past the cap, new label values go to one 'other' series and are counted as dropped."""
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": 3}}})
    monitor = _monitor()
    for user in range(10):
        monitor.increment_counter("logins", tags={"user": f"u{user}"})
    reg = monitor.registry
    assert reg.get_sample_value("logins_total", {"user": "u2"}) == 1
    assert reg.get_sample_value("logins_total", {"user": "u3"}) is None
    assert reg.get_sample_value("logins_total", {"user": "other"}) == 7
    assert reg.get_sample_value("vigil_dropped_series_total", {"metric": "logins_total"}) == 7


def test_shared_monitor_holds_process_metrics() -> None:
    """The module-level monitor's registry (the one the exporter serves) has process_*."""
    text = generate_latest(performance_monitor.registry).decode()
    assert "process_cpu_seconds_total" in text
    assert "python_info" in text


def test_monitor_without_process_metrics_has_none() -> None:
    """A fresh monitor's registry holds only what it records."""
    assert generate_latest(_monitor().registry) == b""


def test_bad_retention_argument_is_a_config_error() -> None:
    """retention_count must be an integer >= 1; a string is a ConfigError, not a TypeError."""
    with pytest.raises(vigil.ConfigError, match="retention_count: got 0"):
        PerformanceMonitor(registry=CollectorRegistry(), retention_count=0)
    with pytest.raises(vigil.ConfigError, match="retention_count: got 'x'; expected an integer"):
        PerformanceMonitor(registry=CollectorRegistry(), retention_count="x")  # type: ignore[arg-type]


def test_a_description_is_the_help_text_and_ms_counters_and_gauges_are_seconds() -> None:
    """description= gives the family its HELP; counters and gauges in milliseconds are exposed
    in seconds too, with seconds buckets for histograms; two seed names that would become one
    Prometheus name are refused."""
    monitor = _monitor()
    monitor.increment_counter("busy_ms", 1500, description="Time spent busy.")
    monitor.record_gauge("lag_milliseconds", 250)
    monitor.record_histogram("fetch.latency_ms", 120, description="Fetch latency.")
    reg = monitor.registry
    assert reg.get_sample_value("busy_seconds_total") == pytest.approx(1.5)
    assert reg.get_sample_value("lag_seconds") == pytest.approx(0.25)
    assert reg.get_sample_value("fetch_latency_seconds_bucket", {"le": "0.25"}) == 1
    helps = {f.name: f.documentation for f in reg.collect()}
    assert helps["busy_seconds"] == "Time spent busy."
    assert helps["fetch_latency_seconds"] == "Fetch latency."
    assert "milliseconds" in helps["lag_seconds"]
    with pytest.raises(ValueError, match="rename one"):
        monitor.record_gauge("lag_seconds", 1)


def test_exposed_names_follow_kind_and_unit() -> None:
    """Counters end in _total once, milliseconds become seconds (factor 0.001) before _total,
    other names keep factor 1; reserved and digit-leading label names are made valid."""
    assert exposed_name("jobs", "counter") == ("jobs_total", 1.0)
    assert exposed_name("jobs_total", "counter") == ("jobs_total", 1.0)
    assert exposed_name("busy_ms_total", "counter") == ("busy_seconds_total", 0.001)
    assert exposed_name("x.Duration_MS", "histogram") == ("x_Duration_seconds", 0.001)
    assert exposed_name("items", "gauge") == ("items", 1.0)
    assert exposed_name("msgs", "gauge") == ("msgs", 1.0)  # "ms" only as a suffix
    assert (label_name("__name__"), label_name("1x"), label_name("")) == ("tag__name__", "_1x",
                                                                          "_")


def test_tags_colliding_as_label_names_are_refused() -> None:
    """'a.b' and 'a-b' would be one label: the first record says so, and nothing is kept."""
    monitor = _monitor()
    with pytest.raises(ValueError, match="collide as label names"):
        monitor.increment_counter("jobs", tags={"a.b": 1, "a-b": 2})
    assert monitor.metric_names() == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, decimal.Decimal("NaN"), None])
def test_counter_increments_must_be_finite_and_non_negative(value: object) -> None:
    """NaN, infinity, negatives, a Decimal NaN (whose comparison raises) and None are refused
    with the counter's name and the value shown, and leave no record."""
    monitor = _monitor()
    with pytest.raises(ValueError, match=r"counter 'jobs': increment must be a finite number"):
        monitor.increment_counter("jobs", value)  # type: ignore[arg-type]
    assert monitor.get_metric_stats("jobs")["count"] == 0


def test_a_value_whose_repr_raises_still_makes_a_message() -> None:
    """The error still has a message when the value's repr (and so its str) raises."""

    class Odd(float):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(ValueError, match=r"got <unprintable Odd>$"):
        _monitor().record_histogram("lat", Odd(-1.0))


def test_unhashable_and_unprintable_names_are_found_as_their_text() -> None:
    """A name that is not a str is recorded under its text and found again by either form."""
    monitor = _monitor()
    name = ["un", "hashable"]
    monitor.record_gauge(name, 3)  # type: ignore[arg-type]
    assert monitor.get_metric_stats(name)["max"] == 3  # type: ignore[arg-type]
    assert monitor.get_metric_stats("['un', 'hashable']")["count"] == 1


def test_summary_of_one_value_is_that_value() -> None:
    """A single record is every percentile (statistics.quantiles needs two)."""
    stats = summarize([(0.0, 7.5, None)])
    assert stats == {"count": 1, "sum": 7.5, "min": 7.5, "max": 7.5, "avg": 7.5,
                     "p50": 7.5, "p95": 7.5, "p99": 7.5}


def test_reconfigure_resizes_decorated_histories_too() -> None:
    """A new retention_count keeps the newest calls of a decorated function as well; a
    monitor given retention_count= ignores configure."""
    monitor, fixed = _monitor(), _monitor(retention_count=5)

    @monitor_performance("resized", monitor=monitor)
    @monitor_performance("fixed", monitor=fixed)
    def work() -> None:
        pass

    for _ in range(5):
        work()
    config = vigil.config.load_config({"monitoring": {"metrics": {"retention_count": 2}}})
    for each in (monitor, fixed):
        each.reconfigure(config)
    work()
    assert monitor.get_metric_stats("resized.calls")["count"] == 2
    assert fixed.get_metric_stats("fixed.calls")["count"] == 5
    assert monitor.registry.get_sample_value("vigil_function_calls_total",
                                             {"function": "resized"}) == 6
