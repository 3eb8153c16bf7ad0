"""vigil.monitoring.metrics: the seed's PerformanceMonitor and @monitor_performance."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

import vigil
from vigil.monitoring import context
from vigil.monitoring.metrics import (
    PerformanceMonitor,
    monitor_performance,
    performance_monitor,
    prometheus_name,
)
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


def test_decorator_records_seed_names_and_prometheus_metrics() -> None:
    """@monitor_performance records name.duration_ms/calls/errors and vigil_function_*."""
    monitor = _monitor()

    @monitor_performance("my_function", monitor=monitor)
    def my_function(fail: bool) -> str:
        if fail:
            raise KeyError("x")
        return "ok"

    assert my_function(False) == "ok"
    with pytest.raises(KeyError):
        my_function(True)
    assert monitor.get_metric_stats("my_function.calls")["count"] == 2
    assert monitor.get_metric_stats("my_function.errors")["count"] == 1
    assert monitor.get_metric_stats("my_function.duration_ms")["count"] == 2
    reg = monitor.registry
    labels = {"function": "my_function"}
    assert reg.get_sample_value("vigil_function_calls_total", labels) == 2
    assert reg.get_sample_value("vigil_function_duration_seconds_count", labels) == 2
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "my_function", "exception": "KeyError"}) == 1
    assert reg.get_sample_value("vigil_function_in_progress", labels) == 0
    # the seed names stay local: no Prometheus series named after them
    assert reg.get_sample_value("my_function_calls_total") is None


def test_decorator_on_async_function_counts_in_progress() -> None:
    """An async function is timed across its awaits and shows as in progress meanwhile."""
    monitor = _monitor()
    seen: list[float | None] = []

    @monitor_performance("my_function", monitor=monitor)
    async def my_function() -> int:
        seen.append(monitor.registry.get_sample_value("vigil_function_in_progress",
                                                      {"function": "my_function"}))
        await asyncio.sleep(0)
        return 3

    assert asyncio.run(my_function()) == 3
    assert seen == [1.0]
    assert monitor.registry.get_sample_value("vigil_function_calls_total",
                                             {"function": "my_function"}) == 1


def test_decorator_keeps_function_metadata() -> None:
    """The wrapper keeps the wrapped function's name and docstring."""

    @monitor_performance("documented", monitor=_monitor())
    def documented() -> None:
        """Docstring."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docstring."


def test_decorator_on_generators_covers_the_iteration() -> None:
    """Generators and async generators are one call each, ending when exhausted."""
    monitor = _monitor()

    @monitor_performance("gen", monitor=monitor)
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    @monitor_performance("agen", monitor=monitor)
    async def agen() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def drain() -> list[int]:
        return [x async for x in agen()]

    assert list(gen()) == [1, 2]
    assert asyncio.run(drain()) == [1, 2]
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "gen"}) == 1
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "agen"}) == 1


def test_cancellation_is_a_call_not_an_error() -> None:
    """A cancelled coroutine counts as a call but not as an error."""
    monitor = _monitor()

    @monitor_performance("waits", monitor=monitor)
    async def waits() -> None:
        await asyncio.Event().wait()

    async def run() -> None:
        task = asyncio.create_task(waits())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "waits"}) == 1
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "waits", "exception": "CancelledError"}) is None


def test_duration_carries_trace_id_exemplar() -> None:
    """Inside a trace, the duration observation has the trace id as an OpenMetrics exemplar."""
    monitor = _monitor()

    @monitor_performance("traced", monitor=monitor)
    def traced() -> None:
        pass

    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    with context.use_span(span):
        traced()
    text = generate_openmetrics(monitor.registry).decode()
    assert f'# {{trace_id="{span.trace_id}"}}' in text


def test_shared_monitor_holds_process_metrics() -> None:
    """The module-level monitor's registry (the one the exporter serves) has process_*."""
    text = generate_latest(performance_monitor.registry).decode()
    assert "process_cpu_seconds_total" in text
    assert "python_info" in text


def test_monitor_without_process_metrics_has_none() -> None:
    """A fresh monitor's registry holds only what it records."""
    assert generate_latest(_monitor().registry) == b""


def test_decorator_metrics_pass_promtool() -> None:
    """The decorator's families (histogram, exemplar-free text format) are valid exposition."""
    import shutil
    import subprocess

    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")
    monitor = _monitor()

    @monitor_performance("checked", monitor=monitor)
    def checked(fail: bool) -> None:
        if fail:
            raise KeyError("x")

    checked(False)
    with pytest.raises(KeyError):
        checked(True)
    result = subprocess.run(["promtool", "check", "metrics"],
                            input=generate_latest(monitor.registry), capture_output=True,
                            check=False)
    assert (result.stdout + result.stderr).decode() == ""


def test_exception_classes_are_capped() -> None:
    """Past max_series_per_metric exception classes, new ones are counted as 'other'."""
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": 2}}})
    monitor = _monitor()

    @monitor_performance("raises", monitor=monitor)
    def raises(kind: type[Exception]) -> None:
        raise kind()

    for kind in (KeyError, ValueError, OSError, TypeError):
        with pytest.raises(kind):
            raises(kind)
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "raises", "exception": "ValueError"}) == 1
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "raises", "exception": "other"}) == 2


def test_multiprocess_mode_uses_prometheus_client_values(tmp_path: object) -> None:
    """Under PROMETHEUS_MULTIPROC_DIR the decorator's counts reach MultiProcessCollector."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance

        @monitor_performance("worker_job", monitor=PerformanceMonitor())
        def job() -> None:
            pass

        for _ in range(3):
            job()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(registry.get_sample_value("vigil_function_calls_total",
                                        {"function": "worker_job"}))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"


def test_bad_retention_argument_is_a_config_error() -> None:
    """retention_count must be an integer >= 1; a string is a ConfigError, not a TypeError."""
    with pytest.raises(vigil.ConfigError, match="retention_count: got 0"):
        PerformanceMonitor(registry=CollectorRegistry(), retention_count=0)
    with pytest.raises(vigil.ConfigError, match="retention_count: got 'x'; expected an integer"):
        PerformanceMonitor(registry=CollectorRegistry(), retention_count="x")  # type: ignore[arg-type]


def test_function_series_carry_created_like_prometheus_clients_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """vigil_function_calls/errors/duration have _created samples (the decoration time), as
    prometheus_client's counters and histograms do, and none when it is told not to write them."""
    import time

    from prometheus_client import Counter
    from prometheus_client import metrics as prometheus_metrics

    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)
    before = time.time()

    @monitor_performance("created_probe", monitor=monitor)
    def probe() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        probe()
    peer = Counter("peer_calls", "A prometheus_client counter.", registry=registry)
    peer.inc()
    labels = {"function": "created_probe"}
    for name in ("vigil_function_calls_created", "vigil_function_duration_seconds_created"):
        value = registry.get_sample_value(name, labels)
        assert value is not None, name
        assert before <= value <= time.time(), name
    assert registry.get_sample_value("vigil_function_errors_created",
                                     {**labels, "exception": "KeyError"}) is not None
    assert registry.get_sample_value("peer_calls_created") is not None
    monkeypatch.setattr(prometheus_metrics, "_use_created", False)
    assert registry.get_sample_value("vigil_function_calls_created", labels) is None


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
