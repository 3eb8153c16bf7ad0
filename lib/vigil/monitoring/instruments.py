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
from prometheus_client.metrics import MetricWrapperBase

from vigil.config import get_config
from vigil.text import safe_text

__all__ = [
    "MILLISECOND_BUCKETS",
    "OVERFLOW_LABEL_VALUE",
    "SECOND_BUCKETS",
    "Family",
    "counter",
    "gauge",
    "histogram",
]

OVERFLOW_LABEL_VALUE = "other"

# Latency buckets in seconds: prometheus_client's defaults stretched to a minute, since the
# operations vigil wraps (agent runs, API calls, file ingestion) are often slower than 10 s.
SECOND_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
MILLISECOND_BUCKETS: tuple[float, ...] = tuple(round(b * 1000, 6) for b in SECOND_BUCKETS)

M = TypeVar("M", bound=MetricWrapperBase)


class Family(Generic[M]):
    """A registered metric plus a cap on how many label sets it may hold.

    ``labels(*values)`` returns the child for those values, cached, so the hot path is one dict
    lookup (cheaper than prometheus_client's own ``labels``). An unlabelled family's metric is
    used directly through :attr:`metric`.
    """

    __slots__ = ("_children", "_dropped", "_lock", "_overflow", "labelnames", "max_series",
                 "metric", "name")

    def __init__(self, metric: M, name: str, labelnames: tuple[str, ...], max_series: int,
                 dropped: Counter | None) -> None:
        self.metric = metric
        self.name = name
        self.labelnames = labelnames
        self.max_series = max_series
        self._dropped = dropped
        self._children: dict[tuple[str, ...], Any] = {}
        self._overflow: Any = None
        self._lock = threading.Lock()

    def labels(self, *values: object) -> Any:
        """The child for these label values (or the shared overflow child past the cap).

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
        with self._lock:
            child = self._children.get(key)
            if child is not None:
                return child
            if len(self._children) < self.max_series:
                child = self.metric.labels(*key)
                self._children[key] = child
                return child
            if self._overflow is None:
                self._overflow = self.metric.labels(*([OVERFLOW_LABEL_VALUE] * len(key)))
        if self._dropped is not None:
            self._dropped.labels(self.name).inc()
        return self._overflow

    def series_count(self) -> int:
        """Label sets admitted so far (the overflow series not included)."""
        return len(self._children)


_KINDS: dict[type[MetricWrapperBase], str] = {Counter: "counter", Gauge: "gauge",
                                              Histogram: "histogram"}
_lock = threading.RLock()
_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Family[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _family(registry: CollectorRegistry, kind: type[M], name: str, documentation: str,
            labelnames: Sequence[str], max_series: int | None, **extra: Any) -> Family[M]:
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
        cap = max_series if max_series is not None else \
            get_config().monitoring.metrics.max_series_per_metric
        dropped = None
        if labels and name != "vigil_dropped_series_total":
            dropped = counter(registry, "vigil_dropped_series_total",
                              "Records sent to the 'other' series because a metric reached its "
                              "label-set cap.", ["metric"]).metric
        metric = kind(name, documentation, labels, registry=registry, **extra)
        family = Family(metric, name, labels, cap, dropped)
        families[name] = family
        return family


def counter(registry: CollectorRegistry, name: str, documentation: str,
            labelnames: Sequence[str] = (), *, max_series: int | None = None) -> Family[Counter]:
    """The counter ``name`` on ``registry``, created on first use."""
    return _family(registry, Counter, name, documentation, labelnames, max_series)


def gauge(registry: CollectorRegistry, name: str, documentation: str,
          labelnames: Sequence[str] = (), *, max_series: int | None = None,
          multiprocess_mode: str = "all") -> Family[Gauge]:
    """The gauge ``name`` on ``registry``, created on first use."""
    return _family(registry, Gauge, name, documentation, labelnames, max_series,
                   multiprocess_mode=multiprocess_mode)


def histogram(registry: CollectorRegistry, name: str, documentation: str,
              labelnames: Sequence[str] = (), *, buckets: Sequence[float] = SECOND_BUCKETS,
              max_series: int | None = None) -> Family[Histogram]:
    """The histogram ``name`` on ``registry``, created on first use."""
    return _family(registry, Histogram, name, documentation, labelnames, max_series,
                   buckets=tuple(buckets))
