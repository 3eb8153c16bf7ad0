"""vigil_exporter.delivery: at-least-once delivery from the store, retries, dead letters, stop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.testing import FakeClock
from vigil_exporter.delivery import DeliveryLoop, StoreCollector
from vigil_exporter.store import Incoming, identity, owner_id
from vigil_exporter.store.sqlite import SQLiteStore

WAIT = 10.0  # real seconds a test waits for a thread before failing (never slept)


def incoming(name: str = "A", status: str = "firing") -> Incoming:
    labels = {"alertname": name}
    payload = {"severity": "high", "component": "c", "message": f"{name} {status}",
               "metadata": {}, "source": "alertmanager", "status": status, "labels": labels,
               "annotations": {"summary": name}, "fingerprint": f"fp-{name}"}
    return Incoming(id=uuid.uuid4().hex, identity=identity(labels, ()), status=status,
                    starts_at="2026-01-01T00:00:00Z", ends_at="", payload=payload)


class CapturingLogger:
    """Records what the loop logs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        self.records.append(("INFO", message, dict(metadata or {})))

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        self.records.append(("WARNING", message, dict(metadata or {})))

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        self.records.append(("ERROR", message, dict(metadata or {})))

    def messages(self, level: str) -> list[str]:
        return [message for lvl, message, _ in self.records if lvl == level]


class WallClock:
    """A settable wall clock for retry and lease times."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    store: SQLiteStore
    manager: AlertManager
    registry: CollectorRegistry
    logger: CapturingLogger
    clock: WallClock
    settings: ExporterSettings
    loops: list[DeliveryLoop] = field(default_factory=list)

    def loop(self, **settings: Any) -> DeliveryLoop:
        config = ExporterSettings(**{"delivery_poll_interval": 0.01, **settings})
        loop = DeliveryLoop(self.store, self.manager, config, self.registry,
                            logger=self.logger, time_fn=self.clock)
        self.loops.append(loop)
        return loop

    def accept(self, *alerts: Incoming) -> None:
        assert self.store.accept(list(alerts), list(self.manager.handlers()),
                                 self.clock()).accepted

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A store in tmp_path, an AlertManager on a fresh registry, a settable wall clock."""
    registry = CollectorRegistry()
    settings = ExporterSettings()
    store = SQLiteStore(tmp_path / "state", settings)
    manager = AlertManager(registry=registry, clock=FakeClock())
    built = Rig(store, manager, registry, CapturingLogger(), WallClock(), settings)
    yield built
    for loop in built.loops:
        loop.stop(WAIT)
    manager.close()
    store.close()


def test_stored_alerts_reach_the_handler_with_their_stable_id(rig: Rig) -> None:
    """The handler gets a vigil Alert whose id is the store's; the store is empty after."""
    got: list[Alert] = []
    rig.manager.register_handler(got.append)
    alert = incoming("A")
    rig.accept(alert)
    loop = rig.loop()
    loop.start()
    assert loop.flush(WAIT)
    (delivered,) = got
    assert delivered.id == alert.id
    assert (delivered.source, delivered.status, delivered.labels) == (
        "alertmanager", "firing", {"alertname": "A"})
    assert rig.store.stats().pending_alerts == 0
    handler = next(iter(rig.manager.handlers()))
    assert rig.sample("vigil_webhook_deliveries_total", handler=handler,
                      outcome="delivered") == 1


def test_async_handlers_are_awaited(rig: Rig) -> None:
    """An async handler runs to completion on the thread's own loop."""
    got: list[str] = []

    async def handler(alert: Alert) -> None:
        await asyncio.sleep(0)
        got.append(alert.id)

    rig.manager.register_handler(handler)
    alert = incoming()
    rig.accept(alert)
    loop = rig.loop()
    loop.start()
    assert loop.flush(WAIT)
    assert got == [alert.id]


def test_a_raising_handler_is_retried_with_backoff_then_succeeds(rig: Rig) -> None:
    """A handler that raises gets the same alert again once the backoff has passed."""
    calls: list[str] = []

    def flaky(alert: Alert) -> None:
        calls.append(alert.id)
        if len(calls) == 1:
            raise ConnectionError("pager down")

    rig.manager.register_handler(flaky)
    alert = incoming()
    rig.accept(alert)
    loop = rig.loop(delivery_initial_delay=30, delivery_max_delay=60)
    loop.start()
    name = next(iter(rig.manager.handlers()))
    assert _wait_for(lambda: rig.sample("vigil_webhook_deliveries_total", handler=name,
                                        outcome="retried") == 1)
    assert not loop.flush(0.05)  # waiting for its retry time, which the clock has not reached
    assert calls == [alert.id]
    rig.clock.now += 61
    assert loop.flush(WAIT)
    assert calls == [alert.id, alert.id]
    (record,) = [r for r in rig.logger.records if r[0] == "WARNING"]
    assert record[2]["attempt"] == 1
    assert 30 <= record[2]["delay"] <= 60
    assert "ConnectionError: pager down" in record[2]["error"]


def test_a_handler_that_keeps_raising_is_dead_lettered_not_dropped(rig: Rig) -> None:
    """After delivery_max_attempts the delivery is kept as a dead letter, counted and logged."""

    def broken(alert: Alert) -> None:
        raise RuntimeError("always")

    rig.manager.register_handler(broken)
    alert = incoming()
    rig.accept(alert)
    loop = rig.loop(delivery_max_attempts=3, delivery_initial_delay=0, delivery_max_delay=0)
    loop.start()
    assert loop.flush(WAIT)
    name = next(iter(rig.manager.handlers()))
    assert rig.sample("vigil_webhook_deliveries_total", handler=name, outcome="retried") == 2
    assert rig.sample("vigil_webhook_deliveries_total", handler=name,
                      outcome="dead_lettered") == 1
    (dead,) = rig.store.dead_letters(10)
    assert (dead.alert_id, dead.attempts, dead.error) == (alert.id, 3, "RuntimeError: always")
    assert any("dead letter" in m for m in rig.logger.messages("ERROR"))
    assert loop.alive


def test_a_handler_calling_sys_exit_does_not_end_its_thread(rig: Rig) -> None:
    """SystemExit from a handler counts as a failure; the next alert is still delivered."""
    got: list[str] = []

    def exits(alert: Alert) -> None:
        if alert.labels["alertname"] == "exit":
            raise SystemExit(3)
        got.append(alert.labels["alertname"])

    rig.manager.register_handler(exits)
    rig.accept(incoming("exit"), incoming("after"))
    loop = rig.loop(delivery_max_attempts=1)
    loop.start()
    assert loop.flush(WAIT)
    assert got == ["after"]
    assert rig.store.stats().dead_letters == 1


def test_a_hung_handler_delays_only_itself(rig: Rig) -> None:
    """Each handler has its own thread: one stuck handler leaves the other served."""
    gate, entered = threading.Event(), threading.Event()
    fast: list[str] = []

    def stuck(alert: Alert) -> None:
        entered.set()
        assert gate.wait(WAIT)

    rig.manager.register_handler(stuck)
    rig.manager.register_handler(lambda alert: fast.append(alert.id))
    try:
        rig.accept(incoming("a"), incoming("b"))
        loop = rig.loop()
        loop.start()
        assert entered.wait(WAIT)
        assert _wait_for(lambda: len(fast) == 2)
        stats = rig.store.stats()
        assert sum(stats.running_by_handler.values()) == 1
    finally:
        gate.set()
    assert loop.flush(WAIT)


def test_handlers_registered_later_get_a_thread(rig: Rig) -> None:
    """A handler registered after the loop started receives the alerts accepted for it."""
    loop = rig.loop()
    loop.start()
    got: list[str] = []
    rig.manager.register_handler(got.append)
    alert = incoming()
    rig.accept(alert)
    loop.notify()
    assert _wait_for(lambda: len(got) == 1)


def test_stop_waits_for_the_running_call_and_leaves_the_rest(rig: Rig) -> None:
    """stop() lets the running call finish within its timeout; the others stay stored."""
    gate, entered = threading.Event(), threading.Event()
    got: list[str] = []

    def slow(alert: Alert) -> None:
        entered.set()
        assert gate.wait(WAIT)
        got.append(alert.labels["alertname"])

    rig.manager.register_handler(slow)
    rig.accept(incoming("a"), incoming("b"), incoming("c"))
    loop = rig.loop()
    loop.start()
    assert entered.wait(WAIT)
    threading.Timer(0.05, gate.set).start()
    report = loop.stop(WAIT)
    assert report.clean
    assert report.pending == 2
    assert got == ["a"]
    assert ("INFO", "alert delivery stopped",
            {"pending_alerts": 2, "running_calls": 0}) in rig.logger.records
    with pytest.raises(RuntimeError, match="cannot start again"):
        loop.start()
    again = rig.loop()
    again.start()
    assert again.flush(WAIT)
    assert got == ["a", "b", "c"]


def test_stop_past_its_timeout_reports_the_abandoned_call(rig: Rig) -> None:
    """A call still running at the deadline is reported; its alert stays in the store."""
    gate, entered = threading.Event(), threading.Event()
    rig.manager.register_handler(lambda alert: (entered.set(), gate.wait(WAIT)))
    rig.accept(incoming())
    loop = rig.loop()
    loop.start()
    try:
        assert entered.wait(WAIT)
        report = loop.stop(0.05)
        assert (report.running, report.pending) == (1, 1)
        assert any("abandoned" in str(r[2].get("note")) for r in rig.logger.records)
    finally:
        gate.set()


def test_deliveries_of_a_dead_process_are_handed_out_at_start(rig: Rig) -> None:
    """A delivery claimed by a process that died is delivered by the next loop at once."""
    got: list[str] = []
    rig.manager.register_handler(got.append)
    alert = incoming()
    rig.accept(alert)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = owner_id().rsplit(":", 2)[0] + f":{int(child.stdout)}:1.000"
    name = next(iter(rig.manager.handlers()))
    assert rig.store.claim(name, dead, rig.clock(), 3600) is not None
    loop = rig.loop()
    loop.start()
    assert loop.flush(WAIT)
    assert [a.id for a in got] == [alert.id]
    assert any("died" in m for m in rig.logger.messages("WARNING"))


def test_a_failing_store_is_counted_and_survived(rig: Rig) -> None:
    """Store errors in the loop are counted and logged; delivery resumes when it recovers."""
    got: list[str] = []
    rig.manager.register_handler(got.append)
    real_claim = rig.store.claim
    failures = iter([True, True])

    def claim(*args: Any) -> Any:
        if next(failures, False):
            raise OSError("disk I/O error")
        return real_claim(*args)

    rig.store.claim = claim  # type: ignore[method-assign]
    rig.accept(incoming())
    loop = rig.loop()
    loop.start()
    assert _wait_for(lambda: len(got) == 1)
    assert rig.sample("vigil_webhook_store_errors_total", exception="OSError") == 2
    assert len(rig.logger.messages("ERROR")) == 1  # rate-limited


def test_the_collector_reports_what_the_store_holds(rig: Rig) -> None:
    """vigil_webhook_store_alerts/bytes come from the store at scrape time."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(rig.store))
    rig.manager.register_handler(lambda alert: None)
    alert = incoming()
    rig.accept(alert)
    assert registry.get_sample_value("vigil_webhook_store_alerts", {"state": "pending"}) == 1
    assert registry.get_sample_value("vigil_webhook_store_bytes") == len(alert.encoded())


def _wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until true or ``timeout`` real seconds passed (threads at work)."""
    event = threading.Event()
    deadline = timeout
    step = 0.005
    while deadline > 0:
        if condition():
            return True
        event.wait(step)
        deadline -= step
    return condition()


def test_deliveries_for_unknown_handlers_are_reported_at_start(rig: Rig) -> None:
    """A store holding deliveries for a handler this process lacks says so in a warning."""
    rig.store.accept([incoming()], ["gone.handler"], rig.clock())
    rig.loop().start()
    (record,) = [r for r in rig.logger.records if r[0] == "WARNING"]
    assert record[2] == {"deliveries_by_handler": {"gone.handler": 1}}
