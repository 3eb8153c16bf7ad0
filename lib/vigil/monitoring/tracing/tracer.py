""":class:`ExecutionTracer`: entries started and ended, kept in bounded memory, and read back.

Its state, guarded by one lock: the active map (entries started and not ended, oldest first,
capped at ``max_active_traces``: past it the oldest is dropped, counted in
``vigil_traces_dropped_total{reason="active_cap"}`` and warned about at most once a minute), the
ring of the last ``trace_retention`` completed entries (the oldest leaves first, from every
index), the id index and the children index. Every form of tracing (``start_trace``,
``trace_context``, each ``trace_execution`` wrapper) goes through its one start/end pair,
:meth:`ExecutionTracer._start` and :meth:`ExecutionTracer._end`.

**The hot path.** ``_start`` and ``_end`` are a span's whole cost (about 2.3 µs stored and
counted; see bench/RESULTS.md), so they are written for it: the lock is taken with
``acquire()``/``release()`` in ``try``/``finally`` (the guarantee of ``with``, ~40 ns less per
use), the current span is the context variable itself rather than the helpers around it
(:mod:`vigil.monitoring.context`; OpenTelemetry's context only once its trace API is imported),
a :class:`~vigil.monitoring.context.SpanContext` is built with ``tuple.__new__`` and an entry
with ``object.__new__`` (each skips a Python-level constructor), and the system clock's C
functions are bound once. ``_end`` counts the duration with
:meth:`DurationSeries.count <vigil.monitoring.tracing.durations.DurationSeries.count>` written
out in its locked block: the call measured ~0.05 µs (``@trace_execution``) to ~0.1 µs
(``trace_context``) a span. That copy is the one twin in the package, pinned by
``test_span_end_counts_as_duration_series_count`` (tests/unit/monitoring/test_tracing_durations.py).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import Token
from itertools import islice
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.samples import Exemplar

from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import VigilConfig, get_config, with_arguments
from vigil.monitoring import context as _context
from vigil.monitoring import instruments
from vigil.monitoring.context import _OTEL_TRACE, SpanContext, _current, _modules
from vigil.monitoring.context import new_span_id as _new_span_id
from vigil.monitoring.context import new_trace_id as _new_trace_id
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.otlp import SpanExport, export_wanted
from vigil.monitoring.sampling import Sampler, sampler_from_env
from vigil.monitoring.tracing.durations import (
    BUCKETS,
    EXEMPLAR_INTERVAL,
    Durations,
    DurationSeries,
)
from vigil.monitoring.tracing.entry import Entry, Snapshot, as_dict, nest, snapshot
from vigil.monitoring.tracing.outcome import error_info, outcome
from vigil.text import safe_text

__all__ = ["ExecutionTracer", "WarningLogger"]

_DROP_WARNING_INTERVAL = 60.0  # seconds between two "dropped active entries" warnings
_FROM_CONTEXT: Any = object()  # _start's parent: whatever span is current
_new_tuple = tuple.__new__
_new_object = object.__new__
_Token = Token

WarningLogger = Logger
"""The logger the tracer takes: :class:`vigil.monitoring.logger_protocol.Logger`."""


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
        self._entries: dict[str, Entry] = {}  # every retained entry, active or completed
        self._active: dict[str, Entry] = {}  # insertion order = start order: oldest first
        self._completed: deque[Entry] = deque()  # ring buffer, oldest first
        self._children: dict[str, dict[str, Entry]] = {}  # parent span id -> children
        self._durations = Durations(self.registry, self._lock)
        # (component, operation, status) -> its duration series, read and counted under _lock.
        self._series: dict[tuple[str, str, str], DurationSeries] = self._durations.series
        self._dropped_since_warning = 0
        self._next_drop_warning = float("-inf")
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
        info = error_info(error)
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
            self._durations.observe((entry.component, entry.operation, status),
                                    end - entry.start, end, entry.span.trace_id)

    def get_trace(self, trace_id: str) -> dict[str, Any] | None:
        """The entry ``trace_id`` as a flat dict (no ``children``), or ``None``."""
        with self._lock:
            entry = self._entries.get(trace_id)
            snap = None if entry is None else snapshot(entry)
        return None if snap is None else as_dict(snap)

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
            nodes: list[tuple[Snapshot, int]] = [(snapshot(root), -1)]
            index = 0
            while index < len(nodes):
                kids = self._children.get(nodes[index][0][0].id)
                if kids:
                    ordered = sorted(kids.values(), key=lambda e: e.start)
                    nodes.extend((snapshot(kid), index) for kid in ordered)
                index += 1
        return nest(nodes)

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
            snaps = [snapshot(entry) for entry in self._active.values()]
        return [as_dict(snap) for snap in snaps]

    def get_recent_traces(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` completed entries, most recently ended first, as flat dicts."""
        if limit <= 0:
            return []
        with self._lock:
            snaps = [snapshot(entry) for entry in islice(reversed(self._completed), limit)]
        return [as_dict(snap) for snap in snaps]

    # --- the one start/end pair: start_trace, trace_context and trace_execution use it ------

    def _start(self, component: str, operation: str, metadata: Mapping[str, Any] | None,
               parent: SpanContext | None = _FROM_CONTEXT, enter: bool = False) -> Entry:
        """Start an entry under ``parent`` (default: the current span); with ``enter`` it is
        made the current span until :meth:`_end` (which restores the one before)."""
        # OpenTelemetry's context is consulted only once its trace API is imported (and the
        # bridge is on): until then the context variable alone is the current span.
        shared = _OTEL_TRACE in _modules and _context._sharing is not False  # (None: not read yet)
        if parent is _FROM_CONTEXT:
            parent = _context.current_span() if shared else _current.get()
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
        # __str__ that raises) is taken as its text now; valid-text checks wait for observe().
        if type(component) is not str:
            component = safe_text(component)
        if type(operation) is not str:
            operation = safe_text(operation)
        entry = _new_object(Entry)
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

    def _end(self, entry: Entry, failure: BaseException | None) -> None:
        """End an entry :meth:`_start` made, whose body raised ``failure`` (``None``: it
        returned): the status and error come from :func:`~.outcome.outcome`.

        The span current before it is restored first (when it was entered). One lock
        acquisition completes the entry, evicts the oldest from the ring and counts the
        duration.
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
        if failure is None:
            status, error = "success", None
        else:
            status, error = outcome(failure)
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
            if series is not None:  # DurationSeries.count, inlined (see the module docstring)
                index = bisect_left(BUCKETS, seconds)
                series.buckets[index] += 1
                series.total += seconds
                if end >= series.next_exemplar[index]:
                    series.next_exemplar[index] = end + EXEMPLAR_INTERVAL
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
                self._durations.observe((entry.component, entry.operation, status), seconds,
                                        end, entry.span.trace_id)

    def _complete_locked(self, entry: Entry, end: float, status: str,
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

    # --- eviction ---------------------------------------------------------------------------

    def _evict_locked(self, entry: Entry) -> None:
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
