"""Execution tracing: timed, nested entries kept in bounded memory, with W3C Trace Context ids.

The seed's API::

    tracer = ExecutionTracer()
    trace_id = tracer.start_trace("Orchestrator", "process_request", metadata={"user_id": "123"})
    ...
    tracer.end_trace(trace_id, status="success")

    @trace_execution("MyComponent", "my_operation")
    async def my_operation(): ...

    with trace_context("MyComponent", "operation") as trace_id:
        ...

**Ids.** What the seed calls a "trace id" (returned by :meth:`ExecutionTracer.start_trace`, yielded
by :func:`trace_context`, accepted by ``end_trace``, ``get_trace_tree`` and ``parent_trace_id``) is
the entry's W3C **span id**: 16 lowercase hex digits, unique per entry. Every entry also carries the
W3C ``trace_id`` (32 hex digits) shared by its whole tree, which is what log lines, exemplars and a
``traceparent`` header carry, so vigil's entries join OpenTelemetry traces. Entry dicts have both:
``id`` (the span id) and ``trace_id``.

**Nesting.** :func:`trace_context` and :func:`trace_execution` make their entry the current span
(a :mod:`contextvars` variable, see :mod:`vigil.monitoring.context`), so anything traced inside
becomes its child without passing ids, across ``await`` and into tasks made by
``asyncio.create_task``. Threads and executors start with an empty context: wrap the callable with
:func:`vigil.monitoring.context.bind_context`. Inside ``continue_trace(headers)`` new entries join
the remote caller's trace. :meth:`ExecutionTracer.start_trace` is the manual API: its parent is
``parent_trace_id`` if given, else the current span, and it does not change the current span.

**Outcome.** ``status`` is ``"active"`` while an entry runs, then what ``end_trace`` was given
(``"success"`` by default). A ``trace_context``/``trace_execution`` body that raises ends with
``"error"`` and ``error={"type": <class name>, "message": str(exc)}`` and the exception propagates;
``asyncio.CancelledError`` ends with ``"cancelled"``; a generator closed early by its consumer
(``GeneratorExit``) is a ``"success"``.

**Bounded memory.** Completed entries live in a ring buffer of ``trace_retention`` entries (the
oldest leaves first, from every index). Entries started and never ended are capped at
``max_active_traces``: past it the oldest active entry is dropped, counted in
``vigil_traces_dropped_total{reason="active_cap"}`` and reported by a warning at most once a minute.

**Metrics.** Each ended entry is observed in ``vigil_trace_duration_seconds{component,operation,
status}`` with an exemplar ``{"trace_id": <32 hex>}``. The label values follow :mod:`vigil.text`'s
rule (a lone surrogate becomes U+FFFD, a component that is not a ``str`` its text or
``<unprintable TypeName>``), so no component, operation or status can make ``/metrics`` fail.
An exemplar costs more than the observation itself and Prometheus only keeps the latest one per
bucket, so each bucket of a series takes at most one exemplar per second.

**OpenTelemetry, sampling, export.** In a process that imports OpenTelemetry the current span is
shared with its context, so vigil's entries and OpenTelemetry's spans nest in one trace (see
:mod:`vigil.monitoring.context`). Each entry has the W3C sampled flag: roots are decided by
``OTEL_TRACES_SAMPLER``, children take their parent's (see :mod:`vigil.monitoring.sampling`);
an unsampled entry is still stored, counted and logged with its ids. Sampled entries are sent
over OTLP/HTTP when ``monitoring.tracing.export`` says so (see :mod:`vigil.monitoring.otlp`);
:meth:`ExecutionTracer.get_trace_by_trace_id` finds a whole trace by its 32-hex id.

**Disabled** (``monitoring.tracing.enabled: false``): ids are still made and the current span still
set, so logs stay correlated, but nothing is stored and nothing is observed; ending an id then says
nothing. Entries started while enabled still end normally.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Mapping
from contextvars import Token
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from vigil._lazy import shared, shared_objects
from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock, format_rfc3339
from vigil.config import VigilConfig, get_config, on_configure, with_arguments
from vigil.monitoring import context as _context
from vigil.monitoring import instruments

# The context variable itself rather than the helpers around it (current_span, attach/detach,
# use_span): each helper is a Python call, and a span's whole budget is about twenty of those.
# The ids do come from the context module's functions (one place makes them; ~0.03 µs a span).
# _OTEL_TRACE in _modules is the check that OpenTelemetry may hold a span (see
# vigil.monitoring.context), a dict lookup per span.
from vigil.monitoring.context import _OTEL_TRACE, SpanContext, _current, _modules
from vigil.monitoring.context import new_span_id as _new_span_id
from vigil.monitoring.context import new_trace_id as _new_trace_id
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.monitoring.otlp import SpanExport, export_wanted
from vigil.monitoring.sampling import Sampler, sampler_from_env
from vigil.text import safe_text

__all__ = [
    "SPAN_KINDS",
    "ExecutionTracer",
    "TraceScope",
    "WarningLogger",
    "execution_tracer",
    "trace_context",
    "trace_execution",
]

P = ParamSpec("P")
R = TypeVar("R")

ACTIVE = "active"
_BUCKETS = instruments.SECOND_BUCKETS
_EXEMPLAR_INTERVAL = 1.0  # seconds between two exemplars on one bucket of one series
_DROP_WARNING_INTERVAL = 60.0  # seconds between two "dropped active entries" warnings
_new_tuple = tuple.__new__
_attach = _context.attach  # generators step in and out of their span: shared with OpenTelemetry
_detach = _context.detach
_new_object = object.__new__
_Token = Token
_FROM_CONTEXT: Any = object()  # _start's parent: whatever span is current
SPAN_KINDS = ("client", "consumer", "internal", "producer", "server")  # OpenTelemetry's



WarningLogger = Logger
"""The logger the tracer takes: :class:`vigil.monitoring.logger_protocol.Logger`."""


class _Entry:
    """One traced operation. ``status is None`` while it runs.

    After it ends, an entry is never mutated again, and while it runs its fields are only
    reassigned (never changed in place) under the tracer's lock, so a snapshot taken under the
    lock can be formatted after releasing it.
    """

    __slots__ = ("component", "end", "error", "id", "kind", "metadata", "operation", "parent",
                 "parent_id", "recorded", "span", "start", "start_wall", "status", "token")

    # Built only by ExecutionTracer._start, field by field (no __init__: a Python-level
    # constructor call is a twentieth of a span). Every field is set there.
    id: str  # == span.span_id, kept flat: it is the key of every index
    span: SpanContext
    parent: SpanContext | None  # for the exported span's parent and kind
    parent_id: str | None
    component: str
    operation: str
    metadata: dict[str, Any] | None
    start: float  # clock.monotonic(), for the duration
    start_wall: float  # clock.time(), for the timestamps
    recorded: bool  # False when tracing was disabled at start
    end: float | None  # None while it runs
    status: str | None  # None while it runs
    error: dict[str, Any] | None
    token: Token[SpanContext | None] | None  # while current: what _end restores
    kind: str  # (SPAN_KINDS) set only by a scope given one: read getattr(entry, "kind", None)


class _Series:
    """A histogram child plus when each of its buckets may take its next exemplar.

    Multiprocess mode only (see :class:`_Durations` for the usual path).
    """

    __slots__ = ("child", "next_exemplar")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.next_exemplar = [float("-inf")] * (len(_BUCKETS) + 1)


_DURATION = "vigil_trace_duration_seconds"
_DURATION_DOC = "Duration of traced operations, by outcome."
_DURATION_LABELS = ("component", "operation", "status")
_LES = tuple(floatToGoString(b) for b in (*_BUCKETS, float("inf")))  # type: ignore[no-untyped-call]


class _Durations:
    """One ``vigil_trace_duration_seconds`` series, counted under its tracer's lock.

    A prometheus_client histogram child takes a lock for its sum and another for its bucket on
    every observation (about half a microsecond, a fifth of a span); here the counts are plain
    fields updated inside the lock the tracer already holds to end the entry, and
    :class:`_DurationCollector` turns them into the family at scrape time, exemplars included.
    """

    __slots__ = ("buckets", "created", "exemplars", "labels", "next_exemplar", "total")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.buckets = [0] * (len(_BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self.total = 0.0
        self.exemplars: list[Exemplar | None] = [None] * (len(_BUCKETS) + 1)
        self.next_exemplar = [float("-inf")] * (len(_BUCKETS) + 1)
        self.created = time.time()  # as prometheus_client stamps a new child

    def count(self, seconds: float, end: float, trace_id: str) -> None:
        """Add one observation (call with the owning tracer's lock held)."""
        index = bisect_left(_BUCKETS, seconds)
        self.buckets[index] += 1
        self.total += seconds
        if end >= self.next_exemplar[index]:
            self.next_exemplar[index] = end + _EXEMPLAR_INTERVAL
            self.exemplars[index] = Exemplar({"trace_id": trace_id}, seconds, time.time())


_Store = tuple[threading.Lock, dict[tuple[str, str, str], _Durations]]


class _DurationCollector(Collector):
    """``vigil_trace_duration_seconds`` of every tracer on one registry, built at scrape time.

    Tracers sharing a registry add up, as they did sharing one prometheus_client histogram, and
    a tracer's counts outlive it (the collector keeps its store). It also keeps the label-set
    cap of :mod:`vigil.monitoring.instruments`: past ``max_series_per_metric`` label sets a
    record goes to the ``other`` series and is counted in ``vigil_dropped_series_total``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._stores: list[_Store] = []
        self._cap = instruments.series_cap(registry, _DURATION, _DURATION_LABELS)

    def add(self, store: _Store) -> None:
        with self._lock:
            self._stores.append(store)

    def admit(self, key: tuple[str, str, str]) -> bool:
        """Whether ``key`` has (or now gets) a series of its own; if not, counts the drop."""
        return self._cap.admit(key)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(_DURATION, _DURATION_DOC, labels=_DURATION_LABELS)]

    def collect(self) -> list[Metric]:
        with self._lock:
            stores = list(self._stores)
        merged: dict[tuple[str, str, str], tuple[list[int], float, list[Exemplar | None],
                                                 float]] = {}
        for lock, series in stores:
            with lock:
                all_series = list(series.values())
            for one in all_series:
                with lock:  # one series at a time: spans never wait for a whole scrape
                    snap = (list(one.buckets), one.total, list(one.exemplars), one.created)
                seen = merged.get(one.labels)
                merged[one.labels] = snap if seen is None else _merge(seen, snap)
        family = HistogramMetricFamily(_DURATION, _DURATION_DOC, labels=_DURATION_LABELS)
        created = _prometheus_metrics._use_created
        for labels, (buckets, total, exemplars, since) in merged.items():
            points: list[Any] = []
            cumulative = 0.0
            for le, n, exemplar in zip(_LES, buckets, exemplars, strict=True):
                cumulative += n
                points.append((le, cumulative) if exemplar is None else (le, cumulative, exemplar))
            family.add_metric(labels, points, total)
            if created:
                family.samples.append(Sample(_DURATION + "_created",
                                             dict(zip(_DURATION_LABELS, labels, strict=True)),
                                             since))
        return [family]


def _merge(a: tuple[list[int], float, list[Exemplar | None], float],
           b: tuple[list[int], float, list[Exemplar | None], float]
           ) -> tuple[list[int], float, list[Exemplar | None], float]:
    """Two tracers' counts of one label set, added up (the latest exemplar per bucket)."""
    exemplars = [_newer(x, y) for x, y in zip(a[2], b[2], strict=True)]
    return ([x + y for x, y in zip(a[0], b[0], strict=True)], a[1] + b[1], exemplars,
            min(a[3], b[3]))


def _newer(x: Exemplar | None, y: Exemplar | None) -> Exemplar | None:
    if x is None or y is None:
        return y if x is None else x
    return x if float(x.timestamp or 0.0) >= float(y.timestamp or 0.0) else y


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, _DurationCollector] = (
    weakref.WeakKeyDictionary())
_collectors_lock = threading.Lock()


def _duration_collector(registry: CollectorRegistry) -> _DurationCollector:
    """The registry's duration collector, registered on first use."""
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = _DurationCollector(registry)
            registry.register(collector)
            _collectors[registry] = collector
        return collector


# (entry, status, end, error, metadata): the mutable fields read under the lock.
_Snapshot = tuple[_Entry, str | None, float | None, dict[str, Any] | None, dict[str, Any] | None]


def _snapshot(entry: _Entry) -> _Snapshot:
    return entry, entry.status, entry.end, entry.error, entry.metadata


def _as_dict(snap: _Snapshot) -> dict[str, Any]:
    entry, status, end, error, metadata = snap
    span = entry.span
    duration = None if end is None else end - entry.start
    return {
        "id": entry.id,
        "trace_id": span.trace_id,
        "parent_id": entry.parent_id,
        "component": entry.component,
        "operation": entry.operation,
        "status": ACTIVE if status is None else status,
        "start": format_rfc3339(entry.start_wall),
        "end": None if duration is None else format_rfc3339(entry.start_wall + duration),
        "duration_ms": None if duration is None else round(duration * 1000, 3),
        "metadata": {} if metadata is None else dict(metadata),
        "error": None if error is None else dict(error),
    }


def _error_info(error: BaseException | str | None) -> dict[str, Any] | None:
    """``{"type", "message"}`` for an exception; a string error has ``type`` None."""
    if error is None:
        return None
    if not isinstance(error, BaseException):
        return {"type": None, "message": str(error)}
    try:
        message = str(error)
    except Exception:  # a broken __str__ must not break the traced code's error path
        message = f"<unprintable {type(error).__name__}>"
    return {"type": type(error).__name__, "message": message}


def _outcome(exc: BaseException) -> tuple[str, dict[str, Any] | None]:
    """The status and error an entry ends with when its body raised ``exc``."""
    if isinstance(exc, GeneratorExit):
        return "success", None
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", _error_info(exc)
    return "error", _error_info(exc)


class ExecutionTracer:
    """Records timed entries (spans) in bounded memory and exports their durations.

    Every argument defaults from the active configuration (``monitoring.tracing``) or from vigil's
    shared objects: the system clock, prometheus_client's default registry and a
    ``StructuredLogger("vigil.tracing")``. Thread-safe; user code never runs under its lock.

    Spans go to an OpenTelemetry collector when ``monitoring.tracing.export`` says so (see
    :mod:`vigil.monitoring.otlp`), or always through ``export`` when one is given (it is kept
    across ``configure()``). Roots are sampled by ``OTEL_TRACES_SAMPLER`` (see
    :mod:`vigil.monitoring.sampling`), read again at each ``configure()``, or by ``sampler``.
    """

    def __init__(self, *, clock: Clock | None = None, registry: CollectorRegistry | None = None,
                 retention: int | None = None, max_active: int | None = None,
                 enabled: bool | None = None, logger: WarningLogger | None = None,
                 export: SpanExport | None = None, sampler: Sampler | None = None) -> None:
        # Given arguments win over the configuration, now and after every configure().
        self._arguments: dict[str, tuple[str, object]] = {
            "trace_retention": ("retention", retention),
            "max_active_traces": ("max_active", max_active),
            "enabled": ("enabled", enabled)}
        settings = with_arguments(get_config().monitoring.tracing, self._arguments)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        # Prebound, and for the system clock the C functions themselves: the hot path reads the
        # clock three times per entry and a Python-level method call costs more than the read.
        system = isinstance(self._clock, SystemClock)
        self._monotonic: Callable[[], float] = time.monotonic if system else self._clock.monotonic
        self._wall: Callable[[], float] = time.time if system else self._clock.time
        self._retention = settings.trace_retention
        self._max_active = settings.max_active_traces
        self._enabled = settings.enabled
        self._logger: WarningLogger = (logger if logger is not None
                                       else StructuredLogger("vigil.tracing"))
        self.registry = registry if registry is not None else instruments.default_registry()

        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}  # every retained entry, active or completed
        self._active: dict[str, _Entry] = {}  # insertion order = start order: oldest first
        self._completed: deque[_Entry] = deque()  # ring buffer, oldest first
        self._children: dict[str, dict[str, _Entry]] = {}  # parent span id -> children
        # (component, operation, status) -> its duration series; read and counted under _lock.
        # Stays empty in multiprocess mode, where _mp_series holds prometheus_client children.
        self._series: dict[tuple[str, str, str], _Durations] = {}
        self._mp_series: dict[tuple[str, str, str], _Series] = {}
        self._dropped_since_warning = 0
        self._next_drop_warning = float("-inf")

        if MULTIPROCESS:
            # Every value must live in prometheus_client's files for MultiProcessCollector to
            # add the workers up, so the histogram stays a prometheus_client one there.
            self._duration: instruments.Family[Any] | None = instruments.histogram(
                self.registry, _DURATION, _DURATION_DOC, _DURATION_LABELS, buckets=_BUCKETS)
            self._collector: _DurationCollector | None = None
        else:
            self._duration = None
            self._collector = _duration_collector(self.registry)
            self._collector.add((self._lock, self._series))
        dropped = instruments.counter(
            self.registry, "vigil_traces_dropped_total",
            "Trace entries discarded before they ended, by reason.", ("reason",))
        # Bound now so the series exists (at 0) from the start, as alert rules expect.
        self._dropped_active_cap = dropped.labels("active_cap")
        self._given_export = export
        self._given_sampler = sampler
        self._configured_export: SpanExport | None = None  # built when the config asks for it
        self._export: SpanExport | None = None  # where _complete_locked offers sampled entries
        self._sampler: Sampler | None = None  # None: parentbased_always_on, decided inline
        self._follow(settings)

    def _follow(self, settings: Any) -> None:
        """Take the sampler and the export from ``settings`` (``monitoring.tracing``) and the
        ``OTEL_*`` variables, unless the constructor was given them."""
        sampler = self._given_sampler
        if sampler is None:
            sampler = sampler_from_env(warn=lambda message: self._logger.warning(message))
        self._sampler = None if sampler.is_default else sampler
        export = self._given_export
        if export is None and export_wanted(settings.export):
            if self._configured_export is None:
                self._configured_export = SpanExport(registry=self.registry)
            export = self._configured_export
        self._export = export

    @property
    def export(self) -> SpanExport | None:
        """Where sampled entries are exported, or ``None`` when export is off."""
        return self._export

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export the sampled entries ended so far now; ``True`` once sent (or no export)."""
        export = self._export
        return True if export is None else export.force_flush(timeout)

    # --- settings --------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether entries are stored and observed."""
        return self._enabled

    @property
    def retention(self) -> int:
        """Completed entries kept."""
        return self._retention

    @property
    def max_active(self) -> int:
        """Entries started and not ended kept before the oldest is dropped."""
        return self._max_active

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply ``config.monitoring.tracing``: the newest entries are kept when a cap shrinks."""
        settings = with_arguments(config.monitoring.tracing, self._arguments)
        retention, max_active = settings.trace_retention, settings.max_active_traces
        self._follow(settings)
        with self._lock:
            self._enabled = settings.enabled
            self._retention = retention
            self._max_active = max_active
            completed = self._completed
            while len(completed) > retention:
                self._evict_locked(completed.popleft())
            dropped = 0
            while len(self._active) > max_active:
                self._drop_oldest_active_locked()
                dropped += 1
        if dropped:
            self._report_dropped(dropped)

    def clear(self) -> None:
        """Forget every entry (entries still running are not stored when they end)."""
        with self._lock:
            self._entries.clear()
            self._active.clear()
            self._completed.clear()
            self._children.clear()

    # --- the seed's API --------------------------------------------------------------------

    def start_trace(self, component: str, operation: str,
                    metadata: Mapping[str, Any] | None = None,
                    parent_trace_id: str | None = None) -> str:
        """Start an entry and return its id (the W3C span id).

        Its parent is ``parent_trace_id`` (an id from this tracer) if given, else the current
        span, else none (a new trace). An unknown ``parent_trace_id`` starts a new trace and
        logs a warning. The current span is not changed: end the entry with :meth:`end_trace`,
        ideally in a ``finally`` block.
        """
        if parent_trace_id is None:
            parent = _FROM_CONTEXT
        else:
            with self._lock:
                known = self._entries.get(parent_trace_id)
            parent = None if known is None else known.span
            if known is None and self._enabled:
                self._logger.warning(
                    "start_trace: unknown parent_trace_id; starting a new trace",
                    metadata={"parent_trace_id": parent_trace_id, "component": component,
                              "operation": operation})
        return self._start(component, operation, metadata, parent).id

    def end_trace(self, trace_id: str, status: str = "success",
                  error: BaseException | str | None = None,
                  metadata: Mapping[str, Any] | None = None) -> None:
        """End the entry ``trace_id``: record its end, duration, status and error.

        ``error`` (an exception or a message) is stored as ``{"type", "message"}``; given with
        the default status it makes the status ``"error"``. ``metadata`` is merged into the
        entry's. An unknown or already ended id logs a warning and changes nothing.
        """
        info = _error_info(error)
        if type(status) is not str:  # a key of the duration index: hashable text
            status = safe_text(status)
        if info is not None and status == "success":
            status = "error"
        end = self._monotonic()
        series = None
        with self._lock:
            entry = self._active.pop(trace_id, None)
            if entry is not None:
                self._complete_locked(entry, end, status, info, metadata)
                series = self._series.get((entry.component, entry.operation, status))
                if series is not None:
                    series.count(end - entry.start, end, entry.span.trace_id)
        if entry is None:
            if self._enabled:
                self._logger.warning(
                    "end_trace: unknown or already ended trace id (entries past "
                    "max_active_traces are dropped); nothing recorded",
                    metadata={"id": trace_id, "status": status})
            return
        if series is None:
            self._observe(entry, status, end)

    def get_trace(self, trace_id: str) -> dict[str, Any] | None:
        """The entry ``trace_id`` as a flat dict (no ``children``), or ``None``."""
        with self._lock:
            entry = self._entries.get(trace_id)
            snap = None if entry is None else _snapshot(entry)
        return None if snap is None else _as_dict(snap)

    def get_trace_tree(self, trace_id: str) -> dict[str, Any] | None:
        """The entry ``trace_id`` with its retained descendants nested under ``children``.

        Each node has ``id``, ``trace_id``, ``parent_id``, ``component``, ``operation``,
        ``status``, ``start``, ``end``, ``duration_ms``, ``metadata``, ``error`` and
        ``children`` (ordered by start). ``None`` when ``trace_id`` is not retained.
        """
        with self._lock:
            root = self._entries.get(trace_id)
            if root is None:
                return None
            # Breadth first, not recursive: a deep tree must not hit the recursion limit.
            nodes: list[tuple[_Snapshot, int]] = [(_snapshot(root), -1)]
            index = 0
            while index < len(nodes):
                kids = self._children.get(nodes[index][0][0].id)
                if kids:
                    ordered = sorted(kids.values(), key=lambda e: e.start)
                    nodes.extend((_snapshot(kid), index) for kid in ordered)
                index += 1
        dicts: list[dict[str, Any]] = []
        for snap, parent in nodes:
            node = _as_dict(snap)
            node["children"] = []
            dicts.append(node)
            if parent >= 0:
                dicts[parent]["children"].append(node)
        return dicts[0]

    def get_trace_by_trace_id(self, trace_id: str) -> list[dict[str, Any]]:
        """Every retained entry of the W3C trace ``trace_id`` (32 hex), as trees.

        The roots are the trace's entries whose parent is not retained here (the trace's root,
        or the first entries under a remote caller or an OpenTelemetry span), by start; each is
        a :meth:`get_trace_tree`. Empty when no entry of that trace is retained.
        """
        with self._lock:  # a copy of the references only: the scan runs outside the lock
            entries = list(self._entries.values())
        ours = [entry for entry in entries if entry.span.trace_id == trace_id]
        ids = {entry.id for entry in ours}
        roots = sorted((e for e in ours if e.parent_id not in ids), key=lambda e: e.start)
        trees = (self.get_trace_tree(root.id) for root in roots)
        return [tree for tree in trees if tree is not None]  # None: evicted meanwhile

    def get_active_traces(self) -> list[dict[str, Any]]:
        """Entries started and not yet ended, oldest first, as flat dicts."""
        with self._lock:
            snaps = [_snapshot(entry) for entry in self._active.values()]
        return [_as_dict(snap) for snap in snaps]

    def get_recent_traces(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` completed entries, most recently ended first, as flat dicts."""
        if limit <= 0:
            return []
        with self._lock:
            snaps = [_snapshot(entry) for entry in islice(reversed(self._completed), limit)]
        return [_as_dict(snap) for snap in snaps]

    # --- the hot path, shared by start_trace, trace_context and trace_execution -------------

    # The lock is taken with acquire()/release() in try/finally rather than ``with``: the same
    # guarantee, about 40 ns less per use, and these run twice per span.

    def _start(self, component: str, operation: str, metadata: Mapping[str, Any] | None,
               parent: SpanContext | None = _FROM_CONTEXT, enter: bool = False) -> _Entry:
        """Start an entry under ``parent`` (default: the current span); with ``enter`` it is
        made the current span until :meth:`_end` (which restores the one before)."""
        # OpenTelemetry's context is consulted only once its trace API is imported (and the
        # bridge is on): until then the context variable alone is the current span.
        shared = _OTEL_TRACE in _modules and _context._sharing is not False  # (None: not read yet)
        if parent is _FROM_CONTEXT:
            parent = _context.current_span() if shared else _current.get()
        # SpanContext(...) as tuple.__new__: it skips the NamedTuple's Python-level __new__.
        span_id = _new_span_id()
        sampler = self._sampler  # None: parentbased_always_on (roots sampled, children inherit)
        if parent is None:
            trace_id = _new_trace_id()
            span = _new_tuple(SpanContext, (
                trace_id, span_id, True if sampler is None else sampler.sample(None, trace_id),
                False, ""))
            parent_id = None
        else:
            span = _new_tuple(SpanContext, (
                parent.trace_id, span_id,
                parent.sampled if sampler is None else sampler.sample(parent, parent.trace_id),
                False, parent.tracestate))
            parent_id = parent.span_id
        # Keys of the duration index: a component that is not a str (unhashable, or with a
        # __str__ that raises) is taken as its text now; valid-text checks wait for _observe.
        if type(component) is not str:
            component = safe_text(component)
        if type(operation) is not str:
            operation = safe_text(operation)
        entry = _new_object(_Entry)
        entry.id = span_id
        entry.span = span
        entry.parent = parent
        entry.parent_id = parent_id
        entry.component = component
        entry.operation = operation
        entry.metadata = None if metadata is None else dict(metadata)
        entry.start = self._monotonic()
        entry.start_wall = self._wall()
        entry.end = entry.status = entry.error = None
        if enter:
            token = _current.set(span)
            entry.token = _context._join(span, token) if shared else token
        else:
            entry.token = None
        entry.recorded = recorded = self._enabled
        if not recorded:
            return entry
        lock = self._lock
        lock.acquire()
        try:
            active = self._active
            dropped = len(active) >= self._max_active
            if dropped:
                self._drop_oldest_active_locked()
            self._entries[span_id] = entry
            active[span_id] = entry
            if parent_id is not None:
                kids = self._children.get(parent_id)
                if kids is None:
                    self._children[parent_id] = {span_id: entry}
                else:
                    kids[span_id] = entry
        finally:
            lock.release()
        if dropped:
            self._report_dropped(1)
        return entry

    def _end(self, entry: _Entry, status: str, error: dict[str, Any] | None) -> None:
        """End an entry started by a scope or decorator (which hold the entry itself).

        The span current before it is restored first (when it was entered). One lock
        acquisition completes the entry, evicts the oldest from the ring and counts the
        duration (_Durations.count inlined).
        """
        token = entry.token
        if token is not None:
            entry.token = None
            if type(token) is _Token:
                _current.reset(token)
            else:
                _context._part(token)
        if not entry.recorded:
            return
        end = self._monotonic()
        seconds = end - entry.start
        lock = self._lock
        lock.acquire()
        try:
            if self._active.pop(entry.id, None) is entry:
                stale = False
                self._complete_locked(entry, end, status, error, None)
            else:
                # Ended by end_trace already (stale), or dropped past max_active or cleared
                # before it ended: the operation still happened, so its duration counts.
                stale = entry.end is not None
            series = None if stale else \
                self._series.get((entry.component, entry.operation, status))
            if series is not None:
                index = bisect_left(_BUCKETS, seconds)
                series.buckets[index] += 1
                series.total += seconds
                if end >= series.next_exemplar[index]:
                    series.next_exemplar[index] = end + _EXEMPLAR_INTERVAL
                    series.exemplars[index] = Exemplar({"trace_id": entry.span.trace_id},
                                                       seconds, time.time())
        finally:
            lock.release()
        if series is None:
            if stale:
                self._logger.warning(
                    "trace already ended by end_trace before its scope closed",
                    metadata={"id": entry.id, "status": status})
            else:
                self._observe(entry, status, end)

    def _complete_locked(self, entry: _Entry, end: float, status: str,
                         error: dict[str, Any] | None, metadata: Mapping[str, Any] | None) -> None:
        entry.end = end
        entry.status = status
        entry.error = error
        if metadata:
            # A new dict, not update(): snapshots taken earlier keep the old one.
            entry.metadata = {**entry.metadata, **metadata} if entry.metadata else dict(metadata)
        completed = self._completed
        if len(completed) >= self._retention:  # in steady state every completion evicts one
            self._evict_locked(completed.popleft())
        completed.append(entry)
        export = self._export
        if export is not None and entry.span.sampled:
            export.offer(entry)

    def _evict_locked(self, entry: _Entry) -> None:
        """Remove ``entry`` from the indexes (it is already out of the active map / ring)."""
        span_id = entry.id
        self._entries.pop(span_id, None)
        parent_id = entry.parent_id
        if parent_id is not None:
            kids = self._children.get(parent_id)
            if kids is not None:
                kids.pop(span_id, None)
                if not kids:  # no empty dicts left behind: the index stays bounded
                    del self._children[parent_id]
        # The entry's own children keep its key in _children until they are evicted in turn.

    def _drop_oldest_active_locked(self) -> None:
        oldest = next(iter(self._active))
        self._evict_locked(self._active.pop(oldest))

    def _report_dropped(self, count: int) -> None:
        self._dropped_active_cap.inc(count)
        now = self._monotonic()
        with self._lock:
            self._dropped_since_warning += count
            due = now >= self._next_drop_warning
            if due:
                dropped, self._dropped_since_warning = self._dropped_since_warning, 0
                self._next_drop_warning = now + _DROP_WARNING_INTERVAL
        if due:
            self._logger.warning(
                "too many traces started and not ended; dropped the oldest active ones",
                metadata={"dropped": dropped, "max_active_traces": self._max_active})

    def _observe(self, entry: _Entry, status: str, end: float) -> None:
        """The slow path of a duration: a new label set, one past the cap, multiprocess mode."""
        seconds = end - entry.start
        key = (entry.component, entry.operation, status)
        collector = self._collector
        if collector is None:
            self._observe_multiprocess(key, seconds, end, entry.span.trace_id)
            return
        # Labelled with their text by vigil.text's rule, and cached under that text only: the
        # fast path in _end finds valid strings at once, while raw variants of one text (lone
        # surrogates) come here each time instead of each growing the index.
        labels = (safe_text(key[0]), safe_text(key[1]), safe_text(key[2]))
        if collector.admit(labels):
            fresh = _Durations(labels)
            with self._lock:
                self._series.setdefault(labels, fresh).count(seconds, end, entry.span.trace_id)
            return
        # Past the cap: never cached under its own key, so every such record is counted.
        overflow = (instruments.OVERFLOW_LABEL_VALUE,) * 3
        fresh = _Durations(overflow)
        with self._lock:
            self._series.setdefault(overflow, fresh).count(seconds, end, entry.span.trace_id)

    def _observe_multiprocess(self, key: tuple[str, str, str], seconds: float, end: float,
                              trace_id: str) -> None:
        series = self._mp_series.get(key)
        if series is None:
            series = self._new_series(key)
        bucket = bisect_left(_BUCKETS, seconds)
        if end >= series.next_exemplar[bucket]:
            series.next_exemplar[bucket] = end + _EXEMPLAR_INTERVAL
            series.child.observe(seconds, {"trace_id": trace_id})
        else:
            series.child.observe(seconds)

    def _new_series(self, key: tuple[str, str, str]) -> _Series:
        family = self._duration
        assert family is not None
        # Cache a child only while the family surely admits new label sets: past its cap,
        # family.labels() must be called each time so every overflow is counted.
        cacheable = family.series_count() < family.max_series
        series = _Series(family.labels(*key))
        if cacheable:
            with self._lock:
                series = self._mp_series.setdefault(key, series)
        return series


def _build_shared_tracer() -> ExecutionTracer:
    tracer = ExecutionTracer()
    on_configure(tracer.reconfigure)
    return tracer


execution_tracer: ExecutionTracer
"""The tracer ``trace_context`` and ``trace_execution`` use by default; follows ``configure()``.
Built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"execution_tracer": _build_shared_tracer})


def _shared_tracer() -> ExecutionTracer:
    """``execution_tracer``, built if this is its first use (inside this module a global name
    does not go through the module's ``__getattr__``)."""
    try:
        return execution_tracer
    except NameError:
        return cast(ExecutionTracer, shared(__name__, "execution_tracer"))


# Scopes and decorators read the module's execution_tracer at call time (not bound once), so
# replacing it takes effect.


class TraceScope:
    """The context manager :func:`trace_context` returns; usable with ``with`` and ``async with``.

    One instance traces one block at a time; entering it again after it exits starts a new entry.
    """

    __slots__ = ("_component", "_entry", "_kind", "_metadata", "_operation", "_tracer", "_used")

    _used: ExecutionTracer  # set by __enter__

    def __init__(self, component: str, operation: str, metadata: Mapping[str, Any] | None = None,
                 tracer: ExecutionTracer | None = None, kind: str | None = None) -> None:
        self._component = component
        self._operation = operation
        self._metadata = metadata
        self._tracer = tracer
        self._kind = None if kind is None else _span_kind(kind)  # (one call less per block)
        self._entry: _Entry | None = None  # while the block runs

    def __enter__(self) -> str:
        if self._entry is not None:
            raise RuntimeError("this trace_context is already active; make one per block")
        tracer = self._tracer if self._tracer is not None else _shared_tracer()
        entry = tracer._start(self._component, self._operation, self._metadata, enter=True)
        if self._kind is not None:
            entry.kind = self._kind
        self._used = tracer
        self._entry = entry
        return entry.id

    def update(self, *, operation: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> None:
        """While the block runs: rename the entry's operation and/or add ``metadata`` to it.

        For what is known only once the work is under way (an HTTP server span learns its route
        after routing). The operation is a label of ``vigil_trace_duration_seconds``: give it a
        value from a small set (a route template, never a raw path).
        """
        entry = self._entry
        if entry is None:
            raise RuntimeError("this trace_context is not active")
        tracer = self._used
        with tracer._lock:  # a running entry's fields change under the lock (see _Entry)
            if operation is not None:
                entry.operation = operation if type(operation) is str else safe_text(operation)
            if metadata:
                entry.metadata = ({**entry.metadata, **metadata} if entry.metadata
                                  else dict(metadata))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry = self._entry
        if entry is None:
            raise RuntimeError("this trace_context was not entered")
        self._entry = None
        if exc is None:
            self._used._end(entry, "success", None)
        else:
            self._used._end(entry, *_outcome(exc))

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


def trace_context(component: str, operation: str, metadata: Mapping[str, Any] | None = None, *,
                  tracer: ExecutionTracer | None = None, kind: str | None = None) -> TraceScope:
    """Trace a block: ``with trace_context("Comp", "op") as trace_id: ...``.

    The entry is the current span inside the block (``async with`` works too). If the block
    raises, the entry ends with ``status="error"`` and the exception's type and message, and the
    exception propagates. ``tracer`` defaults to the module's ``execution_tracer``. ``kind``
    (one of :data:`SPAN_KINDS`, e.g. ``"server"`` for a request handler) is the exported
    span's kind; by default ``server`` under a remote parent, else ``internal``.
    """
    return TraceScope(component, operation, metadata, tracer, kind)


def _span_kind(kind: str | None) -> str | None:
    if kind is None:
        return None
    name = kind.strip().lower() if isinstance(kind, str) else kind
    if name not in SPAN_KINDS:
        raise ValueError(f"trace_context: kind must be one of {', '.join(SPAN_KINDS)}, "
                         f"got {kind!r}")
    return name


def trace_execution(component: str, operation: str, metadata: Mapping[str, Any] | None = None, *,
                    tracer: ExecutionTracer | None = None,
                    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function, ``async def``, generator or async generator to trace each call.

    For a generator the entry covers the whole iteration, from the first ``next`` to exhaustion
    or ``close``, and is the current span only while the generator's own code runs.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isasyncgenfunction(fn):
            wrapped: Callable[..., Any] = _trace_async_generator(
                fn, component, operation, metadata, tracer)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _trace_coroutine(fn, component, operation, metadata, tracer)
        elif inspect.isgeneratorfunction(fn):
            wrapped = _trace_generator(fn, component, operation, metadata, tracer)
        else:
            wrapped = _trace_function(fn, component, operation, metadata, tracer)
        return cast(Callable[P, R], functools.wraps(fn)(wrapped))

    return decorate


def _trace_function(fn: Callable[..., Any], component: str, operation: str,
                    metadata: Mapping[str, Any] | None,
                    tracer: ExecutionTracer | None) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        used = tracer if tracer is not None else _shared_tracer()
        entry = used._start(component, operation, metadata, enter=True)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            used._end(entry, *_outcome(exc))
            raise
        used._end(entry, "success", None)
        return result

    return traced


def _trace_coroutine(fn: Callable[..., Coroutine[Any, Any, Any]], component: str,
                     operation: str, metadata: Mapping[str, Any] | None,
                     tracer: ExecutionTracer | None) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> Any:
        # The variable belongs to this task's context, so it holds across the awaits below.
        used = tracer if tracer is not None else _shared_tracer()
        entry = used._start(component, operation, metadata, enter=True)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            used._end(entry, *_outcome(exc))
            raise
        used._end(entry, "success", None)
        return result

    return traced


class _InSpan(Generator[Any, Any, Any]):
    """``inner`` with ``span`` current during each of its steps (send, throw, close) only.

    Generators share their consumer's context, so holding the span across a ``yield`` would make
    the consumer's own work a child of the generator. ``yield from`` this object forwards every
    step of the consumer's (values sent, exceptions thrown, closing) as PEP 380 says.
    """

    __slots__ = ("_inner", "_span")

    def __init__(self, inner: Generator[Any, Any, Any], span: SpanContext) -> None:
        self._inner = inner
        self._span = span

    def send(self, value: Any) -> Any:
        token = _attach(self._span)
        try:
            return self._inner.send(value)
        finally:
            _detach(token)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        token = _attach(self._span)
        try:
            return self._inner.throw(typ, val, tb)
        finally:
            _detach(token)

    def close(self) -> None:
        token = _attach(self._span)
        try:
            self._inner.close()
        finally:
            _detach(token)


def _trace_generator(fn: Callable[..., Generator[Any, Any, Any]], component: str,
                     operation: str, metadata: Mapping[str, Any] | None,
                     tracer: ExecutionTracer | None) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        used = tracer if tracer is not None else _shared_tracer()
        entry = used._start(component, operation, metadata)
        status: str = "success"
        error: dict[str, Any] | None = None
        try:
            token = _attach(entry.span)  # the span is current while the generator is made, too
            try:
                inner = fn(*args, **kwargs)
            finally:
                _detach(token)
            return (yield from _InSpan(inner, entry.span))
        except BaseException as exc:
            status, error = _outcome(exc)
            raise
        finally:
            used._end(entry, status, error)

    return traced


def _trace_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], component: str,
                           operation: str, metadata: Mapping[str, Any] | None,
                           tracer: ExecutionTracer | None) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        used = tracer if tracer is not None else _shared_tracer()
        entry = used._start(component, operation, metadata)
        span = entry.span
        status: str = "success"
        error: dict[str, Any] | None = None
        try:
            # As for generators: the span is current only while the inner generator runs.
            token = _attach(span)
            try:
                inner = fn(*args, **kwargs)
            finally:
                _detach(token)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                token = _attach(span)
                try:
                    if thrown is None:
                        item = await inner.asend(sent)
                    else:
                        item, thrown = await inner.athrow(thrown), None
                except StopAsyncIteration:
                    return
                finally:
                    _detach(token)
                try:
                    sent = yield item
                except GeneratorExit:
                    token = _attach(span)
                    try:
                        await inner.aclose()
                    finally:
                        _detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            status, error = _outcome(exc)
            raise
        finally:
            used._end(entry, status, error)

    return traced
