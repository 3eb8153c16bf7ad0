"""A 2xx is a promise: alerts acknowledged by ``vigil serve`` survive SIGKILL and SIGTERM.

A real Alertmanager posts a flood of notifications (one alert each) to a real ``vigil serve``
process whose handler is slow; the receiver is killed while most acknowledged alerts still wait
for the handler, then started again on the same state folder and port. Alertmanager resends
only what it did not get a 2xx for; what it did get one for must come out of the store.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.durability.support import (
    Alertmanager,
    Receiver,
    accepted_alertnames,
    alertmanager_config,
    deliveries_by_alert,
    records,
    wait_for,
    write_recorder,
)
from tests.integration.conftest import requires_stack

pytestmark = [pytest.mark.integration, requires_stack, pytest.mark.timeout(300)]

FLOOD = 40  # notifications (group_by alertname: one alert each)
DELAY = "0.15"  # seconds the handler takes per alert
DEADLINE = 120.0


def _flood(alertmanager: Alertmanager, prefix: str) -> list[str]:
    names = [f"{prefix}{i:02d}" for i in range(FLOOD)]
    alertmanager.post_alerts([{"labels": {"alertname": name, "severity": "critical"},
                               "annotations": {"summary": f"{name} fired"}} for name in names])
    return names


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_acknowledged_alerts_survive_the_receiver_being_killed(tmp_path: Path,
                                                               sig: int) -> None:
    """Every alert the receiver answered 2xx for reaches the handler after a restart on the
    same state folder; only the call running at a SIGKILL may repeat, none at a SIGTERM (which
    also exits 0 and logs what it left)."""
    prefix = "Crash" if sig == signal.SIGKILL else "Term"
    handler_dir = tmp_path / "handler"
    record_file = write_recorder(handler_dir)
    env = {"HANDLER_DELAY": DELAY, "RECORD_FILE": str(record_file)}
    first = Receiver(tmp_path / "state", handler_dir, env=env)
    with contextlib.ExitStack() as stack:
        stack.callback(first.stop)
        first.start()
        am = Alertmanager(tmp_path / "am", alertmanager_config([first.webhook]))
        stack.callback(am.stop)
        am.start()
        names = _flood(am, prefix)
        # Kill once the handler is a few alerts in and most acknowledged ones still wait.
        wait_for(lambda: len(records(record_file)) >= 5, DEADLINE, "the first deliveries")
        wait_for(lambda: len(accepted_alertnames(first)) >= FLOOD // 2, DEADLINE,
                 "half the flood to be acknowledged")
        first.signal(sig)
        code = first.wait(30)
        acknowledged = accepted_alertnames(first)
        handled_before = {r["alertname"] for r in records(record_file)}
        waiting = acknowledged - handled_before
        assert len(waiting) >= 5, (acknowledged, handled_before)  # the store path is exercised
        if sig == signal.SIGTERM:
            assert code == 0, first.log()[-2000:]
            (stopped,) = [line for line in first.log_lines()
                          if line.get("message") == "alert delivery stopped"]
            assert stopped["metadata"]["pending_alerts"] >= len(waiting) - 1
            assert stopped["metadata"]["running_calls"] == 0
        else:
            assert code == -signal.SIGKILL

        second = Receiver(first.state_dir, handler_dir, port=first.port, env=env)
        stack.callback(second.stop)
        started = time.monotonic()
        second.start()
        wait_for(lambda: {r["alertname"] for r in records(record_file)} >= set(names),
                 DEADLINE, "every alert to reach the handler after the restart")
        # Nothing more may come: let the store drain and Alertmanager's retries settle.
        wait_for(lambda: _drained(second), DEADLINE, "the store to drain")
        counts = deliveries_by_alert(record_file)
        repeated = {name: n for (name, status), n in counts.items() if n > 1}
        ids = [r["id"] for r in records(record_file)]
        print({"signal": signal.Signals(sig).name, "sent": FLOOD,
               "acknowledged_before": len(acknowledged), "waiting_in_store": len(waiting),
               "handled": len(ids), "repeated": repeated,
               "resume_seconds": round(time.monotonic() - started, 2)})
        assert set(counts) == {(name, "firing") for name in names}
        if sig == signal.SIGKILL:
            assert len(repeated) <= 1, repeated  # the call running at the kill
            assert all(n == 2 for n in repeated.values())
            # A repeat is the same delivery again (same stable id), not a second copy.
            assert len(set(ids)) == FLOOD
        else:
            assert repeated == {}


def _drained(receiver: Receiver) -> bool:
    with urllib.request.urlopen(receiver.url + "/api/deliveries", timeout=5) as response:
        body = json.load(response)
    return body["pending_alerts"] == 0
