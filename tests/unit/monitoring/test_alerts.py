"""vigil.monitoring.alerts: the seed's AlertManager API, de-duplication and isolated handlers."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vigil import config as vigil_config
from vigil.config import ConfigError, load_config
from vigil.monitoring.alerts import Alert, AlertManager, AlertSeverity
from vigil.testing import FakeClock

WAIT = 5.0  # real seconds a test waits for worker threads before failing (never slept)


class CapturingLogger:
    """Records what the manager logs, so tests can assert on it."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any], Any]] = []

    def debug(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        self.records.append(("DEBUG", message, dict(metadata or {}), exc_info))

    def info(self, message: str, metadata: Mapping[str, Any] | None = None, *,
             exc_info: Any = None) -> None:
        self.records.append(("INFO", message, dict(metadata or {}), exc_info))

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None, *,
                exc_info: Any = None) -> None:
        self.records.append(("WARNING", message, dict(metadata or {}), exc_info))

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        self.records.append(("ERROR", message, dict(metadata or {}), exc_info))

    def matching(self, level: str, text: str) -> list[tuple[str, str, dict[str, Any], Any]]:
        return [r for r in self.records if r[0] == level and text in r[1]]


@dataclasses.dataclass
class Harness:
    manager: AlertManager
    registry: CollectorRegistry
    clock: FakeClock
    logger: CapturingLogger

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    """Builds managers on a fresh registry, fake clock and capturing logger; closes them after."""
    built: list[AlertManager] = []

    def build(**settings: Any) -> Harness:
        registry, clock, logger = CollectorRegistry(), FakeClock(), CapturingLogger()
        options: dict[str, Any] = {"buffer_size": 100, "dedup_window": 60.0,
                                   "handler_timeout": 10.0, "queue_size": 100}
        options.update(settings)
        manager = AlertManager(clock=clock, registry=registry, logger=logger, **options)
        built.append(manager)
        return Harness(manager, registry, clock, logger)

    yield build
    for manager in built:
        manager.close()


def collector() -> tuple[list[Alert], Callable[[Alert], None]]:
    received: list[Alert] = []
    return received, received.append


def signalling() -> tuple[queue.Queue[Alert], Callable[[Alert], None]]:
    """A handler that puts each alert on a queue the test can wait on."""
    received: queue.Queue[Alert] = queue.Queue()
    return received, received.put


def blocking_handler() -> tuple[Callable[[Alert], None], threading.Event, threading.Event,
                                list[Alert]]:
    """A handler that signals ``started`` and then blocks until ``release`` is set."""
    started, release = threading.Event(), threading.Event()
    received: list[Alert] = []

    def blocked(alert: Alert) -> None:
        received.append(alert)
        started.set()
        release.wait(timeout=30)

    return blocked, started, release, received


# --- the seed's API -----------------------------------------------------------------------


def test_seed_example_runs_on_the_module_singleton(capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's Alert Management example runs unchanged against ``alert_manager``."""
    from vigil.monitoring.alerts import alert_manager

    alert_manager.send_alert(
        severity="high",
        component="FileProcessor",
        message="File processing failed",
        metadata={"file_path": "/path/to/file"}
    )

    def my_alert_handler(alert: Alert) -> None:
        print(f"Alert: {alert['message']}")

    alert_manager.register_handler(my_alert_handler)
    try:
        alert_manager.send_alert(severity="medium", component="FileProcessor",
                                 message="Seed example second alert")
        alerts = alert_manager.get_recent_alerts(count=50)
        assert alert_manager.flush(timeout=WAIT)
    finally:
        alert_manager.unregister_handler(my_alert_handler)
    assert "Alert: Seed example second alert" in capsys.readouterr().out
    assert [a["message"] for a in alerts[:2]] == ["Seed example second alert",
                                                   "File processing failed"]
    assert alerts[1]["metadata"] == {"file_path": "/path/to/file"}


def test_alert_reads_like_a_dict_and_serialises_to_json(make: Callable[..., Harness]) -> None:
    """An Alert is a Mapping with attribute access, read-only, and dict(alert) is valid JSON."""
    h = make()
    alert = h.manager.send_alert("high", "FileProcessor", "failed",
                                 {"file_path": Path("/tmp/x"), "sizes": (1, 2), "n": 3},
                                 labels={"env": "prod"}, annotations={"summary": "it broke"})
    assert isinstance(alert, Mapping)
    assert alert["message"] == alert.message == "failed"
    assert alert["severity"] == "high"
    assert alert["timestamp"] == "2026-01-01T00:00:00.000Z"  # FakeClock's wall time
    assert alert.metadata == {"file_path": "/tmp/x", "sizes": [1, 2], "n": 3}
    assert (alert.source, alert.status, alert.count) == ("vigil", "firing", 1)
    assert set(alert) == {"id", "timestamp", "severity", "component", "message", "metadata",
                          "fingerprint", "source", "status", "labels", "annotations", "count"}
    assert json.loads(json.dumps(dict(alert))) == dict(alert)
    assert len(alert.fingerprint) == 16
    int(alert.fingerprint, 16)
    with pytest.raises(KeyError):
        alert["nope"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        alert.message = "changed"  # type: ignore[misc]
    other = h.manager.send_alert("high", "FileProcessor", "another")
    assert other.id != alert.id


def test_invalid_severity_raises_value_error_naming_allowed_values(
        make: Callable[..., Harness]) -> None:
    """An unknown severity is a ValueError naming it and the four allowed; nothing is recorded."""
    h = make()
    with pytest.raises(ValueError, match=r"'urgent'.*low, medium, high, critical"):
        h.manager.send_alert("urgent", "X", "m")
    with pytest.raises(ValueError, match="status"):
        h.manager.send_alert("low", "X", "m", status="pending")
    assert h.manager.get_recent_alerts() == []


@pytest.mark.parametrize("given", ["HIGH", "High", " high ", AlertSeverity.HIGH])
def test_severity_is_case_insensitive(make: Callable[..., Harness],
                                      given: str | AlertSeverity) -> None:
    """Severity accepts the enum or any casing of its name and is stored as the lower-case str."""
    h = make()
    alert = h.manager.send_alert(given, "X", "m")
    assert alert.severity == "high"
    assert type(alert["severity"]) is str
    assert AlertSeverity("CRITICAL") is AlertSeverity.CRITICAL


def test_fingerprint_covers_identity_and_labels_not_metadata(
        make: Callable[..., Harness]) -> None:
    """The fingerprint is stable across managers, ignores metadata and label order."""
    first, second = make(dedup_window=0), make(dedup_window=0)
    base = first.manager.send_alert("low", "X", "m", {"a": 1}, labels={"a": "1", "b": "2"})
    same = second.manager.send_alert("LOW", "X", "m", {"a": 2}, labels={"b": "2", "a": "1"})
    assert base.fingerprint == same.fingerprint
    for changed in (second.manager.send_alert("low", "X", "m", labels={"a": "9", "b": "2"}),
                    second.manager.send_alert("low", "X", "m", status="resolved",
                                              labels={"a": "1", "b": "2"}),
                    second.manager.send_alert("low", "X", "m", source="alertmanager",
                                              labels={"a": "1", "b": "2"})):
        assert changed.fingerprint != base.fingerprint
    supplied = second.manager.send_alert("low", "X", "m", fingerprint="6cca1d5ee5a27a61")
    assert supplied.fingerprint == "6cca1d5ee5a27a61"


# --- handlers -----------------------------------------------------------------------------


def test_sync_and_async_handlers_both_receive_each_alert(make: Callable[..., Harness]) -> None:
    """A plain function and an ``async def`` handler are both called with every alert."""
    h = make()
    sync_seen, sync_handler = collector()
    async_seen: list[Alert] = []

    async def async_handler(alert: Alert) -> None:
        async_seen.append(alert)

    h.manager.register_handler(sync_handler)
    assert h.manager.register_handler(async_handler) is async_handler
    sent = [h.manager.send_alert("low", "X", f"m{i}") for i in range(3)]
    assert h.manager.flush(timeout=WAIT)
    assert sync_seen == sent
    assert async_seen == sent
    assert h.sample("vigil_alerts_total", severity="low", component="X") == 3


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_raising_handler_is_isolated_counted_and_logged(make: Callable[..., Harness],
                                                        kind: str) -> None:
    """A handler that raises is logged with its exception and counted; the others still run."""
    h = make()
    seen, good = collector()

    def broken_sync(alert: Alert) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(alert: Alert) -> None:
        raise RuntimeError("handler bug")

    broken = broken_sync if kind == "sync" else broken_async
    h.manager.register_handler(broken)
    h.manager.register_handler(good)
    h.manager.send_alert("high", "X", "one")
    h.manager.send_alert("high", "X", "two")
    assert h.manager.flush(timeout=WAIT)
    assert [a.message for a in seen] == ["one", "two"]
    assert h.sample("vigil_alert_handler_failures_total", handler=broken.__qualname__,
                    reason="error") == 2
    errors = h.logger.matching("ERROR", "raised")
    assert len(errors) == 2
    assert errors[0][2]["handler"] == broken.__qualname__
    assert isinstance(errors[0][3], RuntimeError)


@pytest.mark.parametrize("noticed_by", ["dispatch", "flush"])
def test_hung_handler_is_reported_once_and_others_still_run(make: Callable[..., Harness],
                                                            noticed_by: str) -> None:
    """A handler running past handler_timeout (fake clock) is logged and counted once."""
    h = make(handler_timeout=10.0)
    blocked, started, release, blocked_seen = blocking_handler()
    good_seen, good = signalling()
    h.manager.register_handler(blocked)
    h.manager.register_handler(good)
    name = blocked.__qualname__
    try:
        h.manager.send_alert("critical", "X", "first")
        assert started.wait(WAIT)
        assert good_seen.get(timeout=WAIT).message == "first"
        h.clock.advance(10.5)
        if noticed_by == "dispatch":
            h.manager.send_alert("critical", "X", "second")
            assert good_seen.get(timeout=WAIT).message == "second"
        else:
            assert not h.manager.flush(timeout=0)
        assert h.sample("vigil_alert_handler_failures_total", handler=name, reason="hung") == 1
        hung_logs = h.logger.matching("WARNING", "hung")
        assert [r[2]["handler"] for r in hung_logs] == [name]
        assert hung_logs[0][2]["running_seconds"] == 10.5
        # Still stuck in the same call: neither another dispatch nor flush counts it again.
        h.manager.send_alert("critical", "X", "third")
        assert good_seen.get(timeout=WAIT).message == "third"
        assert not h.manager.flush(timeout=0)
        assert h.sample("vigil_alert_handler_failures_total", handler=name, reason="hung") == 1
    finally:
        release.set()
    assert h.manager.flush(timeout=WAIT)
    expected = ["first", "second", "third"] if noticed_by == "dispatch" else ["first", "third"]
    assert [a.message for a in blocked_seen] == expected


def test_full_queue_drops_for_that_handler_only(make: Callable[..., Harness]) -> None:
    """Past queue_size waiting alerts, new ones are dropped for the slow handler only."""
    h = make(queue_size=1)
    blocked, started, release, blocked_seen = blocking_handler()
    fast_seen, fast = signalling()
    h.manager.register_handler(blocked)
    h.manager.register_handler(fast)
    messages = ["running", "queued", "dropped-1", "dropped-2"]
    try:
        for message in messages:
            h.manager.send_alert("medium", "X", message)
            # Each alert reaches the fast handler before the next is sent, so only the
            # blocked handler's queue can be full.
            assert fast_seen.get(timeout=WAIT).message == message
            assert started.wait(WAIT)
    finally:
        release.set()
    assert h.manager.flush(timeout=WAIT)
    assert [a.message for a in blocked_seen] == ["running", "queued"]
    assert h.sample("vigil_alert_handler_failures_total", handler=blocked.__qualname__,
                    reason="dropped") == 2
    assert h.sample("vigil_alert_handler_failures_total", handler="Queue.put",
                    reason="dropped") == 0
    assert len(h.logger.matching("WARNING", "queue full")) == 1  # one line per run of drops
    h.manager.send_alert("medium", "X", "after")
    assert h.manager.flush(timeout=WAIT)
    assert blocked_seen[-1].message == "after"


def test_unregistered_handler_is_not_called_again(make: Callable[..., Harness]) -> None:
    """After unregister_handler the handler gets no alerts and its worker thread ends."""
    h = make()
    seen, handler = collector()
    h.manager.register_handler(handler)
    h.manager.register_handler(handler)  # a second registration changes nothing
    h.manager.send_alert("low", "X", "before")
    assert h.manager.flush(timeout=WAIT)
    workers = [t for t in threading.enumerate() if t.name.startswith("vigil-alert-handler")
               and handler.__qualname__ in t.name]
    assert h.manager.unregister_handler(handler)
    assert not h.manager.unregister_handler(handler)
    h.manager.send_alert("low", "X", "after")
    assert h.manager.flush(timeout=WAIT)
    assert [a.message for a in seen] == ["before"]
    for thread in workers:
        thread.join(WAIT)
        assert not thread.is_alive()


# --- de-duplication -----------------------------------------------------------------------


def test_repeat_within_dedup_window_is_counted_then_redispatched_after(
        make: Callable[..., Harness]) -> None:
    """A repeat inside the window grows the stored alert's count; after it, it is dispatched."""
    h = make(dedup_window=60.0)
    seen, handler = collector()
    h.manager.register_handler(handler)
    first = h.manager.send_alert("high", "Db", "down")
    h.clock.advance(59.9)
    repeat = h.manager.send_alert("HIGH", "Db", "down", {"attempt": 2})
    assert repeat is first
    assert first.count == 2
    h.clock.advance(0.1)  # 60 s after the dispatch: the window is over
    again = h.manager.send_alert("high", "Db", "down")
    assert again is not first
    assert again.count == 1
    assert h.manager.flush(timeout=WAIT)
    assert seen == [first, again]
    assert h.sample("vigil_alerts_total", severity="high", component="Db") == 2
    assert h.sample("vigil_alerts_deduplicated_total", severity="high", component="Db") == 1
    assert h.manager.get_recent_alerts() == [again, first]


def test_status_change_under_a_supplied_fingerprint_is_dispatched(
        make: Callable[..., Harness]) -> None:
    """Alertmanager's fingerprint is the same when firing and resolved: both are dispatched."""
    h = make(dedup_window=60.0)
    seen, handler = collector()
    h.manager.register_handler(handler)
    common: dict[str, Any] = {"source": "alertmanager", "fingerprint": "6cca1d5ee5a27a61",
                              "labels": {"alertname": "DemoErrors"}}
    firing = h.manager.send_alert("critical", "x", "component x is erroring", **common)
    resolved = h.manager.send_alert("critical", "x", "component x is erroring",
                                    status="resolved", **common)
    redelivered = h.manager.send_alert("critical", "x", "component x is erroring",
                                       status="resolved", **common)
    assert redelivered is resolved
    assert h.manager.flush(timeout=WAIT)
    assert [(a.status, a.source) for a in seen] == [("firing", "alertmanager"),
                                                    ("resolved", "alertmanager")]
    assert firing.count == 1
    assert resolved.count == 2


# --- reading ------------------------------------------------------------------------------


def test_buffer_keeps_only_the_newest_alerts(make: Callable[..., Harness]) -> None:
    """The buffer holds buffer_size alerts, newest first; count limits the answer."""
    h = make(buffer_size=3)
    for i in range(5):
        h.manager.send_alert("low", "X", f"m{i}")
    assert [a.message for a in h.manager.get_recent_alerts()] == ["m4", "m3", "m2"]
    assert [a.message for a in h.manager.get_recent_alerts(count=2)] == ["m4", "m3"]
    assert h.manager.get_recent_alerts(count=0) == []
    with pytest.raises(ValueError, match="count"):
        h.manager.get_recent_alerts(count=-1)


def test_get_recent_alerts_filters_by_source_status_and_severity(
        make: Callable[..., Harness]) -> None:
    """source, status and severity filters combine, and apply before count."""
    h = make()
    h.manager.send_alert("low", "A", "app low")
    h.manager.send_alert("critical", "B", "am firing", source="alertmanager")
    h.manager.send_alert("critical", "B", "am resolved", source="alertmanager",
                         status="resolved")
    h.manager.send_alert("high", "A", "app high")

    def messages(**filters: Any) -> list[str]:
        return [a.message for a in h.manager.get_recent_alerts(**filters)]

    assert messages(source="alertmanager") == ["am resolved", "am firing"]
    assert messages(status="resolved") == ["am resolved"]
    assert messages(severity="CRITICAL", status="firing") == ["am firing"]
    assert messages(source="vigil", count=1) == ["app high"]
    assert messages(severity=AlertSeverity.LOW) == ["app low"]
    with pytest.raises(ValueError, match="severity"):
        messages(severity="urgent")


# --- lifecycle, concurrency, configuration ------------------------------------------------


def test_close_leaves_no_worker_threads_alive(make: Callable[..., Harness]) -> None:
    """close() ends every worker thread, and the closed manager refuses new work."""
    before = set(threading.enumerate())
    h = make()
    _, sync_handler = collector()

    async def async_handler(alert: Alert) -> None:
        return None

    h.manager.register_handler(sync_handler)
    h.manager.register_handler(async_handler)
    h.manager.send_alert("low", "X", "m")
    assert h.manager.flush(timeout=WAIT)
    assert len(set(threading.enumerate()) - before) == 2
    assert h.manager.close(timeout=WAIT)
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(RuntimeError, match="closed"):
        h.manager.send_alert("low", "X", "late")
    with pytest.raises(RuntimeError, match="closed"):
        h.manager.register_handler(sync_handler)
    assert h.manager.close()  # idempotent


@pytest.mark.parametrize("distinct_messages", [10, 200])
def test_concurrent_senders_counts_are_exact(make: Callable[..., Harness],
                                             distinct_messages: int) -> None:
    """Eight threads sending at once: every alert is dispatched or folded exactly once."""
    threads_n, per_thread = 8, 200
    total = threads_n * per_thread
    h = make(buffer_size=total, queue_size=total)
    seen, handler = collector()
    h.manager.register_handler(handler)
    barrier = threading.Barrier(threads_n)
    returned: list[Alert] = []

    def send(worker: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            # With 200 distinct messages each thread's alerts are unique (component differs).
            message = f"m{i % distinct_messages}"
            component = "shared" if distinct_messages == 10 else f"c{worker}"
            returned.append(h.manager.send_alert("medium", component, message))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert h.manager.flush(timeout=WAIT)
    dispatched = {a.id: a for a in returned}
    assert len(seen) == len(dispatched)
    assert sum(a.count for a in dispatched.values()) == total
    if distinct_messages == 10:
        assert len(dispatched) == 10
        assert h.sample("vigil_alerts_total", severity="medium", component="shared") == 10
        assert h.sample("vigil_alerts_deduplicated_total", severity="medium",
                        component="shared") == total - 10
    else:
        assert len(dispatched) == total
        for n in range(threads_n):
            assert h.sample("vigil_alerts_total", severity="medium", component=f"c{n}") == 200
        assert len(h.manager.get_recent_alerts(count=total)) == total


def test_reconfigure_keeps_newest_and_applies_new_settings(make: Callable[..., Harness]) -> None:
    """reconfigure() shrinks the buffer to its newest alerts and applies window and limits."""
    h = make(buffer_size=None, dedup_window=None, handler_timeout=None, queue_size=None)
    h.manager.reconfigure(load_config(
        {"monitoring": {"alerts": {"buffer_size": 5, "dedup_window": 60}}}, environ={}))
    for i in range(5):
        h.manager.send_alert("low", "X", f"m{i}")
    h.manager.reconfigure(load_config(
        {"monitoring": {"alerts": {"buffer_size": 2, "dedup_window": 0, "handler_timeout": 3,
                                   "queue_size": 7}}}, environ={}))
    assert [a.message for a in h.manager.get_recent_alerts()] == ["m4", "m3"]
    assert (h.manager.buffer_size, h.manager.dedup_window, h.manager.handler_timeout,
            h.manager.queue_size) == (2, 0.0, 3.0, 7)
    first = h.manager.send_alert("low", "X", "m4")  # dedup off: dispatched again
    assert first.count == 1
    assert [a.message for a in h.manager.get_recent_alerts()] == ["m4", "m4"]
    assert h.manager.get_recent_alerts()[0] is first


def test_arguments_given_to_the_constructor_survive_reconfigure(
        make: Callable[..., Harness]) -> None:
    """The one config rule: what the constructor was given stays; the rest follows configure."""
    h = make(buffer_size=5, dedup_window=60.0, handler_timeout=None)
    h.manager.reconfigure(load_config(
        {"monitoring": {"alerts": {"buffer_size": 2, "dedup_window": 0, "handler_timeout": 3}}},
        environ={}))
    assert (h.manager.buffer_size, h.manager.dedup_window, h.manager.handler_timeout) == \
        (5, 60.0, 3.0)


def test_module_singleton_follows_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """vigil.configure() reconfigures the module-level alert_manager."""
    from vigil.monitoring.alerts import alert_manager

    monkeypatch.delenv("VIGIL_MONITORING_ALERTS_DEDUP_WINDOW", raising=False)
    previous = vigil_config.get_config()
    try:
        vigil_config.configure({"monitoring": {"alerts": {"dedup_window": 5}}})
        assert alert_manager.dedup_window == 5.0
    finally:
        vigil_config.configure(previous)
    assert alert_manager.dedup_window == previous.monitoring.alerts.dedup_window


def test_invalid_settings_raise_config_error_naming_the_key() -> None:
    """A bad constructor argument fails like bad config, naming the key and the value."""
    with pytest.raises(ConfigError, match=r"buffer_size: got 0"):
        AlertManager(buffer_size=0, registry=CollectorRegistry())
    with pytest.raises(ConfigError, match=r"handler_timeout"):
        AlertManager(handler_timeout=0, registry=CollectorRegistry())


_EXITING_SCRIPT = """
import threading
from vigil.monitoring import alert_manager
alert_manager.register_handler(lambda alert: threading.Event().wait())  # never returns
alert_manager.register_handler(lambda alert: print("handled", alert["message"], flush=True))
alert_manager.send_alert("high", "script", "{message}")
"""


def test_exit_waits_for_handlers_up_to_its_bound_then_says_what_is_lost() -> None:
    """At exit the handlers get exit_flush_timeout seconds: the quick one runs, the hung one
    is reported in a log line, and the interpreter still ends."""
    env = {**os.environ, "VIGIL_MONITORING_ALERTS_EXIT_FLUSH_TIMEOUT": "0.3"}
    result = subprocess.run([sys.executable, "-c", _EXITING_SCRIPT.format(message="bye")],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "handled bye" in lines
    (warning,) = [json.loads(line) for line in lines if line.startswith("{")]
    assert warning["message"] == "interpreter exiting with alerts not yet handled; they are lost"
    assert sum(warning["metadata"]["pending_by_handler"].values()) == 1


def test_the_buffer_keeps_within_its_byte_budget() -> None:
    """1 MB alerts: the recent buffer (and the dedup index) keep only what fits in
    monitoring.alerts.buffer_max_bytes, newest first; a single larger alert is still kept."""
    vigil_config.configure({"monitoring": {"alerts": {"buffer_max_bytes": 5_000_000}}})
    manager = AlertManager(registry=CollectorRegistry(), clock=FakeClock())
    try:
        big = "x" * 1_000_000
        for i in range(50):
            manager.send_alert("high", "c", f"alert {i}", annotations={"body": big})
        kept = manager.get_recent_alerts(1000)
        assert [a.message for a in kept] == [f"alert {i}" for i in range(49, 45, -1)]
        manager.send_alert("high", "c", "huge", annotations={"body": "y" * 8_000_000})
        assert [a.message for a in manager.get_recent_alerts(1000)] == ["huge"]
    finally:
        manager.close()


def test_send_alert_takes_the_severity_words_the_webhook_takes() -> None:
    """warning/warn/error/info/page (any case) name the same severities for send_alert as the
    Alertmanager webhook's severity label does; an unknown word is a ValueError listing them."""
    from vigil.monitoring.alerts import SEVERITY_NAMES
    from vigil_exporter.webhook import map_severity

    for word, severity in SEVERITY_NAMES.items():
        assert AlertSeverity(word.upper()).value == severity == map_severity(word)
    with pytest.raises(ValueError, match="warning"):
        AlertSeverity.parse("sometimes")
