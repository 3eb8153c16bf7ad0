"""End to end on real servers: a breaker forced open comes back as an alert, then resolves.

The exporter (its own registry and AlertManager) is scraped by a real Prometheus evaluating the
rules of ``alerts/build.py`` with fast test timings (``--set breaker_open_for=2s`` and 1 s
Alertmanager grouping: the shipped rules are not touched), which sends to a real Alertmanager
configured by the generated ``alertmanager.yml``, which posts to the exporter's webhook (with
the bearer token it requires), whose alerts reach a handler registered on the AlertManager.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.conftest import prom_query, requires_stack, wait_until
from vigil.config import ExporterSettings
from vigil.error_handling import CircuitBreaker
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil_exporter.app import create_app
from vigil_exporter.server import start_exporter
from vigil_exporter.stack import LocalStack

pytestmark = [pytest.mark.integration, requires_stack]

BUILD = Path(__file__).resolve().parents[2] / "alerts" / "build.py"
TOKEN = "breaker-e2e-token"
ALERT = "VigilCircuitBreakerOpen"
# Test timings: the breaker alert after 2 s open, Alertmanager groups flushed every second.
FAST = ("breaker_open_for=2s", "group_wait=1s", "group_interval=1s",
        "critical_group_wait=1s", "critical_group_interval=1s")
DEADLINE = 45.0  # seconds for each step; the whole test takes ~15 s on a 2-core machine


def _fast_alerts_dir(tmp_path: Path) -> Path:
    out = tmp_path / "alerts"
    argv = [sys.executable, str(BUILD), "--out", str(out)]
    for pair in FAST:
        argv += ["--set", pair]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return out


def _stack_logs(local: LocalStack) -> str:
    """Prometheus's and Alertmanager's logs from the stack's work folder (while it runs)."""
    logs = local.logs()
    if not logs:
        return "(the stack did not start)"
    return "\n".join(f"--- {name}.log (last 4000 characters)\n{text[-4000:]}"
                     for name, text in logs.items())


def test_forced_open_breaker_alert_reaches_handler_and_resolves(tmp_path: Path) -> None:
    """up == 1; a forced-open breaker fires into a handler with its labels; reset() resolves it."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    received: list[Alert] = []
    lock = threading.Lock()

    def handler(alert: Alert) -> None:
        if alert.source == "alertmanager" and alert.labels.get("alertname") == ALERT:
            with lock:
                received.append(alert)

    def with_status(status: str) -> list[Alert]:
        with lock:
            return [a for a in received if a.status == status]

    alerts.register_handler(handler)
    settings = ExporterSettings(webhook_bearer_token=TOKEN)
    app = create_app(settings=settings, monitor=PerformanceMonitor(registry=registry),
                     alert_manager=alerts)
    exporter = start_exporter(port=0, app=app, settings=settings)
    local = LocalStack(exporter_url=exporter.url, webhook_url=exporter.url + settings.webhook_path,
                       bearer_token=TOKEN, alerts_dir=_fast_alerts_dir(tmp_path),
                       scrape_interval="1s")
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    try:
        local.start()
        assert local.prometheus_url is not None
        url = local.prometheus_url
        breaker = CircuitBreaker(name=name, failure_threshold=1, recovery_timeout=600.0,
                                 registry=registry, alert_manager=alerts)
        # Scraped and CLOSED first, so the alert sees the breaker leave CLOSED.
        wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), DEADLINE,
                   "Prometheus to scrape the exporter (up == 1)")
        closed = f'vigil_circuit_breaker_state{{breaker="{name}", state="CLOSED"}} == 1'
        wait_until(lambda: prom_query(url, closed), DEADLINE, "the breaker's series")

        breaker.force_open()
        firing = wait_until(lambda: with_status("firing"), DEADLINE,
                            f"{ALERT} to come back through Alertmanager")[0]
        assert firing.labels["breaker"] == name
        assert firing.labels["severity"] == "warning"
        assert firing.labels["job"] == "vigil"
        assert firing.severity == "medium"  # the webhook's mapping of "warning"
        assert firing.component == "vigil"  # no component label: the job
        assert firing.message == f"Circuit breaker {name} is open"
        assert firing.annotations["runbook_url"] == (
            "https://github.com/vigil-monitoring/vigil/blob/main/alerts/runbook.md"
            "#vigilcircuitbreakeropen")
        assert firing.metadata["receiver"] == "vigil-warning"

        breaker.reset()
        resolved = wait_until(lambda: with_status("resolved"), DEADLINE,
                              f"the resolved {ALERT} notification")[0]
        assert resolved.labels["breaker"] == name
        assert resolved.fingerprint == firing.fingerprint
    except BaseException:
        print(f"alerts received: {received!r}\n{_stack_logs(local)}")
        raise
    finally:
        local.stop()
        exporter.stop()
        alerts.close()
