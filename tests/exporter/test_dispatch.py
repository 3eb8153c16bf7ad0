"""vigil_exporter.dispatch: the bounded queue, redelivery suppression and the worker's life."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.exporter.sinks import BlockingSink

from vigil.config import ConfigError, get_config
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.testing import FakeClock
from vigil_exporter.dispatch import SubmitResult, WebhookDispatcher
from vigil_exporter.webhook import Notification, WebhookAlert

WAIT = 5.0  # real seconds a test waits for a worker thread before failing (never slept)


def alert(fingerprint: str = "f1", status: str = "firing", starts_at: str = "t0",
          alertname: str = "A", **labels: str) -> WebhookAlert:
    return WebhookAlert(status=status, labels={"alertname": alertname, **labels},
                        annotations={"summary": f"{alertname} {status}"}, starts_at=starts_at,
                        ends_at="0001-01-01T00:00:00Z", fingerprint=fingerprint)


def note(*alerts: WebhookAlert) -> Notification:
    return Notification(alerts=alerts, receiver="hook", group_key="{}:{}")


class CapturingLogger:
    """Records what the dispatcher logs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        self.records.append(("INFO", message, dict(metadata or {})))

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        self.records.append(("WARNING", message, dict(metadata or {})))

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        self.records.append(("ERROR", message, dict(metadata or {})))


class FailingSink:
    """send_alert raises for alerts named "bad", forwards the others."""

    def __init__(self, target: AlertManager) -> None:
        self.target = target

    def send_alert(self, severity: str, component: str, message: str,
                   metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> object:
        if kwargs["labels"]["alertname"] == "bad":
            raise RuntimeError("handler exploded")
        return self.target.send_alert(severity, component, message, metadata, **kwargs)


@dataclass
class Harness:
    registry: CollectorRegistry
    manager: AlertManager
    logger: CapturingLogger
    received: list[Alert] = field(default_factory=list)

    def delivered(self, dispatcher: WebhookDispatcher) -> list[Alert]:
        assert dispatcher.flush(WAIT)
        assert self.manager.flush(WAIT)
        return self.received

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A fresh registry and AlertManager (fake clock) with a capturing handler."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock())
    built = Harness(registry, manager, CapturingLogger())
    manager.register_handler(built.received.append)
    yield built
    manager.close()


@pytest.fixture
def make(harness: Harness) -> Iterator[Callable[..., WebhookDispatcher]]:
    """Builds dispatchers on the harness (started unless told) and stops them after."""
    made: list[WebhookDispatcher] = []

    def build(*, start: bool = True, sink: Any = None, **options: Any) -> WebhookDispatcher:
        dispatcher = WebhookDispatcher(sink if sink is not None else harness.manager,
                                       registry=harness.registry, logger=harness.logger,
                                       **options)
        made.append(dispatcher)
        if start:
            dispatcher.start()
        return dispatcher

    yield build
    for dispatcher in made:
        dispatcher.stop(WAIT)


def test_accepted_alerts_reach_handlers_as_vigil_alerts(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """Each alert of a notification becomes one send_alert with source alertmanager."""
    dispatcher = make()
    result = dispatcher.submit(note(alert("f1", alertname="A", severity="page"),
                                    alert("f2", alertname="B")))
    assert result == SubmitResult("accepted", alerts=2, duplicates=0)
    assert result.accepted
    got = harness.delivered(dispatcher)
    assert [(a.labels["alertname"], a.source, a.severity, a.fingerprint) for a in got] == [
        ("A", "alertmanager", "critical", "f1"), ("B", "alertmanager", "medium", "f2")]
    assert got[0].metadata["receiver"] == "hook"
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="A", status="firing") == 1


def test_redelivery_is_not_dispatched_twice(harness: Harness,
                                            make: Callable[..., WebhookDispatcher]) -> None:
    """The same notification submitted again is counted as duplicates, not dispatched."""
    dispatcher = make()
    assert dispatcher.submit(note(alert("f1"))).alerts == 1
    assert dispatcher.submit(note(alert("f1"))) == SubmitResult("accepted", 0, 1)
    assert len(harness.delivered(dispatcher)) == 1
    assert harness.sample("vigil_webhook_duplicates_total") == 1
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="A", status="firing") == 1


def test_group_renotification_dispatches_only_the_new_alert(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """When an alert joins a group, the group's earlier alerts in the resend are dropped."""
    dispatcher = make()
    dispatcher.submit(note(alert("f1", alertname="A")))
    result = dispatcher.submit(note(alert("f1", alertname="A"), alert("f2", alertname="B")))
    assert (result.alerts, result.duplicates) == (1, 1)
    assert [a.labels["alertname"] for a in harness.delivered(dispatcher)] == ["A", "B"]


def test_same_key_twice_in_one_notification_counts_once(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """A key repeated inside one notification is dispatched once."""
    dispatcher = make()
    assert dispatcher.submit(note(alert("f1"), alert("f1"))) == SubmitResult("accepted", 1, 1)
    assert len(harness.delivered(dispatcher)) == 1


def test_resolution_and_new_episode_are_new(harness: Harness,
                                            make: Callable[..., WebhookDispatcher]) -> None:
    """Resolved after firing, and firing again with a new startsAt, are both dispatched."""
    dispatcher = make()
    dispatcher.submit(note(alert("f1", "firing", "t0")))
    dispatcher.submit(note(alert("f1", "resolved", "t0")))
    dispatcher.submit(note(alert("f1", "firing", "t1")))
    assert [a.status for a in harness.delivered(dispatcher)] == ["firing", "resolved", "firing"]


def test_dedup_memory_is_a_bounded_lru(harness: Harness,
                                       make: Callable[..., WebhookDispatcher]) -> None:
    """Past dedup_size keys the least recently seen is forgotten; a redelivery refreshes one."""
    dispatcher = make(dedup_size=2)
    dispatcher.submit(note(alert("a")))
    dispatcher.submit(note(alert("b")))
    assert dispatcher.submit(note(alert("a"))).duplicates == 1  # refreshes a
    dispatcher.submit(note(alert("c")))  # evicts b, the least recently seen
    assert dispatcher.submit(note(alert("a"))).duplicates == 1
    assert dispatcher.submit(note(alert("b"))).alerts == 1
    assert dispatcher.flush(WAIT)
    # b went to send_alert twice (AlertManager's own dedup_window then folds the repeat).
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="A", status="firing") == 4


def test_full_queue_refuses_without_remembering_then_retry_is_delivered(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """A full queue answers "full" and forgets the keys; the retry is accepted: nothing lost."""
    sink = BlockingSink(harness.manager)
    dispatcher = make(sink=sink, queue_size=1)
    assert dispatcher.submit(note(alert("a"))).accepted
    assert sink.entered.wait(WAIT)  # the worker holds "a"; the queue is empty again
    assert dispatcher.submit(note(alert("b"))).accepted  # waits in the queue
    assert dispatcher.submit(note(alert("c"))) == SubmitResult("full")
    assert dispatcher.submit(note(alert("b"))) == SubmitResult("accepted", 0, 1)
    assert not dispatcher.flush(0.01)
    sink.release.set()
    assert dispatcher.flush(WAIT)
    assert dispatcher.submit(note(alert("c"))) == SubmitResult("accepted", 1, 0)  # the retry
    assert [a.fingerprint for a in harness.delivered(dispatcher)] == ["a", "b", "c"]


def test_full_queue_does_not_count_or_remember(harness: Harness,
                                               make: Callable[..., WebhookDispatcher]) -> None:
    """A refused notification leaves no trace in the counters or the redelivery memory."""
    sink = BlockingSink(harness.manager)
    dispatcher = make(sink=sink, queue_size=1)
    dispatcher.submit(note(alert("a", alertname="A")))
    assert sink.entered.wait(WAIT)
    dispatcher.submit(note(alert("b", alertname="B")))
    assert not dispatcher.submit(note(alert("c", alertname="C"))).accepted
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="C", status="firing") == 0
    sink.release.set()
    assert dispatcher.flush(WAIT)
    assert dispatcher.submit(note(alert("c", alertname="C"))) == SubmitResult("accepted", 1, 0)
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="C", status="firing") == 1
    assert harness.sample("vigil_webhook_queued_notifications") in (0, 1)


def test_all_duplicates_are_accepted_even_when_full(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """A notification with nothing new needs no queue slot: accepted even when full."""
    sink = BlockingSink(harness.manager)
    dispatcher = make(sink=sink, queue_size=1)
    dispatcher.submit(note(alert("a")))
    assert sink.entered.wait(WAIT)
    dispatcher.submit(note(alert("b")))
    assert dispatcher.submit(note(alert("a"), alert("b"))) == SubmitResult("accepted", 0, 2)
    sink.release.set()


def test_raising_send_alert_is_logged_counted_and_survived(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """A send_alert that raises is logged and counted; the next alerts still go out."""
    dispatcher = make(sink=FailingSink(harness.manager))
    dispatcher.submit(note(alert("1", alertname="bad"), alert("2", alertname="good")))
    dispatcher.submit(note(alert("3", alertname="later")))
    assert [a.labels["alertname"] for a in harness.delivered(dispatcher)] == ["good", "later"]
    assert dispatcher.alive
    assert harness.sample("vigil_webhook_dispatch_failures_total",
                          exception="RuntimeError") == 1
    (record,) = [r for r in harness.logger.records if r[0] == "ERROR"]
    assert record[2] == {"alertname": "bad", "status": "firing", "fingerprint": "1"}


def test_submitted_before_start_waits_for_the_worker(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """Notifications submitted before start() are delivered once it runs."""
    dispatcher = make(start=False)
    assert dispatcher.submit(note(alert("a"))).accepted
    assert not dispatcher.flush(0.01)  # no worker yet: flush says so at once
    assert dispatcher.pending == 1
    dispatcher.start()
    assert dispatcher.alive
    assert [a.fingerprint for a in harness.delivered(dispatcher)] == ["a"]
    assert dispatcher.pending == 0


def test_stop_delivers_what_was_accepted_then_refuses(
        harness: Harness, make: Callable[..., WebhookDispatcher]) -> None:
    """stop() drains the accepted notifications; afterwards submit answers "stopped"."""
    sink = BlockingSink(harness.manager)
    dispatcher = make(sink=sink)
    dispatcher.submit(note(alert("a")))
    assert sink.entered.wait(WAIT)
    dispatcher.submit(note(alert("b")))
    assert not dispatcher.stop(0.01)  # the worker is held: not ended yet
    assert not dispatcher.alive
    assert dispatcher.submit(note(alert("c"))) == SubmitResult("stopped")
    sink.release.set()
    assert dispatcher.stop(WAIT)
    assert harness.manager.flush(WAIT)
    assert [a.fingerprint for a in harness.received] == ["a", "b"]
    assert dispatcher.stop(WAIT)  # idempotent
    with pytest.raises(RuntimeError, match="cannot start again"):
        dispatcher.start()


def test_stop_before_start_drops_and_says_so(harness: Harness,
                                             make: Callable[..., WebhookDispatcher]) -> None:
    """A dispatcher stopped without ever starting logs the notifications it drops."""
    dispatcher = make(start=False)
    assert not dispatcher.alive
    dispatcher.submit(note(alert("a")))
    assert dispatcher.stop(WAIT)
    assert dispatcher.pending == 0
    assert any(r[0] == "WARNING" and r[2] == {"notifications": 1}
               for r in harness.logger.records)


def test_start_is_idempotent_while_running(make: Callable[..., WebhookDispatcher]) -> None:
    """start() on a running dispatcher changes nothing."""
    dispatcher = make()
    dispatcher.start()
    assert dispatcher.alive


@pytest.mark.parametrize(("options", "key"), [
    ({"queue_size": 0}, "webhook_queue_size"), ({"dedup_size": -1}, "webhook_dedup_size"),
])
def test_invalid_sizes_raise_config_errors(options: dict[str, Any], key: str) -> None:
    """Bad sizes fail like bad configuration, naming the setting."""
    with pytest.raises(ConfigError, match=key):
        WebhookDispatcher(AlertManager(registry=CollectorRegistry()),
                          registry=CollectorRegistry(), **options)


def test_sizes_default_from_configuration() -> None:
    """Without arguments the sizes come from exporter.webhook_queue_size/dedup_size."""
    dispatcher = WebhookDispatcher(AlertManager(registry=CollectorRegistry()),
                                   registry=CollectorRegistry())
    assert dispatcher.queue_size == get_config().exporter.webhook_queue_size
    assert dispatcher.dedup_size == get_config().exporter.webhook_dedup_size
