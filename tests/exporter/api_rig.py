"""The JSON API tests' rig: an exporter app on fresh collaborators, its lifespan running."""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil.testing import FakeClock
from vigil_exporter.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette prefers the httpx2 fork for its TestClient
    from fastapi.testclient import TestClient

HOST = socket.gethostname()
ME = {"pid": os.getpid(), "host": HOST, "multiprocess": False}  # this process, as the API says
MINE = {"Vigil-Pid": str(os.getpid()), "Vigil-Host": HOST, "Vigil-Multiprocess": "false"}


@dataclass
class Rig:
    client: TestClient
    alerts: AlertManager
    tracer: ExecutionTracer
    monitor: PerformanceMonitor
    registry: CollectorRegistry
    clock: FakeClock


@contextlib.contextmanager
def api_rig(**settings: Any) -> Iterator[Rig]:
    """The app with ``settings`` (``allowed_hosts`` defaults to TestClient's host)."""
    registry = CollectorRegistry()
    clock = FakeClock()
    alerts = AlertManager(registry=registry, clock=clock)
    tracer = ExecutionTracer(registry=registry, clock=clock)
    monitor = PerformanceMonitor(registry=registry)
    settings.setdefault("allowed_hosts", ("testserver",))
    app = create_app(settings=ExporterSettings(**settings), registry=registry,
                     alert_manager=alerts, tracer=tracer, monitor=monitor)
    try:
        with TestClient(app) as client:
            yield Rig(client, alerts, tracer, monitor, registry, clock)
    finally:
        alerts.close()


def process_headers(response: Any) -> dict[str, str]:
    """The answer's Vigil-Pid, Vigil-Host and Vigil-Multiprocess headers."""
    return {k: response.headers[k] for k in ("Vigil-Pid", "Vigil-Host", "Vigil-Multiprocess")}
