"""An HA pair of Prometheus servers behind a 3-peer Alertmanager cluster: one delivery per change.

Two real Prometheus servers (``external_labels: {replica: a|b}``) scrape one condition served by
the test and evaluate the same alert rule; both send to all three peers of a real Alertmanager
cluster, whose every notification goes to two ``vigil serve`` receivers sharing one state
folder. So each change of the condition reaches the receivers as two alerts (one per replica),
in notifications posted to both receivers, possibly by several peers; one peer is SIGKILLed
between the firing and the resolution. The handler must still see one firing and one resolved.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.durability.support import (
    Alertmanager,
    Receiver,
    alertmanager_config,
    deliveries_by_alert,
    records,
    wait_for,
    wait_ready,
    write_recorder,
)
from tests.integration.conftest import requires_stack
from vigil_exporter.stack import find_prometheus, free_port

pytestmark = [pytest.mark.integration, requires_stack, pytest.mark.timeout(300)]

DEADLINE = 90.0
ALERT = "HaTestCondition"
PEER_TIMEOUT = 2.0  # support.Alertmanager's --cluster.peer-timeout
# Nothing more may arrive for this long before the counts are taken: the last of three peers
# waits 2 x peer-timeout before it looks whether another peer already notified.
QUIET = 2 * PEER_TIMEOUT + 1.0


# --- the condition both Prometheus servers scrape ----------------------------------------------


class Condition:
    """``/metrics`` on 127.0.0.1:``port`` with ``ha_test_condition{case="X"}``, set by the test."""

    def __init__(self) -> None:
        self.value = 0
        self.port = free_port()
        condition = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = ("# HELP ha_test_condition The condition the HA test alerts on.\n"
                        "# TYPE ha_test_condition gauge\n"
                        f'ha_test_condition{{case="X"}} {condition.value}\n').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per scrape would drown the test output

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Condition:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# --- Prometheus --------------------------------------------------------------------------------


class Prometheus:
    """One real Prometheus server: scrapes ``target`` every second, alerts to ``alertmanagers``."""

    def __init__(self, work: Path, replica: str, target: str,
                 alertmanagers: Sequence[str]) -> None:
        self.work = work
        self.replica = replica
        self.target = target
        self.alertmanagers = list(alertmanagers)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = find_prometheus()
        assert binary is not None
        self.work.mkdir(parents=True, exist_ok=True)
        rules = self.work / "rules.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "ha_test", "rules": [{
            "alert": ALERT, "expr": "ha_test_condition == 1", "for": "0s",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "the HA test condition holds"}}]}]}), encoding="utf-8")
        config = self.work / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "external_labels": {"replica": self.replica}},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "ha_test",
                                "static_configs": [{"targets": [self.target]}]}],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": self.alertmanagers}]}]},
        }), encoding="utf-8")
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        with open(self.work / "prometheus.log", "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        wait_ready(self.url + "/-/ready", self.proc, "prometheus", self.log)
        return self

    def log(self) -> str:
        path = self.work / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def active_alertmanagers(self) -> int:
        body = _json(self.url + "/api/v1/alertmanagers")
        return len(body["data"]["activeAlertmanagers"]) if body else 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --- HTTP helpers ------------------------------------------------------------------------------


def _json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` in a Prometheus text exposition (label-filtered)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _cluster_peers(am: Alertmanager) -> int:
    body = _json(am.url + "/api/v2/status")
    return len((body or {}).get("cluster", {}).get("peers") or [])


def _am_replicas(am: Alertmanager) -> set[str]:
    """The ``replica`` labels of the active alerts of ``am`` (which HA replicas reached it)."""
    alerts = _json(am.url + "/api/v2/alerts?active=true") or []
    return {a["labels"].get("replica", "") for a in alerts
            if a["labels"].get("alertname") == ALERT}


def _am_notifications(am: Alertmanager) -> int:
    """Webhook notifications ``am`` sent (one per receiver URL and flush)."""
    return int(_metric_sum(_text(am.url + "/metrics"), "alertmanager_notifications_total",
                           integration="webhook"))


def _accepted(receiver: Receiver) -> list[dict[str, Any]]:
    """The metadata of the receiver's "webhook notification accepted" log lines."""
    return [line["metadata"] for line in receiver.log_lines()
            if line.get("message") == "webhook notification accepted"]


def _pending(receiver: Receiver) -> int:
    body = _json(receiver.url + "/api/deliveries")
    return -1 if body is None else int(body["pending_alerts"])


# --- the test ---------------------------------------------------------------------------------


def test_ha_pair_and_alertmanager_cluster_deliver_each_change_once(tmp_path: Path) -> None:
    """Two Prometheus replicas x three Alertmanager peers (one SIGKILLed midway) x two receivers
    on one store give the handler exactly one firing and one resolved."""
    handler_dir = tmp_path / "handler"
    record_file = write_recorder(handler_dir)
    state_dir = tmp_path / "state"
    env = {"RECORD_FILE": str(record_file)}
    with contextlib.ExitStack() as stack:
        receivers = [Receiver(state_dir, handler_dir, env=env) for _ in range(2)]
        for receiver in receivers:
            stack.callback(receiver.stop)
            receiver.start()

        config = alertmanager_config([r.webhook for r in receivers], group_wait="1s",
                                     group_interval="1s", repeat_interval="1h")
        cluster_ports = [free_port() for _ in range(3)]
        ams = [Alertmanager(tmp_path / f"am{i}", config, cluster_port=port,
                            peers=[p for p in cluster_ports if p != port])
               for i, port in enumerate(cluster_ports)]
        for am in ams:
            stack.callback(am.stop)
            am.start()
        wait_for(lambda: all(_cluster_peers(am) == 3 for am in ams), DEADLINE,
                 "the three Alertmanagers to form one cluster", interval=0.2)

        condition = Condition().start()
        stack.callback(condition.stop)
        proms = [Prometheus(tmp_path / f"prom-{replica}", replica, condition.target,
                            [f"127.0.0.1:{am.port}" for am in ams]) for replica in ("a", "b")]
        for prom in proms:
            stack.callback(prom.stop)
            prom.start()
        wait_for(lambda: all(p.active_alertmanagers() == 3 for p in proms), DEADLINE,
                 "both Prometheus servers to know the three Alertmanagers", interval=0.2)

        # Fire.
        condition.value = 1
        started = time.monotonic()
        wait_for(lambda: deliveries_by_alert(record_file)[(ALERT, "firing")] >= 1, DEADLINE,
                 "the handler to see the firing", interval=0.05)
        fire_seconds = time.monotonic() - started
        # Both replicas' alerts reached the cluster (so the receivers got two alerts per change).
        wait_for(lambda: _am_replicas(ams[1]) == {"a", "b"}, DEADLINE,
                 "both replicas' alerts in Alertmanager", interval=0.2)
        # Peers notify in the order of their names (time-ordered ULIDs): ams[0], started first,
        # is the one that notifies; killing it makes the next peer take over the resolution.
        killed = ams[0]
        killed_sent = _am_notifications(killed)
        killed.kill()

        # Resolve.
        condition.value = 0
        started = time.monotonic()
        wait_for(lambda: deliveries_by_alert(record_file)[(ALERT, "resolved")] >= 1, DEADLINE,
                 "the handler to see the resolution", interval=0.05)
        resolve_seconds = time.monotonic() - started

        # Let every late notification (the other peers, the lagging replica) arrive and drain.
        quiet = _wait_quiet(receivers, record_file)

        counts = deliveries_by_alert(record_file)
        accepted = {r.port: _accepted(r) for r in receivers}
        duplicates_logged = sum(m.get("duplicates", 0) for ms in accepted.values() for m in ms)
        duplicates_metric = sum(
            _metric_sum(_text(r.url + "/metrics"), "vigil_webhook_duplicates_total")
            for r in receivers)
        firing = [r for r in records(record_file) if r["status"] == "firing"]
        figures = {
            "deliveries": {f"{name}/{status}": n for (name, status), n in counts.items()},
            "notifications_received": {f"receiver{i}": len(accepted[r.port])
                                       for i, r in enumerate(receivers)},
            "alerts_stored": {f"receiver{i}": sum(m.get("alerts", 0) for m in accepted[r.port])
                              for i, r in enumerate(receivers)},
            "duplicates_dropped": {f"receiver{i}": sum(m.get("duplicates", 0)
                                                       for m in accepted[r.port])
                                   for i, r in enumerate(receivers)},
            "duplicates_metric_total": duplicates_metric,
            "am_webhook_posts": {"killed_peer": killed_sent,
                                 **{f"peer{i}": _am_notifications(am)
                                    for i, am in enumerate(ams) if am is not killed}},
            "handler_pids": sorted({r["pid"] for r in records(record_file)}),
            "fire_seconds": round(fire_seconds, 2),
            "resolve_seconds": round(resolve_seconds, 2),
            "quiet_wait_seconds": round(quiet, 2),
        }
        print(figures)
        assert counts == Counter({(ALERT, "firing"): 1, (ALERT, "resolved"): 1}), figures
        # De-duplication really worked: redeliveries arrived and were dropped.
        assert duplicates_logged > 0, figures
        assert duplicates_metric == duplicates_logged, figures
        # The replica label reached the receivers (and the handler) untouched.
        assert firing[0]["labels"].get("replica") in ("a", "b"), firing
        assert firing[0]["labels"]["severity"] == "critical"


def _wait_quiet(receivers: Sequence[Receiver], record_file: Path) -> float:
    """Poll until both receivers' stores are empty and neither the record file nor their
    accepted notifications changed for ``QUIET`` seconds (bounded by ``DEADLINE``)."""
    started = time.monotonic()
    last: tuple[int, ...] = ()
    changed = started

    def settled() -> bool:
        nonlocal last, changed
        now = time.monotonic()
        seen = (len(records(record_file)), *(len(_accepted(r)) for r in receivers))
        if seen != last:
            last, changed = seen, now
        return all(_pending(r) == 0 for r in receivers) and now - changed >= QUIET

    wait_for(settled, DEADLINE, "the receivers to drain and go quiet", interval=0.2)
    return time.monotonic() - started
