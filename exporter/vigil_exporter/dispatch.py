"""Hand webhook notifications to vigil's alerts off the request path, without losing any.

:class:`WebhookDispatcher` keeps a bounded queue of notifications and one daemon worker thread
that turns each alert in them into ``alert_manager.send_alert(**kwargs)``. The HTTP handler
only parses and calls :meth:`WebhookDispatcher.submit`, so Alertmanager is answered at once
however slow the application's alert handlers are.

- **Redeliveries are dropped.** Each alert's :func:`~vigil_exporter.webhook.redelivery_key` is
  remembered once accepted (an LRU of ``dedup_size`` keys; a key seen again moves to the
  front), and an alert whose key is remembered is counted as a duplicate instead of queued.
  The same key twice in one notification counts once.
- **Back-pressure instead of loss.** When the queue is full, :meth:`~WebhookDispatcher.submit`
  answers ``"full"`` *without* remembering the keys: the webhook answers 503, Alertmanager
  retries later, and the retry is accepted. Keys are remembered on acceptance rather than on
  delivery, so a retry arriving while the first copy still waits in the queue is a duplicate.
- **A failing ``send_alert`` is logged and counted** (``vigil_webhook_dispatch_failures_total``)
  and the worker moves on to the next alert. Such an alert is not retried: Alertmanager was
  already told it arrived.
- **Lifecycle.** Notifications submitted before :meth:`~WebhookDispatcher.start` wait for it.
  :meth:`~WebhookDispatcher.stop` lets the worker deliver what was accepted (Alertmanager will
  not resend it) and then end; after it, ``submit`` answers ``"stopped"``. A stopped
  dispatcher does not start again (like an executor after ``shutdown``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry

from vigil.config import get_config
from vigil.monitoring import alerts as vigil_alerts
from vigil.monitoring.instruments import counter, gauge
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import performance_monitor
from vigil_exporter.webhook import (
    Notification,
    RedeliveryKey,
    WebhookAlert,
    redelivery_key,
    to_send_alert_kwargs,
)

__all__ = ["AlertSink", "SubmitResult", "WebhookDispatcher"]

_NEW, _RUNNING, _STOPPING, _STOPPED = "new", "running", "stopping", "stopped"


class AlertSink(Protocol):
    """What the dispatcher needs: ``AlertManager.send_alert`` (any object with it will do)."""

    def send_alert(self, severity: str, component: str, message: str,
                   metadata: Mapping[str, Any] | None = None, *, source: str = ...,
                   status: str = ..., labels: Mapping[str, str] | None = ...,
                   annotations: Mapping[str, str] | None = ...,
                   fingerprint: str | None = ...) -> object: ...


class _Logger(Protocol):
    def info(self, message: str, metadata: Mapping[str, Any] | None = ...) -> None: ...

    def warning(self, message: str, metadata: Mapping[str, Any] | None = ...) -> None: ...

    def error(self, message: str, metadata: Mapping[str, Any] | None = ..., *,
              exc_info: Any = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :meth:`WebhookDispatcher.submit` did with a notification.

    ``status``: ``"accepted"`` (``alerts`` new alerts queued, ``duplicates`` dropped as
    redeliveries), ``"full"`` (the queue is full: nothing taken, ask for a retry) or
    ``"stopped"`` (the dispatcher was stopped: nothing taken).
    """

    status: Literal["accepted", "full", "stopped"]
    alerts: int = 0
    duplicates: int = 0

    @property
    def accepted(self) -> bool:
        """Whether the notification was taken (its new alerts will be dispatched)."""
        return self.status == "accepted"


@dataclass(frozen=True, slots=True)
class _Work:
    notification: Notification
    alerts: tuple[WebhookAlert, ...]  # the notification's alerts that were not duplicates


class WebhookDispatcher:
    """A bounded queue of webhook notifications and the worker that dispatches them.

    ``alert_manager`` defaults to vigil's ``alert_manager``; ``queue_size`` (notifications
    waiting) and ``dedup_size`` (redelivery keys remembered) to ``exporter.webhook_queue_size``
    and ``exporter.webhook_dedup_size``; ``registry`` to ``performance_monitor.registry``;
    ``logger`` to ``StructuredLogger("vigil.exporter")``. Invalid sizes raise
    :class:`vigil.ConfigError` naming the setting. Thread-safe.
    """

    def __init__(self, alert_manager: AlertSink | None = None, queue_size: int | None = None,
                 dedup_size: int | None = None, registry: CollectorRegistry | None = None, *,
                 logger: _Logger | None = None) -> None:
        base = get_config().exporter
        # ExporterSettings validates on construction: bad sizes fail like bad config.
        settings = dataclasses.replace(
            base,
            webhook_queue_size=base.webhook_queue_size if queue_size is None else queue_size,
            webhook_dedup_size=base.webhook_dedup_size if dedup_size is None else dedup_size)
        self._queue_size = settings.webhook_queue_size
        self._dedup_size = settings.webhook_dedup_size
        self._sink: AlertSink = (alert_manager if alert_manager is not None
                                 else vigil_alerts.alert_manager)
        registry = registry if registry is not None else performance_monitor.registry
        self._logger: _Logger = (logger if logger is not None
                                 else StructuredLogger("vigil.exporter", registry=registry))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[_Work] = deque()
        self._seen: OrderedDict[RedeliveryKey, None] = OrderedDict()
        self._busy = False  # the worker is dispatching a notification it took off the queue
        self._state = _NEW
        self._thread: threading.Thread | None = None
        self._received = counter(
            registry, "vigil_alertmanager_alerts_received_total",
            "Alerts received on the Alertmanager webhook and accepted for dispatch "
            "(redeliveries not included).", ["alertname", "status"])
        self._duplicates = counter(
            registry, "vigil_webhook_duplicates_total",
            "Alerts in webhook notifications dropped as redeliveries of accepted ones.").metric
        self._failures = counter(
            registry, "vigil_webhook_dispatch_failures_total",
            "Webhook alerts whose send_alert raised, by exception class.", ["exception"])
        self._queued = gauge(
            registry, "vigil_webhook_queued_notifications",
            "Webhook notifications waiting for the dispatcher; at webhook_queue_size the "
            "webhook answers 503.", multiprocess_mode="livesum").metric

    # -- settings and state --------------------------------------------------------------

    @property
    def queue_size(self) -> int:
        """Notifications that may wait before ``submit`` answers ``"full"``."""
        return self._queue_size

    @property
    def dedup_size(self) -> int:
        """Redelivery keys remembered."""
        return self._dedup_size

    @property
    def alive(self) -> bool:
        """Whether the worker is running and taking notifications (``/readyz``)."""
        thread = self._thread
        return self._state == _RUNNING and thread is not None and thread.is_alive()

    @property
    def pending(self) -> int:
        """Notifications queued or being dispatched."""
        with self._lock:
            return len(self._queue) + self._busy

    # -- submitting ----------------------------------------------------------------------

    def submit(self, notification: Notification) -> SubmitResult:
        """Queue the new alerts of ``notification``; never blocks on the handlers."""
        fresh: list[WebhookAlert] = []
        duplicates = 0
        with self._lock:
            if self._state in (_STOPPING, _STOPPED):
                return SubmitResult("stopped")
            keys: list[RedeliveryKey] = []
            for alert in notification.alerts:
                key = redelivery_key(alert)
                if key in self._seen:
                    self._seen.move_to_end(key)
                    duplicates += 1
                elif key in keys:
                    duplicates += 1
                else:
                    keys.append(key)
                    fresh.append(alert)
            if fresh:
                if len(self._queue) >= self._queue_size:
                    # Nothing remembered: Alertmanager's retry must be taken as new.
                    return SubmitResult("full")
                for key in keys:
                    self._seen[key] = None
                while len(self._seen) > self._dedup_size:
                    self._seen.popitem(last=False)
                self._queue.append(_Work(notification, tuple(fresh)))
                self._queued.set(len(self._queue))
                self._changed.notify_all()
        for alert in fresh:
            self._received.labels(alert.alertname, alert.status).inc()
        if duplicates:
            self._duplicates.inc(duplicates)
        return SubmitResult("accepted", len(fresh), duplicates)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread. Idempotent while running; a stopped dispatcher raises."""
        with self._lock:
            if self._state == _RUNNING:
                return
            if self._state != _NEW:
                raise RuntimeError("WebhookDispatcher was stopped; it cannot start again")
            self._state = _RUNNING
            self._thread = threading.Thread(target=self._work, daemon=True,
                                            name="vigil-webhook-dispatcher")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Deliver what was accepted, then end the worker; waits up to ``timeout`` seconds.

        Returns whether the worker ended (it cannot when ``send_alert`` hangs). Idempotent.
        """
        with self._lock:
            if self._state == _NEW:
                self._state = _STOPPED
                dropped = len(self._queue)
                self._queue.clear()
                self._queued.set(0)
            else:
                dropped = 0
                if self._state == _RUNNING:
                    self._state = _STOPPING
                self._changed.notify_all()
            thread = self._thread
        if dropped:
            self._log("warning", "webhook dispatcher stopped before it started; "
                                 "notifications dropped", {"notifications": dropped})
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted notification was dispatched; returns whether it was.

        ``timeout`` is in seconds (``None``: as long as it takes). Returns ``False`` at once
        when notifications wait but no worker runs to take them.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._queue or self._busy:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -- the worker ----------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                with self._changed:
                    while not self._queue and self._state == _RUNNING:
                        self._changed.wait()
                    if not self._queue:
                        return  # stopping, and everything accepted was delivered
                    work = self._queue.popleft()
                    self._queued.set(len(self._queue))
                    self._busy = True
                try:
                    self._dispatch(work)
                finally:
                    with self._changed:
                        self._busy = False
                        self._changed.notify_all()
        finally:
            with self._changed:
                self._state = _STOPPED
                self._changed.notify_all()

    def _dispatch(self, work: _Work) -> None:
        for alert in work.alerts:
            try:
                self._sink.send_alert(**to_send_alert_kwargs(alert, work.notification))
            # BaseException too: one alert's failure (even a SystemExit from a handler-like
            # send_alert) must not end the worker, or every later notification would be lost.
            except BaseException as exc:
                self._failures.labels(type(exc).__name__).inc()
                self._log("error", "webhook alert could not be dispatched: send_alert raised",
                          {"alertname": alert.alertname, "status": alert.status,
                           "fingerprint": alert.fingerprint}, exc_info=exc)

    def _log(self, level: str, message: str, metadata: Mapping[str, Any], *,
             exc_info: BaseException | None = None) -> None:
        try:
            if level == "error":
                self._logger.error(message, metadata, exc_info=exc_info)
            else:
                self._logger.warning(message, metadata)
        # A broken injected logger must not end the worker.
        except Exception:  # pragma: no cover - defensive
            pass
