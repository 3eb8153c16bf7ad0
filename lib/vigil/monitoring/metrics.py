"""Metrics: the seed's ``PerformanceMonitor`` on top of prometheus_client.

Two views of the same records:

* **Local, by the seed's names.** ``increment_counter("api_calls")``,
  ``record_histogram("response_time_ms", 123.4)``: ``get_metric_stats(name)`` and
  ``get_all_metrics()`` answer from a bounded history per name (``metrics.retention_count``
  records). Stats cover the records still retained.
* **Prometheus, by conventional names**, on the monitor's registry (``.registry``): the seed
  name is sanitised (``my_function.duration`` -> ``my_function_duration``), counters get
  ``_total``, tags become labels, and a name in milliseconds is exposed in Prometheus's base
  unit, seconds (``response_time_ms``, ``x.duration_milliseconds`` -> ``..._seconds``, each
  value divided by 1000; the local view keeps what was recorded). Histogram buckets follow the
  unit (seconds, ``_bytes``, else generic). HELP is ``description=`` when the first record of
  a name gives one, else generated.

One name keeps one kind and one set of tag keys; a mismatch raises ``ValueError`` at the call
that introduced it. Label sets per metric are capped (``metrics.max_series_per_metric``).

Names, tag keys and tag values follow :mod:`vigil.text`'s rule where they enter (a lone
surrogate becomes U+FFFD, an unprintable object ``<unprintable TypeName>``), so no record can
leave the registry unrenderable. Values that would make the exposition invalid are refused with
a ``ValueError`` naming the metric and the value: a counter increment must be a finite number
>= 0, and so must a histogram observation (OpenMetrics forbids a NaN or negative ``_sum``, and
``+Inf`` would pin the sum there for good). Gauges take any number, NaN included.

``@monitor_performance(name)`` records the seed's ``name.duration_ms``, ``name.calls`` and
``name.errors`` locally, and ``vigil_function_*`` in Prometheus, with the current trace id as
an exemplar on the duration.

The module-level :data:`performance_monitor` owns the registry the exporter serves; every
built-in ``vigil_*`` metric is registered there unless a component is given another registry.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import math
import re
import statistics
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from vigil._lazy import shared, shared_objects
from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import VigilConfig, get_config, on_configure
from vigil.monitoring import instruments
from vigil.monitoring.context import current_span as _current_span
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.monitoring.resources import ResourceMonitor, ResourceUsage
from vigil.text import safe_text

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

# Colons too: Prometheus reserves them for recording rules, and prometheus_client's OpenMetrics
# writer escapes them in sample names but not in the family's, so a name with one is exposed
# as two families that do not match (a parse error for some names, such as ":").
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
BYTE_BUCKETS: tuple[float, ...] = tuple(
    float(1024 ** i * m) for i in range(1, 4) for m in (1, 4, 16, 64, 256))
GENERIC_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                                      20000, 50000, 100000)
_PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))
_UPDATE: dict[str, str] = {"counter": "inc", "gauge": "set", "histogram": "observe"}
_INF = math.inf


def prometheus_name(name: str) -> str:
    """A valid Prometheus metric name for a seed-style name (``a.b-c`` -> ``a_b_c``; colons,
    reserved for recording rules, become underscores as well)."""
    if not name:
        raise ValueError("metric name must not be empty")
    cleaned = _INVALID_NAME_CHARS.sub("_", name)
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _label_name(tag: str) -> str:
    cleaned = _INVALID_LABEL_CHARS.sub("_", str(tag)) or "_"
    cleaned = "_" + cleaned if cleaned[0].isdigit() else cleaned
    # Names starting with "__" are reserved by Prometheus.
    return "tag" + cleaned if cleaned.startswith("__") else cleaned


_MILLISECONDS = re.compile(r"_(?:ms|milliseconds)(?=(?:_total)?$)", re.IGNORECASE)


def _in_base_units(prom: str) -> tuple[str, float]:
    """A name in milliseconds as Prometheus wants it, in seconds: ``x_duration_ms`` ->
    (``x_duration_seconds``, 0.001); any other name as it is, factor 1."""
    converted = _MILLISECONDS.sub("_seconds", prom)
    return (converted, 0.001) if converted != prom else (prom, 1.0)


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
    scale: float = 1.0  # Prometheus value = recorded value x scale (0.001: ms -> seconds)
    # The decorator's seed names (name.duration_ms/.calls/.errors) are views of one shared
    # history of calls instead of three histories appended to on every call.
    view: Callable[[], list[tuple[float, float, Mapping[str, str] | None]]] | None = None

    def records(self) -> list[tuple[float, float, Mapping[str, str] | None]]:
        return self.view() if self.view is not None else list(self.history)

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
        settings = get_config().monitoring.metrics
        if retention_count is not None:  # validated by the settings class, like the config file
            settings = dataclasses.replace(settings, retention_count=retention_count)
        self._retention = settings.retention_count
        self._series: dict[str, _Series] = {}
        self._prom_owner: dict[str, str] = {}  # Prometheus name -> the seed name that owns it
        self._lock = threading.Lock()
        self._resources: ResourceMonitor | None = None
        self._functions: dict[str, Recorder] = {}  # decorated names -> their recorder
        self._function_collector: _FunctionCollector | None = None
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # --- the seed's recording API ---------------------------------------------------------

    def increment_counter(self, name: str, value: float = 1,
                          tags: Mapping[str, object] | None = None, *,
                          description: str | None = None) -> None:
        """Add ``value`` (a finite number >= 0) to counter ``name`` (Prometheus:
        ``<name>_total``). NaN, infinite and negative increments raise ``ValueError``.
        ``description`` is the Prometheus HELP text (used when the name is first recorded)."""
        try:
            ok = 0 <= value < _INF  # NaN fails both comparisons
        except Exception:  # not a number at all (or a Decimal NaN, which raises)
            ok = False
        if not ok:
            raise ValueError(f"counter {safe_text(name)!r}: increment must be a finite number "
                             f">= 0, got {_shown(value)}")
        self._record(name, "counter", value, tags, description)

    def record_gauge(self, name: str, value: float,
                     tags: Mapping[str, object] | None = None, *,
                     description: str | None = None) -> None:
        """Set gauge ``name`` to ``value`` (``description``: the HELP text, as above)."""
        self._record(name, "gauge", value, tags, description)

    def record_histogram(self, name: str, value: float,
                         tags: Mapping[str, object] | None = None, *,
                         description: str | None = None) -> None:
        """Observe ``value`` (a finite number >= 0) in histogram ``name``; buckets fit its unit
        suffix. NaN, infinite and negative values raise ``ValueError``. ``description``: the
        HELP text, as above."""
        try:
            ok = 0 <= value < _INF
        except Exception:
            ok = False
        if not ok:
            raise ValueError(f"histogram {safe_text(name)!r}: observation must be a finite "
                             f"number >= 0, got {_shown(value)}")
        self._record(name, "histogram", value, tags, description)

    def _record(self, name: str, kind: MetricKind, value: float,
                tags: Mapping[str, object] | None, description: str | None = None) -> None:
        series, tags = self._get_series(name, kind, tags, description=description)
        child = series.child(tags)
        if child is not None:  # None for the decorator's local-only seed names
            # In base units for Prometheus: a seed name in milliseconds is exposed in seconds.
            getattr(child, _UPDATE[kind])(value if series.scale == 1.0 else value * series.scale)
        series.history.append((self._clock.time(), float(value), _frozen_tags(tags)))

    def get_metric_stats(self, name: str) -> dict[str, float | int | None]:
        """``count, sum, min, max, avg, p50, p95, p99`` over the retained records of ``name``.

        An unknown name gives ``count`` 0 and ``None`` for the rest.
        """
        series = self._find(name)
        values = sorted(v for _, v, _ in series.records()) if series is not None else []
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
                         for ts, v, tags in s.records()] for s in series}

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

    def leave_monitoring_to_workers(self) -> None:
        """Stop the sampler in this process and run it in each process forked from it.

        For a prefork master (:func:`vigil.gunicorn.when_ready`): the workers sample
        themselves; a sampler that was not running stays off everywhere.
        """
        if self._resources is not None:
            self._resources.leave_to_workers()

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

    def _find(self, name: object) -> _Series | None:
        """The series recorded as ``name`` (given as is, or as its text), if any."""
        try:
            series = self._series.get(name)  # type: ignore[call-overload]
        except TypeError:  # an unhashable name
            series = None
        return series if series is not None else self._series.get(safe_text(name))

    def _get_series(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
                    *, local_only: bool = False, description: str | None = None
                    ) -> tuple[_Series, Mapping[str, object] | None]:
        """The series and the tags to record it with (keys as text if they had to be)."""
        try:  # _find inlined: this is every record's first step
            series = self._series.get(name)
        except TypeError:  # an unhashable name
            series = None
        if series is None:
            series = self._series.get(safe_text(name)) or \
                self._create_series(name, kind, tags, local_only, description)
        if series.kind != kind:
            raise ValueError(f"metric {series.name!r} is a {series.kind}; it cannot also be "
                             f"used as a {kind}")
        keys = series.tag_keys
        if keys:
            if tags is None or len(tags) != len(keys) or any(k not in tags for k in keys):
                # Keys that are not plain text (a lone surrogate, an int) match as their text.
                tags = {safe_text(k): v for k, v in tags.items()} if tags else tags
                if tags is None or len(tags) != len(keys) or any(k not in tags for k in keys):
                    raise ValueError(_tag_mismatch(series.name, keys, tags))
        elif tags:
            raise ValueError(_tag_mismatch(series.name, keys, tags))
        return series, tags

    def _create_series(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
                       local_only: bool, description: str | None = None) -> _Series:
        name = safe_text(name)
        tag_keys = tuple(sorted(safe_text(k) for k in tags)) if tags else ()
        with self._lock:
            existing = self._series.get(name)
            if existing is not None:
                return existing
            family, scale = (None, 1.0) if local_only else self._register(
                name, kind, tag_keys, description)
            series = _Series(name=name, kind=kind, tag_keys=tag_keys,
                             history=deque(maxlen=self._retention), family=family, scale=scale)
            if family is not None and not tag_keys:
                series.unlabelled = family.metric
            self._series[name] = series
            return series

    def _register(self, name: str, kind: MetricKind, tag_keys: tuple[str, ...],
                  description: str | None = None) -> tuple[instruments.Family[Any], float]:
        """The Prometheus family of seed name ``name`` and the factor its values take there."""
        prom, scale = _in_base_units(prometheus_name(name))
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
        doc = (safe_text(description) if description else
               f"vigil metric {name!r} ({kind}) recorded through PerformanceMonitor"
               + (" (in seconds; recorded in milliseconds)." if scale != 1.0 else "."))
        family: instruments.Family[Any]
        if kind == "counter":
            family = instruments.counter(self.registry, prom, doc, labels)
        elif kind == "gauge":
            family = instruments.gauge(self.registry, prom, doc, labels)
        else:
            family = instruments.histogram(self.registry, prom, doc, labels,
                                           buckets=_buckets_for(prom))
        self._prom_owner[prom] = name
        return family, scale

    def _local_series(self, name: str, kind: MetricKind) -> _Series:
        """A series kept only locally (the decorator's seed names; Prometheus gets vigil_*)."""
        return self._get_series(name, kind, None, local_only=True)[0]

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
            for calls in self._functions.values():
                calls.resize(retention)


def _percentile(sorted_values: list[float], pct: int) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    # "inclusive" interpolates between ranks like numpy's default (linear) method.
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, even when that repr raises."""
    try:
        return safe_text(repr(value))
    except Exception:
        return safe_text(value)


def _frozen_tags(tags: Mapping[str, object] | None) -> Mapping[str, str] | None:
    return {safe_text(k): safe_text(v) for k, v in tags.items()} if tags else None


def _tag_mismatch(name: str, keys: tuple[str, ...], tags: Mapping[str, object] | None) -> str:
    got = sorted(safe_text(k) for k in tags) if tags else []
    return (f"metric {name!r} was first recorded with tag keys {list(keys)}; got {got} "
            f"(one name keeps one set of tag keys)")


# --- @monitor_performance -----------------------------------------------------------------

CallRecord = tuple[float, float, bool]  # (wall time, duration in ms, raised)


class _CallHistory:
    """The last ``retention`` calls of one decorated function, read as three seed names."""

    __slots__ = ("calls",)

    def __init__(self, retention: int) -> None:
        self.calls: deque[CallRecord] = deque(maxlen=retention)

    def resize(self, retention: int) -> None:
        if self.calls.maxlen != retention:
            self.calls = deque(self.calls, maxlen=retention)

    def durations(self) -> list[tuple[float, float, Mapping[str, str] | None]]:
        return [(ts, ms, None) for ts, ms, _ in list(self.calls)]

    def ones(self) -> list[tuple[float, float, Mapping[str, str] | None]]:
        return [(ts, 1.0, None) for ts, _, _ in list(self.calls)]

    def failures(self) -> list[tuple[float, float, Mapping[str, str] | None]]:
        return [(ts, 1.0, None) for ts, _, failed in list(self.calls) if failed]


class _FunctionRecorder(_CallHistory):
    """One decorated function's Prometheus numbers, all updated under ONE lock.

    prometheus_client takes a lock per value (the histogram's sum, its bucket, the counter,
    the in-progress gauge twice): four to five acquisitions per call. Here one acquisition
    covers them all and ``in_progress`` is derived (calls started minus calls finished, the
    start counted with ``itertools.count``, atomic under the GIL), so the decorator costs less
    than a hand-written prometheus_client timing decorator. :class:`_FunctionCollector` turns
    the numbers into the ``vigil_function_*`` families at scrape time.
    """

    __slots__ = (
        "_started",
        "bounds",
        "buckets",
        "count",
        "created",
        "enter",
        "errors",
        "errors_cap",
        "exemplars",
        "les",
        "lock",
        "name",
        "now",
        "total",
    )

    def __init__(self, name: str, retention: int, now: Callable[[], float],
                 errors_cap: instruments.SeriesCap) -> None:
        super().__init__(retention)
        self.name = name
        self.now = now
        self.created = time.time()  # the series' _created: from here on they count
        self.lock = threading.Lock()
        self.bounds = instruments.SECOND_BUCKETS
        self.les: tuple[str, ...] = tuple(
            floatToGoString(b) for b in (*self.bounds, math.inf))  # type: ignore[no-untyped-call]
        self.buckets = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0
        self.errors: dict[str, int] = {}
        self.errors_cap = errors_cap
        self.exemplars: dict[int, Exemplar] = {}
        self._started = itertools.count()
        self.enter: Callable[[], object] = self._started.__next__

    def started(self) -> int:
        # itertools.count has no read: its repr holds the next value. A scrape-time cost only.
        return int(repr(self._started)[6:-1])

    def finish(self, seconds: float, error: BaseException | None) -> None:
        index = bisect_left(self.bounds, seconds)  # first bucket with le >= seconds
        span = _current_span()
        now = self.now()
        failed = error is not None and isinstance(error, Exception)
        with self.lock:
            self.count += 1
            self.total += seconds
            self.buckets[index] += 1
            if span is not None:
                self.exemplars[index] = Exemplar({"trace_id": span.trace_id}, seconds, now)
            if failed:
                kind = type(error).__name__
                if kind not in self.errors and not self.errors_cap.admit((self.name, kind)):
                    kind = instruments.OVERFLOW_LABEL_VALUE
                self.errors[kind] = self.errors.get(kind, 0) + 1
        self.calls.append((now, seconds * 1000.0, failed))


class _FunctionCollector(Collector):
    """The ``vigil_function_*`` families of every function decorated on one registry."""

    def __init__(self) -> None:
        self._recorders: list[_FunctionRecorder] = []
        self._lock = threading.Lock()

    def add(self, recorder: _FunctionRecorder) -> None:
        with self._lock:
            self._recorders.append(recorder)

    def describe(self) -> list[Metric]:
        return self._families([])

    def collect(self) -> list[Metric]:
        with self._lock:
            recorders = list(self._recorders)
        return self._families(recorders)

    @staticmethod
    def _families(recorders: list[_FunctionRecorder]) -> list[Metric]:
        duration = HistogramMetricFamily(
            "vigil_function_duration_seconds",
            "Duration of calls to functions decorated with @monitor_performance.",
            labels=["function"])
        calls = CounterMetricFamily(
            "vigil_function_calls", "Calls to functions decorated with @monitor_performance.",
            labels=["function"])
        errors = CounterMetricFamily(
            "vigil_function_errors", "Calls that raised, by exception class.",
            labels=["function", "exception"])
        running = GaugeMetricFamily("vigil_function_in_progress", "Calls currently running.",
                                    labels=["function"])
        for rec in recorders:
            with rec.lock:
                count, total, buckets = rec.count, rec.total, list(rec.buckets)
                exemplars, failures = dict(rec.exemplars), dict(rec.errors)
            started = rec.started()
            cumulative, points = 0, []
            for i, le in enumerate(rec.les):
                cumulative += buckets[i]
                exemplar = exemplars.get(i)
                points.append((le, cumulative, exemplar) if exemplar else (le, cumulative))
            # _created as prometheus_client writes it for its own counters and histograms
            # (unless PROMETHEUS_DISABLE_CREATED_SERIES): when the function was decorated, since
            # when every one of its series counts (an exception class seen later was 0 before).
            created = rec.created if _prometheus_metrics._use_created else None
            duration.add_metric([rec.name], points, total)
            if created is not None:
                duration.samples.append(Sample(duration.name + "_created",
                                               {"function": rec.name}, created))
            calls.add_metric([rec.name], count, created=created)
            for kind, n in sorted(failures.items()):
                errors.add_metric([rec.name, kind], n, created=created)
            # started is read after the snapshot: a call entering in between shows as running.
            running.add_metric([rec.name], max(0, started - count))
        return [duration, calls, errors, running]


class _MultiprocessRecorder(_CallHistory):
    """The prometheus_client-primitive path, for multiprocess mode.

    Under ``PROMETHEUS_MULTIPROC_DIR`` every value must live in prometheus_client's mmap files
    so that ``MultiProcessCollector`` can add the workers up; a custom collector would only
    show one worker. Slower (a lock per value), and used only there.
    """

    __slots__ = ("calls_child", "duration", "enter", "errors_family", "exit", "name", "now")

    def __init__(self, name: str, retention: int, now: Callable[[], float],
                 registry: CollectorRegistry) -> None:
        super().__init__(retention)
        self.name = name
        self.now = now
        self.duration = instruments.histogram(
            registry, "vigil_function_duration_seconds",
            "Duration of calls to functions decorated with @monitor_performance.",
            ["function"], max_series=_UNCAPPED).labels(name)
        self.calls_child = instruments.counter(
            registry, "vigil_function_calls_total",
            "Calls to functions decorated with @monitor_performance.", ["function"],
            max_series=_UNCAPPED).labels(name)
        _errors_cap(registry)  # the same cap as the single-process path's
        self.errors_family = instruments.counter(
            registry, _ERRORS, "Calls that raised, by exception class.",
            ["function", "exception"], keep=("function",))
        running = instruments.gauge(
            registry, "vigil_function_in_progress", "Calls currently running.", ["function"],
            max_series=_UNCAPPED).labels(name)
        self.enter: Callable[[], object] = running.inc
        self.exit: Callable[[], object] = running.dec

    def finish(self, seconds: float, error: BaseException | None) -> None:
        self.exit()
        span = _current_span()
        if span is None:
            self.duration.observe(seconds)
        else:
            self.duration.observe(seconds, exemplar={"trace_id": span.trace_id})
        self.calls_child.inc()
        failed = error is not None and isinstance(error, Exception)
        if failed:
            self.errors_family.labels(self.name, type(error).__name__).inc()
        self.calls.append((self.now(), seconds * 1000.0, failed))


Recorder = _FunctionRecorder | _MultiprocessRecorder

# The function label is not capped in either mode: its values are the names given to
# @monitor_performance in code, not data. The exception label is, per (function, exception)
# pair, with the function kept in the overflow series.
_UNCAPPED = 2 ** 63
_ERRORS = "vigil_function_errors_total"


def _errors_cap(registry: CollectorRegistry) -> instruments.SeriesCap:
    return instruments.series_cap(registry, _ERRORS, ("function", "exception"),
                                  keep=("function",))


def _recorder(monitor: PerformanceMonitor, name: str) -> Recorder:
    """The recorder for ``name`` on ``monitor`` (one per name: re-decorating shares it)."""
    name = safe_text(name)  # the function label, as vigil.text's rule makes it
    with monitor._lock:
        existing = monitor._functions.get(name)
        if existing is not None:
            return existing
        now = monitor._clock.time
        rec: Recorder
        if MULTIPROCESS:
            rec = _MultiprocessRecorder(name, monitor._retention, now, monitor.registry)
        else:
            if monitor._function_collector is None:
                monitor._function_collector = _FunctionCollector()
                monitor.registry.register(monitor._function_collector)
            rec = _FunctionRecorder(name, monitor._retention, now,
                                    _errors_cap(monitor.registry))
            monitor._function_collector.add(rec)
        monitor._functions[name] = rec
    history: _CallHistory = rec
    for suffix, kind, view in ((".duration_ms", "histogram", history.durations),
                               (".calls", "counter", history.ones),
                               (".errors", "counter", history.failures)):
        series = monitor._local_series(name + suffix, kind)  # type: ignore[arg-type]
        series.view = view
    return rec


def monitor_performance(name: str, *, monitor: PerformanceMonitor | None = None
                        ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Time and count every call of the decorated function.

    Works on plain functions, ``async def`` functions, generators and async generators (for
    generators the time covers the whole iteration). Only ``Exception`` subclasses count as
    errors: a cancelled task or ``KeyboardInterrupt`` is a call, not a failure.
    ``monitor`` defaults to :data:`performance_monitor`.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        rec = _recorder(monitor if monitor is not None else shared(__name__, "performance_monitor"),
                        name)
        enter, finish, perf_counter = rec.enter, rec.finish, time.perf_counter
        if inspect.isasyncgenfunction(fn):
            return cast(Callable[P, R], _wrap_async_gen(fn, rec))
        if inspect.isgeneratorfunction(fn):
            return cast(Callable[P, R], _wrap_gen(fn, rec))
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                enter()
                start = perf_counter()
                try:
                    result = await async_fn(*args, **kwargs)
                except BaseException as exc:
                    finish(perf_counter() - start, exc)
                    raise
                finish(perf_counter() - start, None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            enter()
            start = perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                finish(perf_counter() - start, exc)
                raise
            finish(perf_counter() - start, None)
            return result

        return wrapper

    return decorate


def _wrap_gen(fn: Callable[..., Generator[Any, Any, Any]], rec: Recorder
              ) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        rec.enter()
        start = time.perf_counter()
        try:
            result = yield from fn(*args, **kwargs)
        except BaseException as exc:
            rec.finish(time.perf_counter() - start, exc)
            raise
        rec.finish(time.perf_counter() - start, None)
        return result

    return wrapper


def _wrap_async_gen(fn: Callable[..., AsyncIterator[Any]], rec: Recorder
                    ) -> Callable[..., AsyncIterator[Any]]:
    # Values sent with asend() are not forwarded; iterate-only async generators are the
    # common case and forwarding would need a hand-written state machine.
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        rec.enter()
        start = time.perf_counter()
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except BaseException as exc:
            rec.finish(time.perf_counter() - start, exc)
            raise
        rec.finish(time.perf_counter() - start, None)

    return wrapper


def _build_shared_monitor() -> PerformanceMonitor:
    # The process-wide monitor records on prometheus_client's default registry, the one the
    # application and other libraries register on: the exporter serves it, so one /metrics
    # holds theirs and vigil's, with prometheus_client's own process_*, python_gc_* and
    # python_info.
    monitor = PerformanceMonitor(registry=instruments.default_registry())
    on_configure(monitor.reconfigure)
    return monitor


performance_monitor: PerformanceMonitor
"""The seed's process-wide monitor; built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"performance_monitor": _build_shared_monitor})

