"""What the ASGI and WSGI middleware tests share: a registry, tracer, fake clock and log capture."""

from __future__ import annotations

import io
import json
from typing import Any

from prometheus_client import CollectorRegistry

from vigil._http import REQUESTS
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.tracing import ExecutionTracer
from vigil.testing import FakeClock

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{REMOTE_SPAN}-01"


class HttpRig:
    """One middleware under test: its registry, tracer (own registry), clock and log lines."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.clock = FakeClock()
        self.tracer = ExecutionTracer(registry=CollectorRegistry(), clock=self.clock)
        self.stream = io.StringIO()
        self.logger = StructuredLogger("app", stream=self.stream, registry=CollectorRegistry())

    def count(self, route: str, status: str = "200", method: str = "GET") -> float | None:
        return self.registry.get_sample_value(
            REQUESTS, {"method": method, "route": route, "status": status})

    def series(self, name: str = REQUESTS) -> list[dict[str, str]]:
        return [sample.labels for family in self.registry.collect()
                for sample in family.samples if sample.name == name]

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]
