"""vigil under prometheus_client's multiprocess mode: the one place that decides how it behaves.

Prefork servers (gunicorn, ``uvicorn --workers``) run one Python process per worker; a scrape
reaches one of them. prometheus_client's answer is multiprocess mode: with
``PROMETHEUS_MULTIPROC_DIR`` set before it is imported, every value lives in per-pid mmap
files in that folder and ``MultiProcessCollector`` adds them up at scrape time. This module
holds everything vigil does differently there:

- :data:`MULTIPROCESS`: whether the mode is on (prometheus_client decides at import, from the
  environment; so does vigil). Where it is, vigil's instruments stay prometheus_client
  primitives (its faster scrape-time collectors would show one worker only).
- :data:`GAUGE_MODES`: how the workers' values of each vigil gauge combine, chosen by what the
  gauge means (the README's metrics table has the same column). Every mode is a ``live`` one,
  so a dead worker's gauges leave with :func:`mark_process_dead`.
- :class:`MultiprocessRegistry`: what vigil's ``/metrics`` serves there: the aggregate of all
  workers' files plus the serving process's own non-file families (custom collectors), each
  family once.
- :func:`mark_process_dead`: the bookkeeping for a worker that exited (``vigil.gunicorn``'s
  ``child_exit`` hook calls it).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, values
from prometheus_client import multiprocess as _mp
from prometheus_client.metrics_core import Metric

__all__ = [
    "GAUGE_MODES",
    "MULTIPROCESS",
    "PER_PROCESS_PREFIXES",
    "USER_GAUGE_MODE",
    "MultiprocessRegistry",
    "exposition",
    "gauge_mode",
    "mark_process_dead",
    "multiprocess_dir",
    "per_worker",
]

MULTIPROCESS: Final[bool] = values.ValueClass is not values.MutexValue
"""Whether prometheus_client runs in multiprocess mode in this process (fixed at its import)."""

# How the live workers' values of each vigil gauge combine (prometheus_client's
# multiprocess_mode). Per-process amounts add up to the application's ("livesum"); readings of
# the one machine every worker shares must not ("livemax"); the oldest "last sample" time is
# the one a staleness alert needs ("livemin"); a breaker's state is each worker's own, so each
# keeps its series with a pid label ("liveall") and the alert counts the workers not CLOSED.
GAUGE_MODES: Final[Mapping[str, str]] = {
    "vigil_circuit_breaker_state": "liveall",
    "vigil_exporter_connections": "livesum",
    "vigil_exporter_max_connections": "livesum",
    "vigil_function_in_progress": "livesum",
    "vigil_process_cpu_usage_cores": "livesum",
    "vigil_process_memory_usage_ratio": "livesum",
    "vigil_process_open_fds": "livesum",
    "vigil_process_resident_memory_bytes": "livesum",
    "vigil_process_threads": "livesum",
    "vigil_resource_last_sample_timestamp_seconds": "livemin",
    "vigil_system_cpu_usage_ratio": "livemax",
    "vigil_system_memory_usage_ratio": "livemax",
}

USER_GAUGE_MODE: Final = "liveall"
"""The mode of gauges recorded through ``PerformanceMonitor.record_gauge``: vigil cannot know
what they mean, so each live worker keeps its own series (a ``pid`` label), and a dead worker's
leave with it. prometheus_client's own default, ``all``, would keep them forever."""

PER_PROCESS_PREFIXES: Final = ("process_", "python_gc_")
"""Families of prometheus_client's default process and GC collectors: under multiprocess mode
they describe whichever worker answered the scrape (so counters would jump between workers),
and :class:`MultiprocessRegistry` leaves them out; ``vigil_process_*`` covers every worker."""


def gauge_mode(name: str) -> str:
    """The multiprocess mode of the gauge ``name``: its row of :data:`GAUGE_MODES`, else
    :data:`USER_GAUGE_MODE`."""
    return GAUGE_MODES.get(name, USER_GAUGE_MODE)


def multiprocess_dir() -> str | None:
    """The folder of the workers' files (``PROMETHEUS_MULTIPROC_DIR``), or None."""
    # prometheus_client still reads the deprecated lower-case name too.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or \
        os.environ.get("prometheus_multiproc_dir") or None  # noqa: SIM112


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Remove the live-gauge files of the exited process ``pid``.

    Its counters and histograms stay (their totals are part of the application's); with every
    vigil gauge in a ``live`` mode, the gauges of a dead worker go. Does nothing outside
    multiprocess mode.
    """
    folder = path if path is not None else multiprocess_dir()
    if folder is None:
        return
    _mp.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


class MultiprocessRegistry:
    """A scrape's view under multiprocess mode: every worker's files plus local families.

    :meth:`collect` yields the families ``MultiProcessCollector`` reads from
    ``PROMETHEUS_MULTIPROC_DIR`` (all workers, live gauges of live ones), then the families of
    ``local`` that are not among them: the serving process's custom collectors (the webhook
    store's gauges, an application's own). A ``local`` that already holds a
    ``MultiProcessCollector`` adds no second copy, and prometheus_client's per-process families
    are left out (:data:`PER_PROCESS_PREFIXES`). Works with prometheus_client's exposition
    functions, like a registry.
    """

    def __init__(self, local: CollectorRegistry, path: str | None = None,
                 names: Iterable[str] | None = None) -> None:
        self._local = local
        self._path = path
        self._names = None if names is None else frozenset(names)

    def collect(self) -> Iterator[Metric]:
        """The families of one scrape, each name once."""
        folder = self._path if self._path is not None else multiprocess_dir()
        seen: set[str] = set()
        shared: list[Metric] = []
        if folder is not None and os.path.isdir(folder):
            shared = list(_mp.MultiProcessCollector(None, folder).collect())  # type: ignore[no-untyped-call]
        for metric in shared:
            seen.add(metric.name)
            kept = self._restrict(metric)
            if kept is not None:
                yield kept
        for metric in self._local.collect():
            if metric.name in seen or metric.name.startswith(PER_PROCESS_PREFIXES):
                continue
            seen.add(metric.name)
            kept = self._restrict(metric)
            if kept is not None:
                yield kept

    def restricted_registry(self, names: Iterable[str]) -> MultiprocessRegistry:
        """The same view with only the samples named in ``names`` (as a registry's)."""
        return MultiprocessRegistry(self._local, self._path, names)

    def _restrict(self, metric: Metric) -> Metric | None:
        if self._names is None:
            return metric
        samples = [s for s in metric.samples if s.name in self._names]
        if not samples:
            return None
        kept = Metric(metric.name, metric.documentation, metric.type, metric.unit)
        kept.samples = samples
        return kept


def per_worker(name: str, path: str | None = None) -> list[tuple[dict[str, str], float]]:
    """The samples of the ``liveall`` gauge ``name`` in every live worker's files, with their
    ``pid`` label; empty outside multiprocess mode. (``/api/breakers`` shows each breaker's
    state in every worker this way.)"""
    folder = path if path is not None else multiprocess_dir()
    if folder is None or not os.path.isdir(folder):
        return []
    files = glob.glob(os.path.join(folder, "gauge_liveall_*.db"))
    found: list[tuple[dict[str, str], float]] = []
    for metric in _mp.MultiProcessCollector.merge(files, accumulate=False):  # type: ignore[no-untyped-call]
        if metric.name == name:
            found.extend((dict(s.labels), float(s.value)) for s in metric.samples)
    return found


def exposition(registry: CollectorRegistry) -> CollectorRegistry | MultiprocessRegistry:
    """What a scrape of ``registry`` serves: itself, or its :class:`MultiprocessRegistry` when
    multiprocess mode is on."""
    return MultiprocessRegistry(registry) if MULTIPROCESS else registry
