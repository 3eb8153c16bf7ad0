"""The process-wide monitor, as :data:`vigil.monitoring.metrics.performance_monitor` builds it.

It records on prometheus_client's default registry, the one the application and other
libraries register on: the exporter serves it, so one ``/metrics`` holds theirs and vigil's,
with prometheus_client's own ``process_*``, ``python_gc_*`` and ``python_info``. It follows
:func:`vigil.configure` (``metrics.retention_count``). Built on first use by the package's
``__getattr__`` (:mod:`vigil._lazy`), never at import.
"""

from __future__ import annotations

from vigil.config import on_configure
from vigil.monitoring import instruments
from vigil.monitoring.metrics.monitor import PerformanceMonitor

__all__ = ["build_shared_monitor"]


def build_shared_monitor() -> PerformanceMonitor:
    """A new monitor on the default registry, reconfigured by :func:`vigil.configure`."""
    monitor = PerformanceMonitor(registry=instruments.default_registry())
    on_configure(monitor.reconfigure)
    return monitor
