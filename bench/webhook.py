"""The webhook's cost of a durable 2xx: latency and throughput on a real loopback server.

The exporter runs in this process on 127.0.0.1 (port 0), its store a SQLite file in a temporary
folder (WAL, synchronous commits: one fsync per notification), one no-op handler registered.
There is no peer library for an Alertmanager receiver, so the rows compare with the same server:

- latency: a 1-alert notification's POST (parse, commit, answer) against ``GET /healthz`` on the
  same keep-alive connection (the HTTP floor), interleaved; p50 and p99 of single requests;
- throughput: client threads posting 10-alert notifications as fast as they are answered, for a
  fixed time; alerts acknowledged per second beside alerts the handler got per second meanwhile
  (SQLite has one writer: the webhook's fsynced commits come first, so during a flood at full
  speed delivery gets the gaps), and the rate at which the backlog drains once the flood stops.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid

import httpx
from prometheus_client import CollectorRegistry

from bench.cases import NullStream, Result
from bench.harness import Budget


def _body(alerts: int) -> bytes:
    run = uuid.uuid4().hex[:8]
    return json.dumps({
        "version": "4", "status": "firing", "receiver": "vigil", "groupKey": run,
        "alerts": [{"status": "firing", "labels": {"alertname": "Bench", "run": run,
                                                   "n": str(i)},
                    "annotations": {"summary": "bench"}, "startsAt": "2026-12-01T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{run}{i}"}
                   for i in range(alerts)]}).encode()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def webhook_rows(budget: Budget) -> list[Result]:
    """The three rows (see the module docs)."""
    import logging

    from vigil import configure_logging

    # The exporter's JSON lines would land between the table's rows on stdout.
    configure_logging("ERROR", stream=NullStream())  # type: ignore[arg-type]
    try:
        return _rows(budget)
    finally:
        logging.getLogger().removeHandler(configure_logging())


def _rows(budget: Budget) -> list[Result]:
    from vigil.config import ExporterSettings
    from vigil.monitoring.alerts import Alert, AlertManager
    from vigil.monitoring.metrics import PerformanceMonitor
    from vigil.monitoring.tracing import ExecutionTracer
    from vigil_exporter.app import create_app
    from vigil_exporter.server import start_exporter

    requests = 50 if budget.quick else 2000
    seconds = 0.5 if budget.quick else 5.0
    handled = [0]
    lock = threading.Lock()

    def handler(alert: Alert) -> None:
        with lock:
            handled[0] += 1

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as state:
        registry = CollectorRegistry()
        manager = AlertManager(registry=registry)
        manager.register_handler(handler)
        settings = ExporterSettings(state_dir=state, store_max_alerts=1_000_000,
                                    store_max_bytes=2**31, delivery_poll_interval=0.05)
        app = create_app(settings=settings, registry=registry, alert_manager=manager,
                         tracer=ExecutionTracer(registry=registry),
                         monitor=PerformanceMonitor(registry=registry))
        handle = start_exporter(port=0, app=app, settings=settings)
        try:
            post: list[float] = []
            health: list[float] = []
            headers = {"Content-Type": "application/json"}
            with httpx.Client(base_url=handle.url, timeout=30) as client:
                for _ in range(20):  # warm-up: connection, thread pool, SQLite pages
                    client.post(settings.webhook_path, content=_body(1), headers=headers)
                for _ in range(requests):
                    body = _body(1)
                    started = time.perf_counter()
                    answer = client.post(settings.webhook_path, content=body, headers=headers)
                    post.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                    started = time.perf_counter()
                    client.get("/healthz")
                    health.append(time.perf_counter() - started)
            acked, delivered, drained = _throughput(handle.url, settings.webhook_path,
                                                    seconds, handled, lock)
        finally:
            handle.stop()
            manager.close()
    ms = 1000.0
    return [
        Result("webhook 2xx, p50 (1 alert, SQLite synchronous commit)",
               statistics.median(post) * ms, "`GET /healthz`, same server",
               statistics.median(health) * ms, "ms"),
        Result("webhook 2xx, p99", _percentile(post, 0.99) * ms, "`GET /healthz`, p99",
               _percentile(health, 0.99) * ms, "ms"),
        Result("webhook alerts acknowledged/s (10 per notification, 4 clients)", acked,
               "alerts handled/s during the flood", delivered, "alerts/s"),
        Result("alerts handled/s after the flood (the backlog drained)", drained,
               "alerts acknowledged/s during the flood", acked, "alerts/s"),
    ]


def _throughput(url: str, path: str, seconds: float, handled: list[int],
                lock: threading.Lock) -> tuple[float, float, float]:
    """(acknowledged/s, handled/s during the flood, handled/s draining the backlog after)."""
    acked = [0]
    stop = time.monotonic() + seconds
    with lock:
        before = handled[0]

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                answer = http.post(path, content=_body(10),
                                   headers={"Content-Type": "application/json"})
                if answer.status_code == 200:
                    with lock:
                        acked[0] += answer.json()["alerts"]

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    with lock:
        delivered = handled[0] - before
    drain_started = time.monotonic()
    while time.monotonic() - drain_started < 120:
        with lock:
            if handled[0] - before >= acked[0]:
                break
        time.sleep(0.005)  # the delivery loop's threads are at work
    drain_seconds = time.monotonic() - drain_started
    backlog = acked[0] - delivered
    return (acked[0] / elapsed, delivered / elapsed,
            backlog / drain_seconds if drain_seconds > 0 else float("inf"))
