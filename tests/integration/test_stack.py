"""End to end on real servers: the exporter, Prometheus and Alertmanager with the repo's configs.

Prometheus scrapes the exporter over a real socket, evaluates alerts/*.rules.yml, sends to
Alertmanager configured by alerts/alertmanager.yml, which posts back to the exporter's webhook,
whose alerts reach a handler registered on vigil's AlertManager.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.conftest import prom_query, requires_stack, wait_until
from vigil.config import ExporterSettings
from vigil.error_handling.recovery import ErrorRecoveryManager
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil_exporter.app import create_app
from vigil_exporter.server import ExporterHandle, start_exporter
from vigil_exporter.stack import LocalStack

pytestmark = [pytest.mark.integration, requires_stack]
TOKEN = "integration-webhook-token"


@dataclass
class Stack:
    exporter: ExporterHandle
    local: LocalStack
    registry: CollectorRegistry
    alerts: AlertManager
    received: list[Alert]
    arrived: threading.Event


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """An exporter with its own registry, plus Prometheus and Alertmanager wired to it."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    received: list[Alert] = []
    arrived = threading.Event()

    def handler(alert: Alert) -> None:
        if alert.source == "alertmanager":
            received.append(alert)
            arrived.set()

    alerts.register_handler(handler)
    settings = ExporterSettings(webhook_bearer_token=TOKEN)
    app = create_app(settings=settings, monitor=PerformanceMonitor(registry=registry),
                     alert_manager=alerts)
    exporter = start_exporter(port=0, app=app, settings=settings)
    local = LocalStack(exporter_url=exporter.url,
                       webhook_url=exporter.url + settings.webhook_path,
                       bearer_token=TOKEN, scrape_interval="1s")
    try:
        local.start()
        yield Stack(exporter, local, registry, alerts, received, arrived)
    finally:
        local.stop()
        exporter.stop()
        alerts.close()


def test_prometheus_scrapes_the_exporter(stack: Stack) -> None:
    """The vigil job's target is up and vigil metrics are queryable in Prometheus."""
    assert stack.local.prometheus_url is not None
    url = stack.local.prometheus_url
    wait_until(lambda: [r for r in prom_query(url, 'up{job="vigil"}') if r["value"][1] == "1"],
               30, "the vigil target to be up")


def test_rules_are_loaded(stack: Stack) -> None:
    """Prometheus loaded every rule of alerts/*.rules.yml."""
    assert stack.local.prometheus_url is not None
    with urllib.request.urlopen(stack.local.prometheus_url + "/api/v1/rules", timeout=5) as resp:
        body = resp.read().decode()
    assert "VigilCriticalError" in body
    assert "VigilCircuitBreakerOpen" in body


def test_critical_error_alert_round_trips_through_alertmanager(stack: Stack) -> None:
    """A critical error fires VigilCriticalError, which comes back through the webhook."""
    assert stack.local.prometheus_url is not None
    url = stack.local.prometheus_url
    wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), 30, "the first scrape")
    manager = ErrorRecoveryManager(registry=stack.registry, alert_manager=stack.alerts)
    manager.handle_error(RuntimeError("agent loops"), "AGENT_EXECUTION", "critical",
                         "AgentExecutor", "runaway_loop")
    assert stack.arrived.wait(90), "no alert came back through Alertmanager within 90 s"
    alert = next(a for a in stack.received if a.labels.get("alertname") == "VigilCriticalError")
    assert alert.status == "firing"
    assert alert.severity == "critical"
    assert alert.labels["component"] == "AgentExecutor"
    assert alert.annotations["summary"] == "Critical error in AgentExecutor (agent_execution)"
    assert stack.registry.get_sample_value(
        "vigil_alertmanager_alerts_received_total",
        {"alertname": "VigilCriticalError", "status": "firing"}) >= 1
    # Counted when the response completes, which can be just after the handler ran.
    wait_until(lambda: (stack.registry.get_sample_value("vigil_webhook_requests_total",
                                                        {"code": "200"}) or 0) >= 1,
               10, "the webhook request to be counted")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_live_metrics_pass_promtool(stack: Stack) -> None:
    """promtool check metrics prints nothing for a live /metrics scraped over the socket."""
    with urllib.request.urlopen(stack.exporter.url + "/metrics", timeout=5) as response:
        text = response.read()
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                            check=False)
    assert (result.stdout + result.stderr).decode() == ""
    assert result.returncode == 0


def test_the_links_the_demo_prints_answer(stack: Stack) -> None:
    """The Prometheus alerts and targets pages the demo links to answer 200 on the installed
    Prometheus (the React UI's /alerts, or /classic/alerts where only the classic UI ships)."""
    for page in ("alerts", "targets"):
        url = stack.local.prometheus_page(page)
        assert url is not None, page
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200


def test_alert_links_name_the_loopback_address(stack: Stack) -> None:
    """Prometheus and Alertmanager run with --web.external-url set to their own loopback
    URL, so an alert's generatorURL and Alertmanager's links are not the machine's host name."""
    assert stack.local.prometheus_url is not None
    assert stack.local.alertmanager_url is not None
    with urllib.request.urlopen(stack.local.prometheus_url + "/api/v1/status/flags",
                                timeout=5) as answer:
        flags = json.loads(answer.read())["data"]
    assert flags["web.external-url"] == stack.local.prometheus_url + "/"
    command_lines = [" ".join(psutil.Process(pid).cmdline()) for pid in stack.local.pids]
    assert any(f"--web.external-url={stack.local.alertmanager_url}/" in line
               for line in command_lines if "alertmanager" in line), command_lines
