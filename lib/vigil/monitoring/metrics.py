"""Metrics: the seed's ``PerformanceMonitor`` on top of prometheus_client.

Two views of the same records:

* **Local, by the seed's names.** ``increment_counter("api_calls")``,
  ``record_histogram("response_time_ms", 123.4)``: ``get_metric_stats(name)`` and
  ``get_all_metrics()`` answer from a bounded history per name (``metrics.retention_count``
  records). Stats cover the records still retained.
* **Prometheus, by conventional names**, on the monitor's own ``CollectorRegistry``
  (``.registry``): the seed name is sanitised (``my_function.duration_ms`` ->
  ``my_function_duration_ms``), counters get ``_total``, tags become labels, and histogram
  buckets follow the unit suffix (``_ms`` -> milliseconds, ``_seconds`` -> seconds,
  ``_bytes`` -> bytes).

One name keeps one kind and one set of tag keys; a mismatch raises ``ValueError`` at the call
that introduced it. Label sets per metric are capped (``metrics.max_series_per_metric``).

``@monitor_performance(name)`` records the seed's ``name.duration_ms``, ``name.calls`` and
``name.errors`` locally, and ``vigil_function_*`` in Prometheus, with the current trace id as
an exemplar on the duration.

The module-level :data:`performance_monitor` owns the registry the exporter serves; every
built-in ``vigil_*`` metric is registered there unless a component is given another registry.
"""

from __future__ import annotations

import functools
import inspect
import re
import statistics
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import VigilConfig, get_config, on_configure
from vigil.monitoring import instruments
from vigil.monitoring.context import current_span
from vigil.monitoring.resources import ResourceMonitor, ResourceUsage

__all__ = [
    "MetricKind",
    "PerformanceMonitor",
    "monitor_performance",
    "performance_monitor",
    "prometheus_name",
]

MetricKind = Literal["counter", "gauge", "histogram"]
P = ParamSpec("P")
R = TypeVar("R")

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
BYTE_BUCKETS: tuple[float, ...] = tuple(
    float(1024 ** i * m) for i in range(1, 4) for m in (1, 4, 16, 64, 256))
GENERIC_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                                      20000, 50000, 100000)
_PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
_UPDATE: dict[str, str] = {"counter": "inc", "gauge": "set", "histogram": "observe"}


def prometheus_name(name: str) -> str:
    """A valid Prometheus metric name for a seed-style name (``a.b-c`` -> ``a_b_c``)."""
    if not name:
        raise ValueError("metric name must not be empty")
    cleaned = _INVALID_NAME_CHARS.sub("_", name)
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _label_name(tag: str) -> str:
    cleaned = _INVALID_LABEL_CHARS.sub("_", str(tag)) or "_"
    cleaned = "_" + cleaned if cleaned[0].isdigit() else cleaned
    # Names starting with "__" are reserved by Prometheus.
    return "tag" + cleaned if cleaned.startswith("__") else cleaned


def _buckets_for(name: str) -> tuple[float, ...]:
    lowered = name.lower()
    if lowered.endswith(("_ms", "_milliseconds")):
        return instruments.MILLISECOND_BUCKETS
    if lowered.endswith(("_seconds", "_s", "_sec")):
        return instruments.SECOND_BUCKETS
    if lowered.endswith("_bytes"):
        return BYTE_BUCKETS
    return GENERIC_BUCKETS


@dataclass(slots=True)
class _Series:
    """One seed-named metric: its local history and (unless local-only) its Prometheus family."""

    name: str
    kind: MetricKind
    tag_keys: tuple[str, ...]  # sorted, as given by the caller
    history: deque[tuple[float, float, Mapping[str, str] | None]]
    family: instruments.Family[Any] | None
    unlabelled: Any = None  # the metric itself when there are no tags

    def child(self, tags: Mapping[str, object] | None) -> Any:
        if not self.tag_keys:
            return self.unlabelled
        assert self.family is not None
        assert tags is not None
        return self.family.labels(*(tags[k] for k in self.tag_keys))


class PerformanceMonitor:
    """The seed's metrics recorder; each instance owns its own prometheus_client registry.

    ``registry`` (default: a new ``CollectorRegistry``) is where the Prometheus side goes;
    ``retention_count`` bounds the local history per name (default ``metrics.retention_count``);
    ``clock`` stamps local records. ``process_metrics=True`` also registers prometheus_client's
    process and platform collectors (``process_*``, ``python_info``) on the registry.
    """

    def __init__(self, *, registry: CollectorRegistry | None = None,
                 retention_count: int | None = None, clock: Clock | None = None,
                 process_metrics: bool = False) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._fixed_retention = retention_count is not None
        self._retention = retention_count if retention_count is not None else \
            get_config().monitoring.metrics.retention_count
        if self._retention < 1:
            from vigil.config import ConfigError

            raise ConfigError("retention_count", retention_count, "must be an integer >= 1")
        self._series: dict[str, _Series] = {}
        self._prom_owner: dict[str, str] = {}  # Prometheus name -> the seed name that owns it
        self._lock = threading.Lock()
        self._resources: ResourceMonitor | None = None
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # --- the seed's recording API ---------------------------------------------------------

    def increment_counter(self, name: str, value: float = 1,
                          tags: Mapping[str, object] | None = None) -> None:
        """Add ``value`` (>= 0) to counter ``name`` (Prometheus: ``<name>_total``)."""
        if value < 0:
            raise ValueError(f"counter {name!r}: increment must be >= 0, got {value!r}")
        self._record(name, "counter", value, tags)

    def record_gauge(self, name: str, value: float,
                     tags: Mapping[str, object] | None = None) -> None:
        """Set gauge ``name`` to ``value``."""
        self._record(name, "gauge", value, tags)

    def record_histogram(self, name: str, value: float,
                         tags: Mapping[str, object] | None = None) -> None:
        """Observe ``value`` in histogram ``name``; buckets fit its unit suffix."""
        self._record(name, "histogram", value, tags)

    def _record(self, name: str, kind: MetricKind, value: float,
                tags: Mapping[str, object] | None) -> None:
        series = self._get_series(name, kind, tags)
        child = series.child(tags)
        if child is not None:  # None for the decorator's local-only seed names
            getattr(child, _UPDATE[kind])(value)
        series.history.append((self._clock.time(), float(value), _frozen_tags(tags)))

    def get_metric_stats(self, name: str) -> dict[str, float | int | None]:
        """``count, sum, min, max, avg, p50, p95, p99`` over the retained records of ``name``.

        An unknown name gives ``count`` 0 and ``None`` for the rest.
        """
        series = self._series.get(name)
        values = sorted(v for _, v, _ in list(series.history)) if series is not None else []
        if not values:
            return {"count": 0, "sum": 0.0, "min": None, "max": None, "avg": None,
                    "p50": None, "p95": None, "p99": None}
        total = sum(values)
        stats: dict[str, float | int | None] = {
            "count": len(values), "sum": total, "min": values[0], "max": values[-1],
            "avg": total / len(values)}
        for key, pct in _PERCENTILES:
            stats[key] = _percentile(values, pct)
        return stats

    def get_all_metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Every name's retained records: ``{name: [{"timestamp", "value", "tags"}, ...]}``."""
        with self._lock:
            series = list(self._series.values())
        return {s.name: [{"timestamp": ts, "value": v, "tags": dict(tags) if tags else {}}
                         for ts, v, tags in list(s.history)] for s in series}

    def metric_names(self) -> list[str]:
        """The seed names recorded so far, sorted."""
        with self._lock:
            return sorted(self._series)

    # --- resources (delegated to vigil.monitoring.resources) ------------------------------

    def capture_resource_usage(self) -> ResourceUsage:
        """CPU, memory and threads of this process and the machine, now.

        Also updates the ``vigil_process_*``/``vigil_system_*`` gauges on this registry.
        """
        return self._resource_monitor().sample_once()

    def start_monitoring(self, interval: float | None = None) -> bool:
        """Start the background sampler updating ``vigil_process_*``/``vigil_system_*``.

        One thread at most: a second call while running returns ``False``.
        """
        return self._resource_monitor().start(interval)

    def stop_monitoring(self, timeout: float | None = None) -> None:
        """Stop the sampler (it wakes at once; no waiting for the interval to end)."""
        if self._resources is not None:
            self._resources.stop(timeout)

    @property
    def monitoring(self) -> bool:
        """Whether the resource sampler is running."""
        return self._resources is not None and self._resources.running

    def _resource_monitor(self) -> ResourceMonitor:
        with self._lock:
            if self._resources is None:
                self._resources = ResourceMonitor(registry=self.registry)
            return self._resources

    # --- internals ------------------------------------------------------------------------

    def _get_series(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
                    *, local_only: bool = False) -> _Series:
        series = self._series.get(name)
        if series is None:
            series = self._create_series(name, kind, tags, local_only)
        if series.kind != kind:
            raise ValueError(f"metric {name!r} is a {series.kind}; it cannot also be used as a "
                             f"{kind}")
        if series.tag_keys and (tags is None or len(tags) != len(series.tag_keys)
                                or any(k not in tags for k in series.tag_keys)):
            raise ValueError(_tag_mismatch(name, series.tag_keys, tags))
        if not series.tag_keys and tags:
            raise ValueError(_tag_mismatch(name, series.tag_keys, tags))
        return series

    def _create_series(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
                       local_only: bool) -> _Series:
        tag_keys = tuple(sorted(str(k) for k in tags)) if tags else ()
        with self._lock:
            existing = self._series.get(name)
            if existing is not None:
                return existing
            family = None if local_only else self._register(name, kind, tag_keys)
            series = _Series(name=name, kind=kind, tag_keys=tag_keys,
                             history=deque(maxlen=self._retention), family=family)
            if family is not None and not tag_keys:
                series.unlabelled = family.metric
            self._series[name] = series
            return series

    def _register(self, name: str, kind: MetricKind,
                  tag_keys: tuple[str, ...]) -> instruments.Family[Any]:
        prom = prometheus_name(name)
        if kind == "counter" and not prom.endswith("_total"):
            prom += "_total"
        owner = self._prom_owner.get(prom)
        if owner is not None and owner != name:
            raise ValueError(f"metric {name!r} and {owner!r} both become the Prometheus name "
                             f"{prom!r}; rename one of them")
        labels = [_label_name(k) for k in tag_keys]
        if len(set(labels)) != len(labels):
            raise ValueError(f"metric {name!r}: tags {list(tag_keys)} collide as label names "
                             f"{labels}")
        doc = f"vigil metric {name!r} ({kind}) recorded through PerformanceMonitor."
        family: instruments.Family[Any]
        if kind == "counter":
            family = instruments.counter(self.registry, prom, doc, labels)
        elif kind == "gauge":
            family = instruments.gauge(self.registry, prom, doc, labels)
        else:
            family = instruments.histogram(self.registry, prom, doc, labels,
                                           buckets=_buckets_for(prom))
        self._prom_owner[prom] = name
        return family

    def _local_series(self, name: str, kind: MetricKind) -> _Series:
        """A series kept only locally (the decorator's seed names; Prometheus gets vigil_*)."""
        return self._get_series(name, kind, None, local_only=True)

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply a new ``metrics.retention_count`` (keeping the newest records)."""
        if self._fixed_retention:
            return
        retention = config.monitoring.metrics.retention_count
        with self._lock:
            self._retention = retention
            for series in self._series.values():
                if series.history.maxlen != retention:
                    series.history = deque(series.history, maxlen=retention)


def _percentile(sorted_values: list[float], pct: int) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    # "inclusive" interpolates between ranks like numpy's default (linear) method.
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]


def _frozen_tags(tags: Mapping[str, object] | None) -> Mapping[str, str] | None:
    return {str(k): str(v) for k, v in tags.items()} if tags else None


def _tag_mismatch(name: str, keys: tuple[str, ...], tags: Mapping[str, object] | None) -> str:
    got = sorted(str(k) for k in tags) if tags else []
    return (f"metric {name!r} was first recorded with tag keys {list(keys)}; got {got} "
            f"(one name keeps one set of tag keys)")


# --- @monitor_performance -----------------------------------------------------------------


class _FunctionInstruments:
    """Everything one decorated function records, bound once at decoration time."""

    __slots__ = ("calls", "calls_local", "clock", "duration", "duration_local", "errors",
                 "errors_local", "in_progress", "name")

    def __init__(self, name: str, monitor: PerformanceMonitor) -> None:
        registry = monitor.registry
        self.name = name
        self.clock = monitor._clock
        self.duration = instruments.histogram(
            registry, "vigil_function_duration_seconds",
            "Duration of calls to functions decorated with @monitor_performance.",
            ["function"]).labels(name)
        self.calls = instruments.counter(
            registry, "vigil_function_calls_total",
            "Calls to functions decorated with @monitor_performance.", ["function"]).labels(name)
        self.errors = instruments.counter(
            registry, "vigil_function_errors_total",
            "Calls that raised, by exception class.", ["function", "exception"])
        self.in_progress = instruments.gauge(
            registry, "vigil_function_in_progress",
            "Calls currently running.", ["function"], multiprocess_mode="livesum").labels(name)
        self.duration_local = monitor._local_series(f"{name}.duration_ms", "histogram").history
        self.calls_local = monitor._local_series(f"{name}.calls", "counter").history
        self.errors_local = monitor._local_series(f"{name}.errors", "counter").history

    def finish(self, start: float, error: BaseException | None) -> None:
        seconds = time.perf_counter() - start
        self.in_progress.dec()
        span = current_span()
        if span is None:
            self.duration.observe(seconds)
        else:
            self.duration.observe(seconds, exemplar={"trace_id": span.trace_id})
        self.calls.inc()
        now = self.clock.time()
        self.duration_local.append((now, seconds * 1000.0, None))
        self.calls_local.append((now, 1.0, None))
        if error is not None and isinstance(error, Exception):
            self.errors.labels(self.name, type(error).__name__).inc()
            self.errors_local.append((now, 1.0, None))


def monitor_performance(name: str, *, monitor: PerformanceMonitor | None = None
                        ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Time and count every call of the decorated function.

    Works on plain functions, ``async def`` functions, generators and async generators (for
    generators the time covers the whole iteration). Only ``Exception`` subclasses count as
    errors: a cancelled task or ``KeyboardInterrupt`` is a call, not a failure.
    ``monitor`` defaults to :data:`performance_monitor`.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        inst = _FunctionInstruments(name, monitor if monitor is not None else performance_monitor)
        perf_counter = time.perf_counter
        if inspect.isasyncgenfunction(fn):
            return cast(Callable[P, R], _wrap_async_gen(fn, inst))
        if inspect.isgeneratorfunction(fn):
            return cast(Callable[P, R], _wrap_gen(fn, inst))
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                inst.in_progress.inc()
                start = perf_counter()
                try:
                    result = await async_fn(*args, **kwargs)
                except BaseException as exc:
                    inst.finish(start, exc)
                    raise
                inst.finish(start, None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            inst.in_progress.inc()
            start = perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                inst.finish(start, exc)
                raise
            inst.finish(start, None)
            return result

        return wrapper

    return decorate


def _wrap_gen(fn: Callable[..., Generator[Any, Any, Any]], inst: _FunctionInstruments
              ) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        inst.in_progress.inc()
        start = time.perf_counter()
        try:
            result = yield from fn(*args, **kwargs)
        except BaseException as exc:
            inst.finish(start, exc)
            raise
        inst.finish(start, None)
        return result

    return wrapper


def _wrap_async_gen(fn: Callable[..., AsyncIterator[Any]], inst: _FunctionInstruments
                    ) -> Callable[..., AsyncIterator[Any]]:
    # Values sent with asend() are not forwarded; iterate-only async generators are the
    # common case and forwarding would need a hand-written state machine.
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        inst.in_progress.inc()
        start = time.perf_counter()
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except BaseException as exc:
            inst.finish(start, exc)
            raise
        inst.finish(start, None)

    return wrapper


# The process-wide monitor; its registry is what the exporter serves.
performance_monitor = PerformanceMonitor(process_metrics=True)


@on_configure
def _on_configure(config: VigilConfig) -> None:
    performance_monitor.reconfigure(config)

