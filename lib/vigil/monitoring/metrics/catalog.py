"""The seed names one monitor knows: one kind and one set of tag keys per name, each bound once.

:meth:`Catalog.lookup` is every record's first step (a dict look-up when the name is known and
the tags match as given); the first record of a name creates its :class:`~.series.Series` and
binds it to its Prometheus family (:class:`~.binding.Binding`) under the catalog's lock. Names
that are not plain text (a lone surrogate, an object) are kept as :func:`vigil.text.safe_text`
makes them and found again either way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry

from vigil.monitoring.metrics.binding import Binding
from vigil.monitoring.metrics.checks import checked_tags
from vigil.monitoring.metrics.naming import MetricKind
from vigil.monitoring.metrics.series import Record, Series
from vigil.text import safe_text

__all__ = ["Catalog"]


class Catalog:
    """The series of one monitor by seed name, each keeping ``retention`` records."""

    def __init__(self, registry: CollectorRegistry, retention: int) -> None:
        self._binding = Binding(registry)
        self._series: dict[str, Series] = {}
        self._retention = retention
        self._lock = threading.Lock()

    def find(self, name: object) -> Series | None:
        """The series recorded as ``name`` (given as is, or as its text), if any."""
        try:
            series = self._series.get(name)  # type: ignore[call-overload]
        except TypeError:  # an unhashable name
            series = None
        return series if series is not None else self._series.get(safe_text(name))

    def lookup(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
               description: str | None = None, *, local_only: bool = False
               ) -> tuple[Series, Mapping[str, object] | None]:
        """The series to record ``name`` in and the tags to record it with (keys as text if
        they had to be); created on first use. ``ValueError`` when the kind or tag keys differ
        from the first record's."""
        try:  # find() inlined: this is every record's first step
            series = self._series.get(name)
        except TypeError:  # an unhashable name
            series = None
        if series is None:
            series = self._series.get(safe_text(name)) or \
                self._create(name, kind, tags, local_only, description)
        if series.kind != kind:
            raise ValueError(f"metric {series.name!r} is a {series.kind}; it cannot also be "
                             f"used as a {kind}")
        if tags is not None or series.tag_keys:  # a record without tags, of a name without any
            tags = checked_tags(series.name, series.tag_keys, tags)
        return series, tags

    def local_view(self, name: str, kind: MetricKind, view: Callable[[], list[Record]]) -> None:
        """Answer seed name ``name`` from ``view`` (the decorator's names; kept out of
        Prometheus, where ``vigil_function_*`` carries them)."""
        self.lookup(name, kind, None, local_only=True)[0].view = view

    def names(self) -> list[str]:
        """The seed names recorded so far, sorted."""
        with self._lock:
            return sorted(self._series)

    def all(self) -> list[Series]:
        """Every series, in the order first recorded."""
        with self._lock:
            return list(self._series.values())

    def resize(self, retention: int) -> None:
        """Keep ``retention`` records per name from now on (the newest, for those already kept)."""
        with self._lock:
            self._retention = retention
            for series in self._series.values():
                series.resize(retention)

    def _create(self, name: str, kind: MetricKind, tags: Mapping[str, object] | None,
                local_only: bool, description: str | None) -> Series:
        name = safe_text(name)
        tag_keys = tuple(sorted(safe_text(k) for k in tags)) if tags else ()
        with self._lock:
            existing = self._series.get(name)
            if existing is not None:
                return existing
            family, scale = (None, 1.0) if local_only else self._binding.family(
                name, kind, tag_keys, description)
            series = Series(name=name, kind=kind, tag_keys=tag_keys,
                            history=deque(maxlen=self._retention), family=family, scale=scale)
            if family is not None and not tag_keys:
                series.unlabelled = family.metric
            self._series[name] = series
            return series
