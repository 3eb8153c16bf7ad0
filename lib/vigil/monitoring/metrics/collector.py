"""The single-process recorder: ``vigil_function_*`` numbers under one lock, families at scrape.

prometheus_client takes a lock per value (the histogram's sum, its bucket, the counter, the
in-progress gauge twice): four to five acquisitions per call. :class:`FunctionRecorder` takes
one for all of them and derives ``in_progress`` (calls started minus calls finished, the start
counted lock-free by :class:`~.started.StartCounter`), so the decorator costs less than a
hand-written prometheus_client timing decorator. :class:`FunctionCollector` turns the numbers
into the ``vigil_function_*`` families when the registry is collected.

Not for multiprocess mode: a custom collector shows one worker only
(:mod:`.mmap_recorder` is used there).
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from vigil.monitoring import instruments
from vigil.monitoring.context import current_span as _current_span
from vigil.monitoring.metrics.calls import CallHistory
from vigil.monitoring.metrics.started import StartCounter
from vigil.monitoring.prometheus_private import created_series_enabled

__all__ = ["FunctionCollector", "FunctionRecorder"]


class FunctionRecorder(CallHistory):
    """One decorated function's Prometheus numbers, all updated under ONE lock."""

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
        self._started = StartCounter()
        self.enter: Callable[[], object] = self._started.enter

    def started(self) -> int:
        """Calls started so far."""
        return self._started.value()

    def finish(self, seconds: float, error: BaseException | None) -> None:
        """A call ended after ``seconds``, raising ``error`` (or None)."""
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


class FunctionCollector(Collector):
    """The ``vigil_function_*`` families of every function decorated on one registry."""

    def __init__(self) -> None:
        self._recorders: list[FunctionRecorder] = []
        self._lock = threading.Lock()

    def add(self, recorder: FunctionRecorder) -> None:
        """Collect ``recorder``'s numbers from now on."""
        with self._lock:
            self._recorders.append(recorder)

    def describe(self) -> list[Metric]:
        return self._families([])

    def collect(self) -> list[Metric]:
        with self._lock:
            recorders = list(self._recorders)
        return self._families(recorders)

    @staticmethod
    def _families(recorders: list[FunctionRecorder]) -> list[Metric]:
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
            created = rec.created if created_series_enabled() else None
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
