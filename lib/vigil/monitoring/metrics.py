"""STUB - being written by the lead; only `PerformanceMonitor(registry=...)`, `.registry` and
`performance_monitor` are stable."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


class PerformanceMonitor:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)


performance_monitor = PerformanceMonitor()
