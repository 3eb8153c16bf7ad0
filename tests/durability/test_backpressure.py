"""A slow handler: the store fills, the webhook answers 503, nothing is lost, memory is bounded.

A real ``vigil serve`` with a slow handler and ``store_max_alerts`` of 20 takes a flood of
notifications with ~60 KB annotations, posted by client threads that retry every 503 the way
Alertmanager does. Every alert must reach the handler exactly once, and the receiver's memory
must not follow the flood.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.durability.support import (
    TOKEN,
    Receiver,
    deliveries_by_alert,
    wait_for,
    write_recorder,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NOTIFICATIONS = 1000  # ~57 MB of bodies: more than RSS_BOUND
CLIENTS = 6
ANNOTATION = "x" * 60_000
MAX_ALERTS = 20
# Bytes the receiver may grow by over the whole flood: the recent-alerts buffer's 16 MiB
# (monitoring.alerts.buffer_max_bytes, which /api/alerts reads), the store's pages, and the
# parsing of a few 60 KB bodies at once in the thread pool.
RSS_BOUND = 45 * 2**20


def _body(name: str) -> bytes:
    return json.dumps({
        "version": "4", "status": "firing", "receiver": "vigil", "groupKey": name,
        "alerts": [{"status": "firing", "labels": {"alertname": name},
                    "annotations": {"summary": name, "description": ANNOTATION},
                    "startsAt": "2026-12-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": name}],
    }).encode()


def test_a_slow_handler_gets_503s_not_losses(tmp_path: Path) -> None:
    """With the store full the webhook answers 503 + Retry-After; retried, every alert is
    handled exactly once, and the receiver's RSS grows by less than RSS_BOUND."""
    handler_dir = tmp_path / "handler"
    record_file = write_recorder(handler_dir)
    receiver = Receiver(tmp_path / "state", handler_dir, env={
        "HANDLER_DELAY": "0.005", "RECORD_FILE": str(record_file),
        "VIGIL_EXPORTER_STORE_MAX_ALERTS": str(MAX_ALERTS)})
    names = [f"Slow{i:03d}" for i in range(NOTIFICATIONS)]
    codes: dict[int, int] = {}
    retry_after: set[str] = set()
    lock = threading.Lock()
    peak = [0]
    try:
        receiver.start()
        assert receiver.proc is not None
        process = psutil.Process(receiver.proc.pid)
        baseline = process.memory_info().rss
        todo = list(names)

        def client() -> None:
            with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}",
                                                   "Content-Type": "application/json"}) as http:
                while True:
                    with lock:
                        if not todo:
                            return
                        name = todo.pop()
                    while True:
                        answer = http.post(receiver.webhook, content=_body(name))
                        with lock:
                            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
                        if answer.status_code == 200:
                            break
                        assert answer.status_code == 503, answer.text
                        retry_after.add(answer.headers.get("retry-after", ""))
                        time.sleep(0.01)  # a client's backoff (Alertmanager's is longer)

        def sample() -> None:
            while any(t.is_alive() for t in threads):
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.05)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        sampler = threading.Thread(target=sample)
        sampler.start()
        for thread in threads:
            thread.join(240)
        sampler.join(10)
        wait_for(lambda: sum(deliveries_by_alert(record_file).values()) >= NOTIFICATIONS,
                 120, "every alert to reach the handler")
        counts = deliveries_by_alert(record_file)
        growth = peak[0] - baseline
        print({"notifications": NOTIFICATIONS, "answers": codes, "handled": sum(counts.values()),
               "rss_baseline_mb": round(baseline / 2**20, 1),
               "rss_growth_mb": round(growth / 2**20, 1),
               "sent_mb": round(NOTIFICATIONS * len(_body("x")) / 2**20, 1)})
        assert codes.get(503, 0) > 0, codes  # back-pressure really happened
        assert retry_after == {"5"}
        assert counts == {(name, "firing"): 1 for name in names}
        assert growth < RSS_BOUND < NOTIFICATIONS * len(_body("x")), growth
    finally:
        receiver.stop()
