"""The comparisons of issue 6's table: each builds vigil's subject and its peers' side by side.

Every function takes a :class:`~bench.harness.Budget` and returns :class:`Result` rows. The
objects under test are built fresh here (their own registries), except the tracer: the
``trace_context``/``@trace_execution`` rows use vigil's default ``execution_tracer``, which is
what application code gets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bench.harness import Budget, async_runner, measure, sync_runner

ROOT = Path(__file__).resolve().parent.parent
MICRO = 1e6  # seconds -> microseconds


@dataclass(frozen=True)
class Result:
    """One line of the table: vigil's figure beside a peer's, the ratio and the target.

    ``ratio`` is vigil / peer in the row's unit: for times and sizes lower is better, for
    ``lines/s`` higher is. ``target`` is the bound on the ratio (``None``: shown for context).
    """

    case: str
    vigil: float
    peer_name: str
    peer: float
    unit: str
    target: float | None = None
    op: str = "<="  # how ratio compares with target: "<=", "<" or ">="

    @property
    def ratio(self) -> float:
        return self.vigil / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.op == ">=":
            return self.ratio >= self.target
        if self.op == "<":
            return self.ratio < self.target
        return self.ratio <= self.target


class NullStream:
    """A text stream that keeps nothing: what the logging rows write to."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _us(seconds: dict[str, float]) -> dict[str, float]:
    return {name: value * MICRO for name, value in seconds.items()}


# --- @monitor_performance ----------------------------------------------------------------------


def timed_bound(fn: Callable[[], int], duration: Histogram, calls: Counter,
                label: str) -> Callable[[], int]:
    """The peer of the decorator rows: a hand-written prometheus_client timing decorator, its
    children bound once."""
    observe = duration.labels(label).observe
    inc = calls.labels(label).inc
    perf = time.perf_counter

    def wrapper() -> int:
        start = perf()
        try:
            return fn()
        finally:
            observe(perf() - start)
            inc()

    return wrapper


def decorator_subjects(monitor: Any) -> tuple[Callable[[], int], Histogram, Counter]:
    """The decorator rows' subjects: a ``@monitor_performance`` function on ``monitor`` and the
    histogram and counter (same buckets) a hand-written peer records into."""
    from vigil.monitoring import instruments
    from vigil.monitoring.metrics import monitor_performance

    @monitor_performance("bench_vigil", monitor=monitor)
    def vigil_fn() -> int:
        return 1

    registry = CollectorRegistry()
    duration = Histogram("bench_duration_seconds", "Call duration.", ["function"],
                         registry=registry, buckets=instruments.SECOND_BUCKETS)
    calls = Counter("bench_calls_total", "Calls.", ["function"], registry=registry)
    return vigil_fn, duration, calls


def monitor_performance_rows(budget: Budget) -> list[Result]:
    """``@monitor_performance`` vs a hand-written prometheus_client timing decorator."""
    from vigil.monitoring.metrics import PerformanceMonitor

    vigil_fn, duration, calls = decorator_subjects(PerformanceMonitor())

    def timed_lookup(fn: Callable[[], int]) -> Callable[[], int]:
        perf = time.perf_counter

        def wrapper() -> int:
            start = perf()
            try:
                return fn()
            finally:
                duration.labels("bench_lookup").observe(perf() - start)
                calls.labels("bench_lookup").inc()

        return wrapper

    def plain() -> int:
        return 1

    bound = timed_bound(plain, duration, calls, "bench_bound")
    looked_up = timed_lookup(plain)
    us = _us(measure({
        "vigil": sync_runner("f()", {"f": vigil_fn}),
        "bound": sync_runner("f()", {"f": bound}),
        "lookup": sync_runner("f()", {"f": looked_up}),
    }, budget))
    case = "`@monitor_performance` (duration histogram + calls counter)"
    return [
        Result(case, us["vigil"], "prometheus_client decorator, children bound once",
               us["bound"], "µs", 1.1),
        Result(case, us["vigil"], "prometheus_client decorator, `labels()` per call",
               us["lookup"], "µs"),
    ]


# --- tracing ---------------------------------------------------------------------------------


def tracing_rows(budget: Budget) -> list[Result]:
    """A vigil span (``trace_context`` / ``@trace_execution``) vs OpenTelemetry spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NoOpTracerProvider

    from vigil.monitoring import context
    from vigil.monitoring.tracing import trace_context, trace_execution

    sdk = TracerProvider().get_tracer("bench")  # no span processor: spans are dropped at end
    # vigil alone, as in a process without OpenTelemetry (the SDK is imported here only as the
    # peer): bench.otlp's row measures vigil sharing OpenTelemetry's context.
    context.share_opentelemetry_context(False)
    noop = NoOpTracerProvider().get_tracer("bench")

    @trace_execution("Bench", "decorated")
    def vigil_fn() -> int:
        return 1

    def otel_fn() -> int:  # what a user writes around a function with the SDK
        with sdk.start_as_current_span("decorated"):
            return 1

    us = _us(measure({
        "context": sync_runner("with tc('Bench', 'block'):\n    pass", {"tc": trace_context}),
        "decorated": sync_runner("f()", {"f": vigil_fn}),
        "sdk": sync_runner("with span('block'):\n    pass", {"span": sdk.start_as_current_span}),
        "sdk_fn": sync_runner("f()", {"f": otel_fn}),
        "noop": sync_runner("with span('block'):\n    pass",
                            {"span": noop.start_as_current_span}),
    }, budget))
    context.share_opentelemetry_context(True)
    return [
        Result("`trace_context` span", us["context"], "OpenTelemetry SDK span, no processor",
               us["sdk"], "µs", 0.2),
        Result("`@trace_execution` call", us["decorated"],
               "function in an OpenTelemetry SDK span, no processor", us["sdk_fn"], "µs", 0.2),
        Result("`trace_context` span", us["context"], "OpenTelemetry API no-op span",
               us["noop"], "µs"),
    ]


# --- circuit breaker -------------------------------------------------------------------------


def breaker_rows(budget: Budget) -> list[Result]:
    """``CircuitBreaker.call`` on a closed breaker vs pybreaker and circuitbreaker."""
    import circuitbreaker  # type: ignore[import-untyped]
    import pybreaker

    from vigil.error_handling import CircuitBreaker

    def plain() -> int:
        return 1

    vigil_cb = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, name="bench",
                              registry=CollectorRegistry())
    py_cb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    decorated = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=30,
                                       name="bench")(plain)
    us = _us(measure({
        "vigil": sync_runner("call(f)", {"call": vigil_cb.call, "f": plain}),
        "pybreaker": sync_runner("call(f)", {"call": py_cb.call, "f": plain}),
        "circuitbreaker": sync_runner("f()", {"f": decorated}),
    }, budget))
    case = "`CircuitBreaker.call`, closed, success (locked, counted)"
    return [
        Result(case, us["vigil"], "pybreaker `call`", us["pybreaker"], "µs", 1.0),
        Result(case, us["vigil"], "`circuitbreaker` decorator (no lock)",
               us["circuitbreaker"], "µs"),
    ]


# --- retry -----------------------------------------------------------------------------------


def retry_rows(budget: Budget) -> list[Result]:
    """``@with_retry`` succeeding at once vs backoff and tenacity, sync and async."""
    import backoff
    import tenacity

    from vigil.error_handling import with_retry

    registry = CollectorRegistry()

    def vigil_deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        return with_retry(3, (OSError,), registry=registry)(fn)

    def backoff_deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        return backoff.on_exception(backoff.expo, OSError, max_tries=3)(fn)

    def tenacity_deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        return tenacity.retry(stop=tenacity.stop_after_attempt(3),
                              retry=tenacity.retry_if_exception_type(OSError),
                              wait=tenacity.wait_exponential(), reraise=True)(fn)

    def sync_fn() -> int:
        return 1

    async def async_fn() -> int:
        return 1

    decos = {"vigil": vigil_deco, "backoff": backoff_deco, "tenacity": tenacity_deco}
    loop = asyncio.new_event_loop()
    try:
        sync_us = _us(measure({
            name: sync_runner("f()", {"f": deco(sync_fn)}) for name, deco in decos.items()
        }, budget))
        async_us = _us(measure({
            name: async_runner(deco(async_fn), loop) for name, deco in decos.items()
        }, budget))
    finally:
        loop.close()
    rows = []
    for kind, us in (("sync", sync_us), ("async", async_us)):
        case = f"`@with_retry`, success on the first try, {kind}"
        rows.append(Result(case, us["vigil"], "backoff `on_exception`", us["backoff"], "µs", 0.5))
        rows.append(Result(case, us["vigil"], "tenacity `retry`", us["tenacity"], "µs"))
    return rows


# --- logs ------------------------------------------------------------------------------------


METADATA = {"file": "a.pdf", "size": 1234, "user": "u-42"}


def logging_rows(budget: Budget) -> list[Result]:
    """``StructuredLogger.info`` with metadata vs stdlib + python-json-logger and structlog."""
    import structlog
    from pythonjsonlogger.json import JsonFormatter

    from vigil.monitoring.logs import StructuredLogger

    null = NullStream()
    vigil_log = StructuredLogger("Bench", stream=cast(IO[str], null), registry=CollectorRegistry(),
                                 level="INFO")

    std_log = logging.getLogger("bench.python_json_logger")
    std_log.propagate = False
    std_log.setLevel(logging.INFO)
    handler = logging.StreamHandler(cast(IO[str], null))
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    std_log.handlers[:] = [handler]

    struct_log = structlog.wrap_logger(
        structlog.WriteLogger(null),  # type: ignore[arg-type]
        processors=[structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    ).bind(component="Bench")

    seconds = measure({
        "vigil": sync_runner("log('File processed', metadata=m)",
                             {"log": vigil_log.info, "m": METADATA}),
        "structlog": sync_runner("log('File processed', **m)",
                                 {"log": struct_log.info, "m": METADATA}),
        "stdlib": sync_runner("log('File processed', extra=m)",
                              {"log": std_log.info, "m": METADATA}),
    }, budget)
    rate = {name: 1.0 / value for name, value in seconds.items()}
    case = "`StructuredLogger.info` with metadata, null stream"
    return [
        Result(case, rate["vigil"], "structlog JSON", rate["structlog"], "lines/s", 1.0, ">="),
        Result(case, rate["vigil"], "stdlib logging + python-json-logger", rate["stdlib"],
               "lines/s"),
    ]


# --- /metrics --------------------------------------------------------------------------------

_FAMILIES = 20  # gauges, each with up to 500 label values (vigil's default per-metric cap)


def _series_layout(series: int) -> tuple[int, int]:
    families = min(_FAMILIES, series)
    return families, series // families


def vigil_registry(series: int) -> Any:
    """A PerformanceMonitor holding ``series`` gauge series, recorded through the seed's API."""
    from vigil.monitoring.metrics import PerformanceMonitor

    monitor = PerformanceMonitor()
    families, per_family = _series_layout(series)
    for f in range(families):
        for v in range(per_family):
            monitor.record_gauge(f"bench.gauge_{f}", float(v), tags={"key": str(v)})
    return monitor


def plain_registry(series: int) -> CollectorRegistry:
    """The same series, made with prometheus_client directly."""
    registry = CollectorRegistry()
    families, per_family = _series_layout(series)
    for f in range(families):
        gauge = Gauge(f"bench_gauge_{f}", "A gauge.", ["key"], registry=registry)
        for v in range(per_family):
            gauge.labels(str(v)).set(float(v))
    return registry


def exposition_rows(budget: Budget, series: int) -> list[Result]:
    """``/metrics`` rendering of ``series`` series: vigil's route renderer vs generate_latest."""
    from vigil_exporter.app import render_metrics

    monitor = vigil_registry(series)
    plain = plain_registry(series)
    vigil_body, _ = render_metrics(monitor.registry, "", "")
    plain_body = generate_latest(plain)
    lines = sum(1 for line in plain_body.splitlines() if line and not line.startswith(b"#"))
    if lines != series or vigil_body.count(b"\nbench_gauge_") != series:
        raise AssertionError(f"expected {series} series, rendered {lines}")
    renders = Budget(quick=budget.quick, repeats=budget.repeats, number=1 if budget.quick else 3,
                     sample_seconds=0.0, warmup=1)
    ms = {name: value * 1e3 for name, value in measure({
        "vigil": sync_runner("render(r, '', '')",
                             {"render": render_metrics, "r": monitor.registry}),
        "plain": sync_runner("render(r)", {"render": generate_latest, "r": plain}),
    }, renders).items()}
    return [Result(f"`/metrics`, {series:,} series (the route's `render_metrics`)",
                   ms["vigil"], "`generate_latest`, plain registry", ms["plain"], "ms", 1.05)]


def scrape_rows(budget: Budget, series: int) -> list[Result]:
    """Recording latency on one thread while another renders ``/metrics`` continuously."""
    from vigil.monitoring.metrics import monitor_performance
    from vigil_exporter.app import render_metrics

    monitor = vigil_registry(series)

    @monitor_performance("bench_recorded", monitor=monitor)
    def recorded() -> None:
        return None

    count = 2_000 if budget.quick else 200_000
    repeats = budget.repeats if budget.quick else 5
    perf = time.perf_counter

    def latencies() -> list[float]:
        out = [0.0] * count
        for i in range(count):
            start = perf()
            recorded()
            out[i] = perf() - start
        return out

    def p99(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.99)]

    quiet_p99: list[float] = []
    busy_p99: list[float] = []
    longest: list[float] = []
    render_times: list[float] = []

    def scrape(stop: threading.Event, rendering: threading.Event) -> None:
        while not stop.is_set():
            rendering.set()
            start = perf()
            render_metrics(monitor.registry, "", "")
            render_times.append(perf() - start)

    for _ in range(repeats):
        quiet_p99.append(p99(latencies()))
        stop, rendering = threading.Event(), threading.Event()
        scraper = threading.Thread(target=scrape, args=(stop, rendering), name="bench-scraper",
                                   daemon=True)
        scraper.start()
        rendering.wait()
        busy = latencies()
        stop.set()
        scraper.join()
        busy_p99.append(p99(busy))
        longest.append(max(busy))
    render_ms = statistics.median(render_times) * 1e3
    return [
        Result("recording (`@monitor_performance` call) while `/metrics` renders, p99 latency",
               statistics.median(busy_p99) * MICRO, "the same with no scrape",
               statistics.median(quiet_p99) * MICRO, "µs", 2.0),
        Result("recording while `/metrics` renders, longest single call",
               statistics.median(longest) * 1e3, "one render of the scrape", render_ms, "ms",
               0.5, "<"),
    ]


# --- memory ----------------------------------------------------------------------------------

MEMORY_BUDGET_MB = 20.0


def multiprocess_rows(budget: Budget) -> list[Result]:
    """``@monitor_performance`` under prometheus_client's multiprocess mode, each mode in a
    child process of its own (the mode is fixed at import)."""
    import os
    import tempfile

    figures = {}
    for mode in ("single", "multi"):
        with tempfile.TemporaryDirectory() as folder:
            env = {k: v for k, v in os.environ.items()
                   if k.lower() != "prometheus_multiproc_dir"}
            if mode == "multi":
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            argv = [sys.executable, "-m", "bench.multiprocess"]
            done = subprocess.run(argv + (["--quick"] if budget.quick else []), cwd=ROOT,
                                  env=env, capture_output=True, text=True, check=False,
                                  timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"bench.multiprocess failed ({done.returncode}): "
                               f"{done.stderr[-2000:]}")
        figures[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    multi, single = figures["multi"], figures["single"]
    case = "`@monitor_performance` under `PROMETHEUS_MULTIPROC_DIR`"
    return [
        Result(case, multi["vigil"] * MICRO,
               "prometheus_client decorator, multiprocess mode", multi["peer"] * MICRO, "µs"),
        Result(case, multi["vigil"] * MICRO, "vigil single-process (another process)",
               single["vigil"] * MICRO, "µs"),
    ]


def memory_rows(records: int, baseline: int) -> list[Result]:
    """RSS growth over ``records`` rounds after the first ``baseline``, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--records", str(records),
         "--baseline", str(baseline)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return [Result(f"RSS growth after {records:,} x (log + trace + alert + metric records), "
                   f"from record {baseline:,}",
                   report["growth_mb"], "budget", MEMORY_BUDGET_MB, "MB", 1.0, "<")]
