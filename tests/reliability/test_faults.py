"""Faults: broken alert handlers, a receiver whose queue is full under a real Alertmanager,
a Prometheus restarted mid-run, and servers/threads stopped and started over and over.

Already proven elsewhere (cited, not repeated): one raising handler
(tests/unit/monitoring/test_alerts.py::test_raising_handler_is_isolated_counted_and_logged), one
hung handler (::test_hung_handler_is_reported_once_and_others_still_run), one full handler queue
(::test_full_queue_drops_for_that_handler_only), the webhook's 503 and retry in-process
(tests/exporter/test_app.py::test_queue_full_is_503_and_the_retry_is_delivered), five restarts of
a bare ASGI app (tests/exporter/test_server.py::test_restart_cycles_leave_no_threads).

Heavy variant (``-m heavy``): 100 exporter + sampler restart cycles instead of 10.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.conftest import prom_query, requires_stack, wait_until
from tests.reliability.conftest import HEAVY, WAIT, Footprint, live_exporter, settle
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.testing import FakeClock
from vigil_exporter.stack import LocalStack, find_prometheus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
BUILD = Path(__file__).resolve().parents[2] / "alerts" / "build.py"
DEADLINE = 60.0  # seconds for each step that waits on Prometheus or Alertmanager


# --- alert handlers -------------------------------------------------------------------------


def test_raising_hanging_and_slow_handlers_leave_the_others_served() -> None:
    """With a raising, a hung and a slow handler registered, a good handler gets every alert at
    once; each failure is counted (error, hung once, dropped past the queue); the slow one
    catches up with what its queue held."""
    registry, clock = CollectorRegistry(), FakeClock()
    manager = AlertManager(registry=registry, clock=clock, buffer_size=1000, dedup_window=0,
                           handler_timeout=10.0, queue_size=20,
                           logger=StructuredLogger("vigil.alerts", registry=registry,
                                                   stream=io.StringIO()))
    good: list[str] = []
    slow_seen: list[str] = []
    hung_started, slow_started = threading.Event(), threading.Event()
    release_hung = threading.Event()
    slow_permits = threading.Semaphore(0)

    def raising(alert: Alert) -> None:
        raise RuntimeError(f"handler bug on {alert.message}")

    def hanging(alert: Alert) -> None:
        hung_started.set()
        release_hung.wait(60)

    def slow(alert: Alert) -> None:
        slow_started.set()
        assert slow_permits.acquire(timeout=60)  # each alert takes as long as the test says
        slow_seen.append(alert.message)

    for handler in (raising, hanging, slow, lambda alert: good.append(alert.message)):
        manager.register_handler(handler)
    total = 50
    name = "test_raising_hanging_and_slow_handlers_leave_the_others_served.<locals>."

    def failures(handler: str, reason: str) -> float:
        return registry.get_sample_value("vigil_alert_handler_failures_total",
                                         {"handler": name + handler, "reason": reason}) or 0.0

    try:
        manager.send_alert("high", "svc", "m0")
        assert hung_started.wait(WAIT)
        assert slow_started.wait(WAIT)
        for i in range(1, total):
            manager.send_alert("high", "svc", f"m{i}")  # never waits for a handler
            # The working handlers keep up alert by alert, so only the stuck ones' queues fill.
            assert settle(lambda n=i + 1: len(good) == n), f"good handler stuck at {len(good)}"
            assert settle(lambda n=i + 1: failures("raising", "error") == n)
        assert good == [f"m{i}" for i in range(total)]
        assert slow_seen == []  # still on the first alert: it delayed only itself
        clock.advance(10.5)  # the hung handler is now past handler_timeout
        manager.send_alert("high", "svc", "after-timeout")  # notices it, reports it once
        assert settle(lambda: len(good) == total + 1)
        assert settle(lambda: failures("raising", "error") == total + 1)
        assert failures("hanging", "hung") == 1
        assert failures("slow", "hung") == 1  # also stuck in its first call past the timeout
        # One alert running and queue_size (20) waiting each; the other 30 were dropped.
        assert failures("hanging", "dropped") == total + 1 - 21
        assert failures("slow", "dropped") == total + 1 - 21
        assert failures("<lambda>", "dropped") == failures("raising", "dropped") == 0
        for _ in range(total + 1):
            slow_permits.release()
        assert settle(lambda: len(slow_seen) == 21)
        assert slow_seen == [f"m{i}" for i in range(21)]
    finally:
        release_hung.set()
        for _ in range(total + 1):
            slow_permits.release()
    assert manager.flush(WAIT)
    assert manager.close()


# --- Alertmanager delivering while the queue is full ----------------------------------------


def _fast_alerts_dir(tmp_path: Path) -> Path:
    """alerts/build.py's output with 1 s Alertmanager grouping (the shipped files untouched)."""
    out = tmp_path / "alerts"
    argv = [sys.executable, str(BUILD), "--out", str(out)]
    for pair in ("group_wait=1s", "group_interval=1s", "critical_group_wait=1s",
                 "critical_group_interval=1s"):
        argv += ["--set", pair]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return out


def _post_alerts(alertmanager_url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        alertmanager_url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.mark.integration
@requires_stack
def test_alertmanager_redelivers_what_a_full_store_refused(tmp_path: Path) -> None:
    """A real Alertmanager posts 6 alert groups to a webhook whose store holds 1 alert while
    the handler is stuck on it: it gets 503s; once the handler moves, Alertmanager's retries
    are accepted and every alert reaches the handler exactly once."""
    prefix = "ReliabilityBackpressure"
    count = 6
    token = "reliability-token"
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry)
    gate = threading.Event()
    with contextlib.ExitStack() as stack:
        live = live_exporter(stack, manager=manager, registry=registry,
                             store_max_alerts=1, webhook_bearer_token=token)
        manager.register_handler(lambda alert: gate.wait(DEADLINE))  # holds the store full
        stack.callback(gate.set)  # never leave the handler stuck
        local = LocalStack(exporter_url=live.url, webhook_url=live.url + live.settings.webhook_path,
                           bearer_token=token, alerts_dir=_fast_alerts_dir(tmp_path),
                           scrape_interval="1s")
        stack.callback(local.stop)
        local.start()
        assert local.alertmanager_url is not None

        def ours() -> dict[str, list[Alert]]:
            found: dict[str, list[Alert]] = {}
            for alert in list(live.received):
                name = alert.labels.get("alertname", "")
                if alert.source == "alertmanager" and name.startswith(prefix):
                    found.setdefault(name, []).append(alert)
            return found

        try:
            # One group each (group_by alertname): six notifications, sent concurrently.
            _post_alerts(local.alertmanager_url, [
                {"labels": {"alertname": f"{prefix}{i}", "severity": "critical", "job": "vigil"},
                 "annotations": {"summary": f"back-pressure alert {i}"}}
                for i in range(count)])
            # One alert is stored (its first handler is stuck on it): the rest get 503.
            wait_until(lambda: live.sample("vigil_webhook_requests_total", code="503")
                       >= count - 1, DEADLINE, "the webhook to answer 503 to the other groups")
            assert len(ours()) <= 1  # only the stored one can have reached the recorder
            gate.set()
            wait_until(lambda: len(ours()) == count, DEADLINE,
                       "every alert to arrive after Alertmanager's retries")
            live.delivered()
            got = ours()
            assert sorted(got) == [f"{prefix}{i}" for i in range(count)]
            assert all(len(alerts) == 1 for alerts in got.values()), "an alert came twice"
            assert all(a[0].status == "firing" and a[0].severity == "critical"
                       for a in got.values())
            for name in got:
                assert live.sample("vigil_alertmanager_alerts_received_total",
                                   alertname=name, status="firing") == 1
            # One group was taken before the gate opened; the other five came back as retries.
            assert live.sample("vigil_webhook_requests_total", code="200") >= count
        except BaseException:
            print(json.dumps({"503": live.sample("vigil_webhook_requests_total", code="503"),
                              "200": live.sample("vigil_webhook_requests_total", code="200"),
                              "received": sorted(ours())}))
            for name, text in local.logs().items():
                print(f"--- {name}.log\n{text[-3000:]}")
            raise


# --- Prometheus restarted mid-run -----------------------------------------------------------


def _prometheus_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _scrape_times(url: str) -> list[float]:
    """Timestamps of every ``up{job="vigil"} == 1`` sample in the last 10 minutes."""
    result = prom_query(url, 'up{job="vigil"}[10m]')
    return [float(t) for series in result for t, v in series["values"] if v == "1"]


@pytest.mark.integration
@pytest.mark.skipif(find_prometheus() is None, reason="prometheus is not installed")
def test_prometheus_restart_resumes_scraping(tmp_path: Path) -> None:
    """Prometheus stopped (SIGTERM) and started again on the same port and storage: up == 1
    again within the deadline, and the samples from before the restart are still there."""
    with contextlib.ExitStack() as stack:
        live = live_exporter(stack)
        local = LocalStack(exporter_url=live.url, scrape_interval="1s")
        stack.callback(local.stop)
        local.start(alertmanager=False)
        url = local.prometheus_url
        assert url is not None
        wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), DEADLINE, "the first scrape")
        wait_until(lambda: len(_scrape_times(url)) >= 2, DEADLINE, "two scrapes")

        (pid,) = local.pids
        old = psutil.Process(pid)
        argv, cwd = old.cmdline(), old.cwd()
        stopped_at = time.time()
        os.kill(pid, signal.SIGTERM)
        old.wait(30)
        assert not _prometheus_ready(url)

        with open(tmp_path / "prometheus-restarted.log", "wb") as log:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

        def stop_restarted() -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

        stack.callback(stop_restarted)
        try:
            wait_until(lambda: proc.poll() is None and _prometheus_ready(url), DEADLINE,
                       "the restarted Prometheus to be ready")
            times = wait_until(
                lambda: (t := _scrape_times(url)) and max(t) > stopped_at + 0.5 and t,
                DEADLINE, "a scrape by the restarted Prometheus (up == 1)")
            assert prom_query(url, 'up{job="vigil"} == 1')
            assert min(times) < stopped_at, "the samples from before the restart were lost"
        except BaseException:
            print((tmp_path / "prometheus-restarted.log").read_text(errors="replace")[-3000:])
            raise


# --- restart cycles leave nothing behind ----------------------------------------------------

FIRING = (FIXTURES / "firing.json").read_bytes()


def _one_cycle() -> None:
    """An exporter (create_app: dispatcher thread, handlers) and a resource sampler, used and
    stopped."""
    with contextlib.ExitStack() as stack:
        live = live_exporter(stack)
        with httpx.Client(timeout=WAIT) as client:
            assert client.get(live.url + "/healthz").status_code == 200
            assert client.get(live.url + "/readyz").status_code == 200
            assert client.get(live.url + "/metrics").status_code == 200
            assert client.get(live.url + "/api/traces").status_code == 200
            assert client.post(live.url + live.settings.webhook_path, content=FIRING,
                               headers={"Content-Type": "application/json"}).status_code == 200
        assert len(live.delivered()) == 1
        monitor = PerformanceMonitor(registry=CollectorRegistry())
        assert monitor.start_monitoring(interval=0.01)
        assert settle(lambda: (monitor.registry.get_sample_value(
            "vigil_resource_last_sample_timestamp_seconds") or 0) > 0)
        monitor.stop_monitoring(timeout=WAIT)
        assert not monitor.monitoring
        assert live.handle.stop()


def _diff(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    keys = set(before) | set(after)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys
            if after.get(k, 0) != before.get(k, 0)}


@pytest.mark.parametrize("cycles", [
    pytest.param(10, id="10-cycles"),
    pytest.param(100, id="100-cycles", marks=HEAVY),
])
def test_restart_cycles_leak_no_threads_fds_or_sockets(cycles: int) -> None:
    """The exporter and the resource sampler started and stopped repeatedly: the same threads
    (by name), file descriptors and inet sockets as before."""
    _one_cycle()  # warm-up: lazily created, process-lifetime objects (psutil's handle, ...)
    gc.collect()  # earlier tests' unreachable clients close their sockets now, not mid-count
    before = Footprint.now()
    for _ in range(cycles):
        _one_cycle()

    def grown() -> dict[str, int]:
        gc.collect()
        now = Footprint.now()
        growth = {f"threads {name}": n for name, n in
                  _diff(before.vigil_threads(), now.vigil_threads()).items() if n > 0}
        if now.fds > before.fds:
            growth["fds"] = now.fds - before.fds
        if now.sockets > before.sockets:
            growth["inet sockets"] = now.sockets - before.sockets
        return growth

    # Threads end asynchronously: give them the deadline to do so. Only growth is a leak.
    if not settle(lambda: not grown()):
        raise AssertionError(f"after {cycles} cycles, still held: {grown()}")


# --- answers are not held back on kept-alive connections -------------------------------------


def test_accepted_connections_disable_nagle() -> None:
    """Every connection the exporter accepts has TCP_NODELAY: otherwise uvicorn's separate
    writes of head and body wait for the client's delayed ACK, ~40 ms per answer on a
    kept-alive connection (Prometheus and Alertmanager keep theirs alive)."""
    with contextlib.ExitStack() as stack:
        live = live_exporter(stack)
        with httpx.Client(base_url=live.url, timeout=WAIT) as client:
            assert client.get("/healthz").status_code == 200  # the connection stays open
            server_side = [c for c in psutil.Process().net_connections("tcp")
                           if c.laddr and c.laddr.port == live.handle.port and c.raddr]
            assert len(server_side) == 1, server_side
            with socket.socket(fileno=os.dup(server_side[0].fd)) as accepted:
                nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert nodelay, "the accepted connection leaves Nagle's algorithm on"
            assert client.get("/healthz").status_code == 200
