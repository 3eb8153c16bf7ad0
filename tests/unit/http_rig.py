"""What the ASGI and WSGI middleware tests share: a registry, tracer, fake clock and log capture."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from vigil._http import REQUESTS
from vigil.monitoring.tracing import ExecutionTracer
from vigil.testing import FakeClock, LogCapture, MetricReader

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{REMOTE_SPAN}-01"


class HttpRig:
    """One middleware under test: its registry, tracer (own registry), clock and log lines,
    read back through vigil.testing's helpers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = MetricReader(self.registry)
        self.clock = FakeClock()
        self.tracer = ExecutionTracer(registry=CollectorRegistry(), clock=self.clock)
        self.logs = LogCapture()
        self.logger = self.logs.logger("app")

    def count(self, route: str, status: str = "200", method: str = "GET") -> float:
        return self.metrics.value(REQUESTS, method=method, route=route, status=status)

    def series(self, name: str = REQUESTS) -> list[dict[str, str]]:
        return self.metrics.series(name)

    def lines(self) -> list[dict[str, Any]]:
        return self.logs.lines()
