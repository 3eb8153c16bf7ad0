"""Get-or-create Prometheus metrics on an injected registry, with capped label cardinality.

Every part of vigil that exports a metric asks this module for it, so that two loggers (or two
tracers) sharing a registry share one metric object instead of colliding, and so that a label fed
unbounded values (user ids, paths) cannot grow a registry without bound: past
``monitoring.metrics.max_series_per_metric`` label sets, new ones are recorded in a single series
whose label values are all ``"other"``, and each such record is counted in
``vigil_dropped_series_total{metric}``.

Label values follow :mod:`vigil.text`'s rule (lone surrogates become U+FFFD, an object whose
``str()`` raises becomes ``<unprintable TypeName>``), so no value given to ``labels()`` can make
the registry unrenderable.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import registry as _prometheus_registry
from prometheus_client.metrics import MetricWrapperBase

from vigil.config import get_config
from vigil.monitoring.multiprocess import gauge_mode
from vigil.text import safe_text

__all__ = [
    "DROPPED_SERIES",
    "MILLISECOND_BUCKETS",
    "OVERFLOW_LABEL_VALUE",
    "SECOND_BUCKETS",
    "Family",
    "SeriesCap",
    "counter",
    "default_registry",
    "gauge",
    "histogram",
    "series_cap",
]

OVERFLOW_LABEL_VALUE = "other"
DROPPED_SERIES = "vigil_dropped_series_total"

# Latency buckets in seconds: prometheus_client's defaults stretched to a minute, since the
# operations vigil wraps (agent runs, API calls, file ingestion) are often slower than 10 s.
SECOND_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
MILLISECOND_BUCKETS: tuple[float, ...] = tuple(round(b * 1000, 6) for b in SECOND_BUCKETS)

M = TypeVar("M", bound=MetricWrapperBase)


def default_registry() -> CollectorRegistry:
    """Where vigil records when no ``registry=`` is given: prometheus_client's default registry.

    The one rule for every part of vigil. It is the registry the application and other
    libraries register on, so the exporter's ``/metrics`` serves theirs and vigil's together.
    Read at call time: nothing is bound to it at import.
    """
    return _prometheus_registry.REGISTRY


class SeriesCap:
    """Which label sets of one metric get a series of their own: the one rule for every path.

    The first ``max_series`` label sets are admitted; a record with any other label set goes
    to the overflow series and is counted in ``vigil_dropped_series_total{metric}``. In the
    overflow series every label value is ``"other"`` except those of ``keep``: labels whose
    values come from code, not data (the decorated function's name), which stay readable.
    prometheus_client families (:class:`Family`, and so multiprocess mode) and vigil's
    scrape-time collectors (single-process mode) both ask the metric's one cap, from
    :func:`series_cap`, so the two modes cap alike.
    """

    __slots__ = ("_admitted", "_dropped", "_keep", "_lock", "max_series", "name")

    def __init__(self, name: str, labelnames: tuple[str, ...], max_series: int,
                 dropped: Counter | None, keep: Sequence[str] = ()) -> None:
        unknown = sorted(set(keep) - set(labelnames))
        if unknown:
            raise ValueError(f"metric {name!r}: keep={unknown} are not among its labels "
                             f"{list(labelnames)}")
        self.name = name
        self.max_series = max_series
        self._keep = tuple(n in keep for n in labelnames)
        self._dropped = dropped
        self._admitted: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def admit(self, key: tuple[str, ...]) -> bool:
        """Whether ``key`` has (or now gets) a series of its own; if not, counts the drop."""
        with self._lock:
            if key in self._admitted:
                return True
            if len(self._admitted) < self.max_series:
                self._admitted.add(key)
                return True
        if self._dropped is not None:
            self._dropped.labels(self.name).inc()
        return False

    def overflow(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """The overflow series' label values for a refused ``key``."""
        return tuple(value if kept else OVERFLOW_LABEL_VALUE
                     for value, kept in zip(key, self._keep, strict=True))

    def __len__(self) -> int:
        return len(self._admitted)


class Family(Generic[M]):
    """A registered metric plus its :class:`SeriesCap`.

    ``labels(*values)`` returns the child for those values, cached, so the hot path is one dict
    lookup (cheaper than prometheus_client's own ``labels``). An unlabelled family's metric is
    used directly through :attr:`metric`.
    """

    __slots__ = ("_cap", "_children", "_lock", "_overflow", "labelnames", "metric", "name")

    def __init__(self, metric: M, name: str, labelnames: tuple[str, ...],
                 cap: SeriesCap) -> None:
        self.metric = metric
        self.name = name
        self.labelnames = labelnames
        self._cap = cap
        self._children: dict[tuple[str, ...], Any] = {}
        self._overflow: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    @property
    def max_series(self) -> int:
        """How many label sets get a series of their own."""
        return self._cap.max_series

    def labels(self, *values: object) -> Any:
        """The child for these label values (or the overflow child past the cap).

        Values become text by :func:`vigil.text.safe_text`. Children are cached under that
        text, so values that already are valid strings find theirs in one dict lookup.
        """
        try:
            child = self._children.get(values)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value: only its text can be a key
            child = None
        if child is None:
            key = tuple(map(safe_text, values))
            child = self._children.get(key)
            if child is None:
                child = self._admit(key)
        return child

    def _admit(self, key: tuple[str, ...]) -> Any:
        # Never cached under a refused key, so every overflow record is counted.
        if not self._cap.admit(key):
            spill = self._cap.overflow(key)
            with self._lock:
                child = self._overflow.get(spill)
                if child is None:
                    child = self._overflow[spill] = self.metric.labels(*spill)
            return child
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metric.labels(*key)
        return child

    def series_count(self) -> int:
        """Label sets admitted so far (the overflow series not included)."""
        return len(self._children)


_KINDS: dict[type[MetricWrapperBase], str] = {Counter: "counter", Gauge: "gauge",
                                              Histogram: "histogram"}
_lock = threading.RLock()
_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Family[Any]]] = (
    weakref.WeakKeyDictionary()
)
_caps: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, SeriesCap]] = (
    weakref.WeakKeyDictionary())


def _family(registry: CollectorRegistry, kind: type[M], name: str, documentation: str,
            labelnames: Sequence[str], max_series: int | None, keep: Sequence[str] = (),
            **extra: Any) -> Family[M]:
    labels = tuple(labelnames)
    with _lock:
        families = _families.setdefault(registry, {})
        existing = families.get(name)
        if existing is not None:
            if not isinstance(existing.metric, kind):
                raise ValueError(
                    f"metric {name!r} is already a {_KINDS[type(existing.metric)]}; "
                    f"it cannot also be a {_KINDS[kind]}")
            if existing.labelnames != labels:
                raise ValueError(
                    f"metric {name!r} already has labels {list(existing.labelnames)}; "
                    f"got {list(labels)} (one name keeps one set of label names)")
            return existing
        cap = series_cap(registry, name, labels, max_series=max_series, keep=keep)
        metric = kind(name, documentation, labels, registry=registry, **extra)
        family = Family(metric, name, labels, cap)
        families[name] = family
        return family


def series_cap(registry: CollectorRegistry, name: str, labelnames: Sequence[str], *,
               max_series: int | None = None, keep: Sequence[str] = ()) -> SeriesCap:
    """The label-set cap of metric ``name`` on ``registry``, created on first use.

    ``max_series`` defaults to ``monitoring.metrics.max_series_per_metric``; the first call
    for a name decides it and ``keep``.
    """
    labels = tuple(labelnames)
    with _lock:
        caps = _caps.setdefault(registry, {})
        cap = caps.get(name)
        if cap is not None:
            return cap
        limit = max_series if max_series is not None else \
            get_config().monitoring.metrics.max_series_per_metric
        dropped = None
        if labels and name != DROPPED_SERIES:
            dropped = counter(registry, DROPPED_SERIES,
                              "Records sent to the 'other' series because a metric reached its "
                              "label-set cap.", ["metric"]).metric
        cap = caps[name] = SeriesCap(name, labels, limit, dropped, keep)
        return cap


def counter(registry: CollectorRegistry, name: str, documentation: str,
            labelnames: Sequence[str] = (), *, max_series: int | None = None,
            keep: Sequence[str] = ()) -> Family[Counter]:
    """The counter ``name`` on ``registry``, created on first use (``keep``: see
    :class:`SeriesCap`)."""
    return _family(registry, Counter, name, documentation, labelnames, max_series, keep)


def gauge(registry: CollectorRegistry, name: str, documentation: str,
          labelnames: Sequence[str] = (), *, max_series: int | None = None,
          keep: Sequence[str] = ()) -> Family[Gauge]:
    """The gauge ``name`` on ``registry``, created on first use.

    Its multiprocess mode is :func:`vigil.monitoring.multiprocess.gauge_mode`'s for the name.
    """
    return _family(registry, Gauge, name, documentation, labelnames, max_series, keep,
                   multiprocess_mode=gauge_mode(name))


def histogram(registry: CollectorRegistry, name: str, documentation: str,
              labelnames: Sequence[str] = (), *, buckets: Sequence[float] = SECOND_BUCKETS,
              max_series: int | None = None, keep: Sequence[str] = ()) -> Family[Histogram]:
    """The histogram ``name`` on ``registry``, created on first use."""
    return _family(registry, Histogram, name, documentation, labelnames, max_series, keep,
                   buckets=tuple(buckets))
