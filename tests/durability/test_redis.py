"""Receivers on several hosts: two ``vigil serve`` processes sharing one real Redis store.

A real Alertmanager posts every notification to both receivers (two webhook URLs, as two hosts
behind one name would each get some); each alert must reach the handler exactly once, whichever
receiver took it. Then one receiver is SIGKILLed mid-flood: the other goes on, and what the dead
one had acknowledged is delivered by the survivor (here on the same host it sees the process is
gone; on another host the short lease set here runs out).
"""

from __future__ import annotations

import contextlib
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.durability.support import (
    Alertmanager,
    Receiver,
    alertmanager_config,
    deliveries_by_alert,
    records,
    wait_for,
    write_recorder,
)
from tests.integration.conftest import requires_stack
from tests.redis_server import RedisServer, redis_available

pytestmark = [pytest.mark.integration, requires_stack, pytest.mark.timeout(300),
              pytest.mark.skipif(not redis_available(),
                                 reason="redis-server is not installed (./run test installs it)")]

FLOOD = 30
DEADLINE = 120.0


def test_two_receivers_on_one_redis_handle_each_alert_once(tmp_path: Path) -> None:
    """Both receivers get every notification; each alert is handled once across them, also
    after one of them is killed mid-flood (the survivor takes its deliveries over)."""
    handler_dir = tmp_path / "handler"
    record_file = write_recorder(handler_dir)
    with contextlib.ExitStack() as stack:
        redis_server = RedisServer.start(tmp_path / "redis")
        stack.callback(redis_server.stop)
        env = {"HANDLER_DELAY": "0.1", "RECORD_FILE": str(record_file),
               "VIGIL_EXPORTER_STORE_URL": redis_server.url,
               # Another host cannot tell whether a receiver died: only the lease can.
               "VIGIL_EXPORTER_LEASE_SECONDS": "3"}
        receivers = [Receiver(tmp_path / f"state-{i}", handler_dir, env=env) for i in range(2)]
        for receiver in receivers:
            stack.callback(receiver.stop)
            receiver.start()
        am = Alertmanager(tmp_path / "am", alertmanager_config([r.webhook for r in receivers]))
        stack.callback(am.stop)
        am.start()
        names = [f"Shared{i:02d}" for i in range(FLOOD)]
        am.post_alerts([{"labels": {"alertname": name, "severity": "critical"}}
                        for name in names])
        wait_for(lambda: len(records(record_file)) >= 5, DEADLINE, "the first deliveries")
        victim = receivers[0]
        assert victim.proc is not None
        victim_pid = victim.proc.pid
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        wait_for(lambda: {r["alertname"] for r in records(record_file)} >= set(names),
                 DEADLINE, "every alert to be handled by the surviving receiver")
        counts = deliveries_by_alert(record_file)
        by_pid = Counter(r["pid"] for r in records(record_file))
        print({"alerts": FLOOD, "handled": sum(counts.values()),
               "by_receiver": {("killed" if pid == victim_pid else "survivor"): n
                               for pid, n in by_pid.items()},
               "repeated": {k: n for k, n in counts.items() if n > 1}})
        assert set(counts) == {(name, "firing") for name in names}
        repeated = [n for n in counts.values() if n > 1]
        assert len(repeated) <= 1, counts  # the call running at the kill, at most
        assert all(n == 2 for n in repeated), counts
        assert by_pid.get(victim_pid, 0) >= 1  # the killed receiver had really been working
