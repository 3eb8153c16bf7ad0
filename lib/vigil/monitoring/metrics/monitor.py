"""``PerformanceMonitor``: the seed's recording and reading API over one registry.

It checks values (:mod:`.checks`), records each into the name's series (:mod:`.catalog`: the
local history and the Prometheus child, in base units), answers the seed's reads
(:mod:`.stats`), keeps the decorated names' recorders (:mod:`.functions`) and delegates
resource usage to :class:`vigil.monitoring.resources.ResourceMonitor`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import VigilConfig, get_config
from vigil.monitoring.metrics.catalog import Catalog
from vigil.monitoring.metrics.checks import check_non_negative
from vigil.monitoring.metrics.functions import FunctionTable
from vigil.monitoring.metrics.naming import MetricKind
from vigil.monitoring.metrics.series import frozen_tags
from vigil.monitoring.metrics.stats import as_dicts, summarize
from vigil.monitoring.resources import ResourceMonitor, ResourceUsage

__all__ = ["PerformanceMonitor"]

_UPDATE: dict[str, str] = {"counter": "inc", "gauge": "set", "histogram": "observe"}


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
        self._catalog = Catalog(self.registry, settings.retention_count)
        # Read by @monitor_performance (vigil.monitoring.metrics.decorator).
        self._functions = FunctionTable(self.registry, self._catalog, self._clock.time,
                                        settings.retention_count)
        self._lock = threading.Lock()
        self._resources: ResourceMonitor | None = None
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
        check_non_negative("counter", "increment", name, value)
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
        check_non_negative("histogram", "observation", name, value)
        self._record(name, "histogram", value, tags, description)

    def _record(self, name: str, kind: MetricKind, value: float,
                tags: Mapping[str, object] | None, description: str | None) -> None:
        series, tags = self._catalog.lookup(name, kind, tags, description)
        child = series.child(tags)
        if child is not None:  # None for the decorator's local-only seed names
            # In base units for Prometheus: a seed name in milliseconds is exposed in seconds.
            getattr(child, _UPDATE[kind])(value if series.scale == 1.0 else value * series.scale)
        series.history.append((self._clock.time(), float(value), frozen_tags(tags)))

    # --- the seed's reading API -----------------------------------------------------------

    def get_metric_stats(self, name: str) -> dict[str, float | int | None]:
        """``count, sum, min, max, avg, p50, p95, p99`` over the retained records of ``name``.

        An unknown name gives ``count`` 0 and ``None`` for the rest.
        """
        series = self._catalog.find(name)
        return summarize(series.records() if series is not None else ())

    def get_all_metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Every name's retained records: ``{name: [{"timestamp", "value", "tags"}, ...]}``."""
        return {s.name: as_dicts(s.records()) for s in self._catalog.all()}

    def metric_names(self) -> list[str]:
        """The seed names recorded so far, sorted."""
        return self._catalog.names()

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply a new ``metrics.retention_count`` (keeping the newest records)."""
        if self._fixed_retention:
            return
        retention = config.monitoring.metrics.retention_count
        self._catalog.resize(retention)
        self._functions.resize(retention)

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
