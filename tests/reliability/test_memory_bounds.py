"""What one request may hold: /api answers within exporter.api_max_bytes, capped webhook fields.

Over a real socket: the buffers are filled with the largest entries they take, then read back
with the largest ``limit``; the answer must stay within the byte budget and the process must not
grow by more than the budget's order while building it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from tests.reliability.conftest import WAIT, WEBHOOK, LiveExporter
from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.webhook import MAX_FINGERPRINT_LENGTH, MAX_TIME_LENGTH

BUDGET = 1_048_576  # exporter.api_max_bytes for these tests


def _alert(**overrides: Any) -> dict[str, Any]:
    alert = {"status": "firing", "labels": {"alertname": "Big"}, "annotations": {},
             "startsAt": "2026-12-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "fingerprint": "f"}
    alert.update(overrides)
    return alert


def test_api_lists_stay_within_the_byte_budget(exporter: Callable[..., LiveExporter]) -> None:
    """/api/alerts and /api/logs over buffers of ~16 MB answer at most api_max_bytes, say
    they cut (Vigil-Truncated), and building the answer grows RSS by far less than the
    buffers hold."""
    live = exporter(api_max_bytes=BUDGET)
    big = "x" * 200_000
    for i in range(80):  # 16 MB of alerts: the buffer's byte budget keeps ~16 MiB of them
        live.manager.send_alert("high", "Bounds", f"alert {i}", annotations={"body": big})
    logger = StructuredLogger("bounds", registry=live.registry)
    for i in range(200):
        logger.info(f"line {i}", metadata={"body": "y" * 15_000})  # near the line cap
    process = psutil.Process()
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        before = process.memory_info().rss
        for path in ("/api/alerts?limit=1000", "/api/logs?limit=1000"):
            answer = client.get(path)
            assert answer.status_code == 200
            assert len(answer.content) <= BUDGET
            assert answer.headers["vigil-truncated"] == "true"
            entries = json.loads(answer.content)
            assert len(entries) == int(answer.headers["vigil-entries"]) > 0
        grown = process.memory_info().rss - before
    print({"alerts_kept": len(live.manager.get_recent_alerts(1000)),
           "rss_growth_mb": round(grown / 2**20, 1)})
    assert grown < 8 * BUDGET


def test_a_small_answer_is_whole_and_says_so(exporter: Callable[..., LiveExporter]) -> None:
    """Below the budget every entry is there and no truncation is claimed."""
    live = exporter(api_max_bytes=BUDGET)
    live.manager.send_alert("low", "Bounds", "small")
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        answer = client.get("/api/alerts")
    assert "vigil-truncated" not in answer.headers
    assert answer.headers["vigil-entries"] == "1"
    assert [a["message"] for a in answer.json()] == ["small"]


def test_fingerprints_and_times_are_capped(exporter: Callable[..., LiveExporter]) -> None:
    """A fingerprint or timestamp longer than Alertmanager ever sends is a 422 naming it:
    the store keeps them per alert identity, so they must not be 64 KiB each."""
    live = exporter()
    cases = {
        "fingerprint": _alert(fingerprint="f" * (MAX_FINGERPRINT_LENGTH + 1)),
        "startsAt": _alert(startsAt="2" * (MAX_TIME_LENGTH + 1)),
        "endsAt": _alert(endsAt="0" * (MAX_TIME_LENGTH + 1)),
    }
    with httpx.Client(base_url=live.url, timeout=WAIT,
                      headers={"Content-Type": "application/json", "Host": "vigil"}) as client:
        for field, alert in cases.items():
            answer = client.post(WEBHOOK, content=json.dumps({"version": "4",
                                                              "alerts": [alert]}))
            assert answer.status_code == 422, answer.text
            assert f"alerts[0].{field}" in answer.json()["error"]
        ok = client.post(WEBHOOK, content=json.dumps({"version": "4", "alerts": [_alert(
            fingerprint="f" * MAX_FINGERPRINT_LENGTH)]}))
        assert ok.status_code == 200, ok.text
    assert len(live.delivered()) == 1
