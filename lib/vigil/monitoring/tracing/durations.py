"""``vigil_trace_duration_seconds``: each ended entry's duration, with trace-id exemplars.

A prometheus_client histogram child takes a lock for its sum and another for its bucket on
every observation (about half a microsecond, a fifth of a span). So in the usual single-process
mode a tracer's counts are plain fields (:class:`DurationSeries`) counted inside the lock the
tracer already holds to end the entry, and :class:`DurationCollector` turns them into the family
at scrape time, exemplars included. Under ``PROMETHEUS_MULTIPROC_DIR`` every value must live in
prometheus_client's files for ``MultiProcessCollector`` to add the workers up, so there the
histogram stays a prometheus_client one.

An exemplar costs more than the observation itself and Prometheus keeps only the latest one per
bucket, so each bucket of a series takes at most one exemplar per second. Label values follow
:mod:`vigil.text`'s rule, and past ``max_series_per_metric`` label sets a record goes to the
``other`` series and is counted in ``vigil_dropped_series_total``.
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from vigil.monitoring import instruments
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.monitoring.prometheus_private import created_series_enabled
from vigil.text import safe_text

__all__ = [
    "BUCKETS",
    "DurationCollector",
    "DurationSeries",
    "Durations",
    "EXEMPLAR_INTERVAL",
    "Key",
    "duration_collector",
]

BUCKETS = instruments.SECOND_BUCKETS
EXEMPLAR_INTERVAL = 1.0  # seconds between two exemplars on one bucket of one series
_DURATION = "vigil_trace_duration_seconds"
_DURATION_DOC = "Duration of traced operations, by outcome."
_DURATION_LABELS = ("component", "operation", "status")
_LES = tuple(floatToGoString(b) for b in (*BUCKETS, float("inf")))  # type: ignore[no-untyped-call]

Key = tuple[str, str, str]  # (component, operation, status)


class DurationSeries:
    """One label set's counts, read and counted under the owning tracer's lock."""

    __slots__ = ("buckets", "created", "exemplars", "labels", "next_exemplar", "total")

    def __init__(self, labels: Key) -> None:
        self.labels = labels
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self.total = 0.0
        self.exemplars: list[Exemplar | None] = [None] * (len(BUCKETS) + 1)
        self.next_exemplar = [float("-inf")] * (len(BUCKETS) + 1)
        self.created = time.time()  # as prometheus_client stamps a new child

    def count(self, seconds: float, end: float, trace_id: str) -> None:
        """Add one observation ended at ``end`` (monotonic; call with the tracer's lock held).

        ``ExecutionTracer._end`` has this body written out (a call per span less): change both.
        """
        index = bisect_left(BUCKETS, seconds)
        self.buckets[index] += 1
        self.total += seconds
        if end >= self.next_exemplar[index]:
            self.next_exemplar[index] = end + EXEMPLAR_INTERVAL
            self.exemplars[index] = Exemplar({"trace_id": trace_id}, seconds, time.time())


class _ChildSeries:
    """Multiprocess mode: a histogram child plus when each of its buckets may take its next
    exemplar."""

    __slots__ = ("child", "next_exemplar")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.next_exemplar = [float("-inf")] * (len(BUCKETS) + 1)


_Store = tuple[threading.Lock, dict[Key, DurationSeries]]
_Counts = tuple[list[int], float, list[Exemplar | None], float]  # buckets, sum, exemplars, created


class DurationCollector(Collector):
    """``vigil_trace_duration_seconds`` of every tracer on one registry, built at scrape time.

    Tracers sharing a registry add up, as they did sharing one prometheus_client histogram, and
    a tracer's counts outlive it (the collector keeps its store). It also keeps the label-set
    cap of :mod:`vigil.monitoring.instruments`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._stores: list[_Store] = []
        self._cap = instruments.series_cap(registry, _DURATION, _DURATION_LABELS)

    def add(self, store: _Store) -> None:
        with self._lock:
            self._stores.append(store)

    def admit(self, key: Key) -> bool:
        """Whether ``key`` has (or now gets) a series of its own; if not, counts the drop."""
        return self._cap.admit(key)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(_DURATION, _DURATION_DOC, labels=_DURATION_LABELS)]

    def collect(self) -> list[Metric]:
        with self._lock:
            stores = list(self._stores)
        merged: dict[Key, _Counts] = {}
        for lock, series in stores:
            with lock:
                all_series = list(series.values())
            for one in all_series:
                with lock:  # one series at a time: spans never wait for a whole scrape
                    snap = (list(one.buckets), one.total, list(one.exemplars), one.created)
                seen = merged.get(one.labels)
                merged[one.labels] = snap if seen is None else _merge(seen, snap)
        family = HistogramMetricFamily(_DURATION, _DURATION_DOC, labels=_DURATION_LABELS)
        created = created_series_enabled()
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


def _merge(a: _Counts, b: _Counts) -> _Counts:
    """Two tracers' counts of one label set, added up (the latest exemplar per bucket)."""
    exemplars = [_newer(x, y) for x, y in zip(a[2], b[2], strict=True)]
    return ([x + y for x, y in zip(a[0], b[0], strict=True)], a[1] + b[1], exemplars,
            min(a[3], b[3]))


def _newer(x: Exemplar | None, y: Exemplar | None) -> Exemplar | None:
    if x is None or y is None:
        return y if x is None else x
    return x if float(x.timestamp or 0.0) >= float(y.timestamp or 0.0) else y


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, DurationCollector] = (
    weakref.WeakKeyDictionary())
_collectors_lock = threading.Lock()


def duration_collector(registry: CollectorRegistry) -> DurationCollector:
    """The registry's duration collector, registered on first use."""
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = DurationCollector(registry)
            registry.register(collector)
            _collectors[registry] = collector
        return collector


class Durations:
    """One tracer's durations: ``series`` for the label sets already admitted, and
    :meth:`observe` for the rest.

    ``series`` is read and counted under ``lock`` (the tracer's own), so the tracer's hot path
    finds a known label set and counts it inside the lock it holds to end the entry; it stays
    empty in multiprocess mode, where every record takes :meth:`observe`.
    """

    __slots__ = ("_child_series", "_collector", "_family", "_lock", "series")

    def __init__(self, registry: CollectorRegistry, lock: threading.Lock) -> None:
        self._lock = lock
        self.series: dict[Key, DurationSeries] = {}
        self._child_series: dict[Key, _ChildSeries] = {}
        if MULTIPROCESS:
            self._family: instruments.Family[Any] | None = instruments.histogram(
                registry, _DURATION, _DURATION_DOC, _DURATION_LABELS, buckets=BUCKETS)
            self._collector: DurationCollector | None = None
        else:
            self._family = None
            self._collector = duration_collector(registry)
            self._collector.add((lock, self.series))

    def observe(self, key: Key, seconds: float, end: float, trace_id: str) -> None:
        """Record a duration whose label set is not in ``series`` (call without the lock):
        a new label set, one past the cap, or multiprocess mode."""
        collector = self._collector
        if collector is None:
            self._observe_child(key, seconds, end, trace_id)
            return
        # Labelled with their text by vigil.text's rule, and cached under that text only: the
        # tracer's fast path finds valid strings at once, while raw variants of one text (lone
        # surrogates) come here each time instead of each growing the index.
        labels = (safe_text(key[0]), safe_text(key[1]), safe_text(key[2]))
        if not collector.admit(labels):
            # Past the cap: never cached under its own key, so every such record is counted.
            labels = (instruments.OVERFLOW_LABEL_VALUE,) * 3
        fresh = DurationSeries(labels)
        with self._lock:
            self.series.setdefault(labels, fresh).count(seconds, end, trace_id)

    def _observe_child(self, key: Key, seconds: float, end: float, trace_id: str) -> None:
        series = self._child_series.get(key)
        if series is None:
            series = self._new_child(key)
        bucket = bisect_left(BUCKETS, seconds)
        if end >= series.next_exemplar[bucket]:
            series.next_exemplar[bucket] = end + EXEMPLAR_INTERVAL
            series.child.observe(seconds, {"trace_id": trace_id})
        else:
            series.child.observe(seconds)

    def _new_child(self, key: Key) -> _ChildSeries:
        family = self._family
        assert family is not None
        # Cache a child only while the family surely admits new label sets: past its cap,
        # family.labels() must be called each time so every overflow is counted.
        cacheable = family.series_count() < family.max_series
        series = _ChildSeries(family.labels(*key))
        if cacheable:
            with self._lock:
                series = self._child_series.setdefault(key, series)
        return series
