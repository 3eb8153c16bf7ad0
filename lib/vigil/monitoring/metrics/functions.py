"""One recorder per name given to ``@monitor_performance`` on one monitor.

Re-decorating with the same name shares the recorder (one ``function`` label value, one
history). The recorder's kind follows prometheus_client's mode
(:data:`vigil.monitoring.multiprocess.MULTIPROCESS`, fixed at import), and its seed names
(``name.duration_ms``, ``.calls``, ``.errors``) are answered by the monitor's
:class:`~.catalog.Catalog` from the recorder's calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from vigil.monitoring.metrics.catalog import Catalog
from vigil.monitoring.metrics.collector import FunctionCollector, FunctionRecorder
from vigil.monitoring.metrics.mmap_recorder import MultiprocessRecorder
from vigil.monitoring.metrics.recorder import Recorder, errors_cap
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.text import safe_text

__all__ = ["FunctionTable"]


class FunctionTable:
    """The decorated names of one monitor (recording on ``registry``, answering through
    ``catalog``, stamping calls with ``now``) and their recorders."""

    def __init__(self, registry: CollectorRegistry, catalog: Catalog, now: Callable[[], float],
                 retention: int) -> None:
        self._registry = registry
        self._catalog = catalog
        self._now = now
        self._retention = retention
        self._recorders: dict[str, Recorder] = {}
        self._collector: FunctionCollector | None = None  # registered with the first recorder
        self._lock = threading.Lock()

    def recorder(self, name: str) -> Recorder:
        """The recorder for ``name``, made on first use."""
        name = safe_text(name)  # the function label, as vigil.text's rule makes it
        with self._lock:
            rec = self._recorders.get(name)
            if rec is None:
                rec = self._recorders[name] = self._new(name)
        # Every time, not only the first: a name whose seed names clash with a series already
        # recorded (``f.calls`` as a gauge) raises at each decoration, not only the first.
        for suffix, kind, view in rec.views():
            self._catalog.local_view(name + suffix, kind, view)
        return rec

    def resize(self, retention: int) -> None:
        """Keep ``retention`` calls per name from now on."""
        with self._lock:
            self._retention = retention
            for rec in self._recorders.values():
                rec.resize(retention)

    def _new(self, name: str) -> Recorder:
        if MULTIPROCESS:
            return MultiprocessRecorder(name, self._retention, self._now, self._registry)
        if self._collector is None:
            self._collector = FunctionCollector()
            self._registry.register(self._collector)
        rec = FunctionRecorder(name, self._retention, self._now, errors_cap(self._registry))
        self._collector.add(rec)
        return rec
