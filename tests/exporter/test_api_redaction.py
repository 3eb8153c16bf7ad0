"""The JSON API never shows secret-looking metadata that the log lines would redact."""

from __future__ import annotations

import warnings

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


def test_alerts_and_traces_redact_secret_metadata() -> None:
    """/api/alerts, /api/traces and /api/traces/{id} show [REDACTED] for secret keys."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry, clock=FakeClock())
    tracer = ExecutionTracer(registry=registry)
    app = create_app(monitor=PerformanceMonitor(registry=registry), alert_manager=alerts,
                     tracer=tracer, settings=ExporterSettings(allowed_hosts=("testserver",)))
    alerts.send_alert("high", "Svc", "login failed", metadata={"password": "hunter2", "u": 1})
    parent = tracer.start_trace("Svc", "login", metadata={"auth": {"api_key": "k-123"}})
    child = tracer.start_trace("Svc", "check", metadata={"token": "t-9"},
                               parent_trace_id=parent)
    tracer.end_trace(child)
    tracer.end_trace(parent)
    try:
        with TestClient(app) as client:
            alert_body = client.get("/api/alerts").text
            recent = client.get("/api/traces").text
            tree = client.get(f"/api/traces/{parent}").json()
    finally:
        alerts.close()
    assert "hunter2" not in alert_body
    assert '"password":"[REDACTED]"' in alert_body.replace(" ", "")
    assert "k-123" not in recent
    assert "t-9" not in recent
    assert tree["metadata"] == {"auth": {"api_key": "[REDACTED]"}}
    assert tree["children"][0]["metadata"] == {"token": "[REDACTED]"}
