"""Deliver the alerts in the durable store to the alert handlers, at least once.

:class:`DeliveryLoop` runs one thread per handler registered on the ``AlertManager`` (so a slow
or hung handler delays only itself, as for application alerts). Each thread claims the oldest
due delivery for its handler from the :class:`~vigil_exporter.store.AlertStore`, builds the
:class:`~vigil.monitoring.alerts.Alert`, calls the handler and then:

- **returned**: the delivery is removed from the store (``outcome="delivered"``);
- **raised**: it is tried again after a backoff (``exporter.delivery_initial_delay``, doubling
  with jitter up to ``delivery_max_delay``; ``outcome="retried"``), and after
  ``delivery_max_attempts`` calls it is kept as a dead letter (``outcome="dead_lettered"``,
  ``GET /api/deliveries``), never silently dropped.

**The stable id.** ``alert["id"]`` (``alert.id``) of a webhook alert is the store's id for it:
the same on every delivery of that alert, to every handler, after any restart. A handler that
must not act twice keys its side effects by it.

**Crashes.** A claimed delivery is leased to its owner (``host:pid:start``) for
``lease_seconds``, renewed by a heartbeat while the call runs. When the process dies, a process
on the same host hands its deliveries out again at once (it sees the owner is gone); a receiver
on another host takes them over when the lease runs out. Only a delivery whose handler was
running at the moment of the crash can therefore reach that handler twice.

**Stopping** (:meth:`DeliveryLoop.stop`): no new claims; running calls get ``shutdown_timeout``
seconds to finish; whatever is left stays in the store, is logged with its count, and is
delivered by the next start.

Handlers registered after the loop started get their own thread within a poll interval; alerts
are delivered to the handlers that were registered when the webhook accepted them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vigil.config import ExporterSettings
from vigil.error_handling.retry import RetryPolicy
from vigil.monitoring.alerts import AlertHandler, AlertManager, HandlerRunner
from vigil.monitoring.instruments import counter
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.store import AlertStore, Claim, owner_id, owner_is_dead

__all__ = ["DeliveryLoop", "StopReport", "StoreCollector"]

_ERROR_TEXT_LIMIT = 2000  # characters of a handler's exception kept with a delivery
_RECLAIM_EVERY = 5.0  # seconds between two looks for deliveries held by dead processes
_STORE_ERROR_LOG_EVERY = 30.0  # seconds between two log lines about a failing store


@dataclass(frozen=True, slots=True)
class StopReport:
    """What :meth:`DeliveryLoop.stop` left: ``pending`` deliveries waiting in the store (the
    next start delivers them) and the handler calls still ``running`` at the deadline."""

    pending: int
    running: int

    @property
    def clean(self) -> bool:
        """Every running call finished in time."""
        return self.running == 0


def _error_text(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a raising __str__
        text = type(exc).__name__
    return text[:_ERROR_TEXT_LIMIT]


class _HandlerThread:
    def __init__(self, name: str, handler: AlertHandler) -> None:
        self.name = name
        self.handler = handler
        self.runner = HandlerRunner(handler)
        self.thread: threading.Thread | None = None
        self.claim: Claim | None = None  # the delivery being handled now
        self.started: float = 0.0  # monotonic time the current call began
        self.hung_reported = False
        self.removed = False


class DeliveryLoop:
    """Takes deliveries out of ``store`` and calls ``manager``'s handlers (module docs).

    ``time`` is the wall clock (``time.time``; leases and retry times are compared across
    processes), ``monotonic`` times hung calls; inject both in tests. Thread-safe.
    """

    def __init__(self, store: AlertStore, manager: AlertManager, settings: ExporterSettings,
                 registry: CollectorRegistry, *, logger: Logger | None = None,
                 time_fn: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 policy: RetryPolicy | None = None) -> None:
        self.store = store
        self.manager = manager
        self.settings = settings
        self.owner = owner_id()
        self._time = time_fn
        self._monotonic = monotonic
        self._policy = policy if policy is not None else RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            initial_delay=settings.delivery_initial_delay,
            max_delay=settings.delivery_max_delay, multiplier=2.0)
        self._logger: Logger = (logger if logger is not None
                                 else StructuredLogger("vigil.exporter", registry=registry))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads: dict[str, _HandlerThread] = {}
        self._stopping = False
        self._started = False
        self._supervisor: threading.Thread | None = None
        self._last_store_error = -_STORE_ERROR_LOG_EVERY
        self._deliveries = counter(
            registry, "vigil_webhook_deliveries_total",
            "Handler calls for webhook alerts taken from the store, by outcome: delivered "
            "(returned), retried (raised; tried again later), dead_lettered (raised for the "
            "last allowed time; kept in the store).", ["handler", "outcome"])
        self._discarded = counter(
            registry, "vigil_webhook_dead_letters_discarded_total",
            "Dead letters removed from the store to stay within exporter.dead_letter_limit."
        ).metric
        self._store_errors = counter(
            registry, "vigil_webhook_store_errors_total",
            "Store operations of the delivery loop that raised (retried after a poll "
            "interval), by exception class.", ["exception"])

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the loop runs and takes deliveries (``/readyz``)."""
        thread = self._supervisor
        return self._started and not self._stopping and thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the supervisor (it starts one thread per handler). Idempotent; a stopped loop
        raises (like an executor after ``shutdown``)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("DeliveryLoop was stopped; it cannot start again")
            if self._started:
                return
            self._started = True
            self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                                name="vigil-delivery")
        self._reclaim()
        self._report_unknown_handlers()
        self._supervisor.start()

    def _report_unknown_handlers(self) -> None:
        """Say so when the store holds deliveries for handlers this process does not have: no
        one may deliver them (a handler renamed or dropped), and they count against the caps."""
        stats = self._store_op(self.store.stats)
        if stats is None:
            return
        waiting = {**stats.pending_by_handler}
        for name, count in stats.running_by_handler.items():
            waiting[name] = waiting.get(name, 0) + count
        unknown = {name: n for name, n in waiting.items()
                   if name not in self.manager.handlers()}
        if unknown:
            self._log("warning", "the alert store holds deliveries for handlers not registered "
                                 "in this process; they wait until a receiver with those "
                                 "handlers runs", {"deliveries_by_handler": unknown})

    def notify(self) -> None:
        """New deliveries were committed: wake the handler threads now instead of at the next
        poll."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float | None = None) -> StopReport:
        """Stop claiming, wait up to ``timeout`` (default ``shutdown_timeout``) seconds for the
        running calls, and report what is left in the store. Idempotent."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            threads = list(self._threads.values())
            supervisor = self._supervisor
        deadline = time.monotonic() + timeout
        for worker in [t.thread for t in threads] + [supervisor]:
            if worker is not None and worker is not threading.current_thread():
                worker.join(max(0.0, deadline - time.monotonic()))
        running = sum(1 for t in threads if t.thread is not None and t.thread.is_alive())
        try:
            stats = self.store.stats()
            pending = stats.pending_alerts
        except Exception as exc:
            self._store_failed(exc)
            pending = -1
        metadata: dict[str, Any] = {"pending_alerts": pending, "running_calls": running}
        if running:
            metadata["note"] = ("handler calls still running were abandoned; their alerts "
                                "are delivered again by the next start")
        self._log("warning" if running else "info", "alert delivery stopped", metadata)
        return StopReport(max(pending, 0), running)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` real seconds until no delivery is pending or running (tests,
        short scripts). Deliveries waiting for a retry count as pending."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.store.stats()
            busy = sum(stats.pending_by_handler.values()) + sum(
                stats.running_by_handler.values())
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            self.notify()
            time.sleep(0.01)  # polling the store: another process may hold the work

    def _stopped(self) -> bool:
        # A method, not the attribute: another thread sets it while this one waits.
        return self._stopping

    # -- the supervisor: threads per handler, heartbeat, dead owners ------------------------

    def _supervise(self) -> None:
        interval = self.settings.delivery_poll_interval
        heartbeat = self.settings.lease_seconds / 3
        next_reclaim = time.monotonic() + _RECLAIM_EVERY
        next_beat = time.monotonic() + heartbeat
        while True:
            self._sync_handlers()
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + heartbeat
                with self._lock:
                    held = [(t.claim.alert_id, t.name) for t in self._threads.values()
                            if t.claim is not None]
                if held:
                    self._store_op(self.store.renew, self.owner,
                                   self._time() + self.settings.lease_seconds, held)
            if now >= next_reclaim:
                next_reclaim = now + _RECLAIM_EVERY
                self._reclaim()
            self._report_hung()
            with self._wake:
                if not self._stopping:
                    self._wake.wait(min(interval, heartbeat))
                if self._stopped():
                    return

    def _sync_handlers(self) -> None:
        """One thread per registered handler: new handlers get one, removed ones end theirs."""
        current = self.manager.handlers()
        with self._lock:
            if self._stopping:
                return
            for name, worker in list(self._threads.items()):
                if current.get(name) is not worker.handler:
                    worker.removed = True
                    del self._threads[name]
            for name, handler in current.items():
                if name not in self._threads:
                    worker = _HandlerThread(name, handler)
                    worker.thread = threading.Thread(target=self._work, args=(worker,),
                                                     daemon=True,
                                                     name=f"vigil-delivery[{name}]")
                    self._threads[name] = worker
                    # Started under the lock: stop() joins every thread it finds registered,
                    # and joining one not yet started raises.
                    worker.thread.start()
            self._wake.notify_all()

    def _reclaim(self) -> None:
        """Hand out again the deliveries held by processes of this host that died."""
        owners = self._store_op(self.store.owners)
        for owner in owners or ():
            if owner != self.owner and owner_is_dead(owner):
                released = self._store_op(self.store.release, owner)
                if released:
                    self._log("warning", "deliveries of a receiver process that died are "
                                         "handed out again", {"owner": owner,
                                                              "deliveries": released})
                    self.notify()

    def _report_hung(self) -> None:
        limit = self.manager.handler_timeout
        now = self._monotonic()
        with self._lock:
            hung = [(t.name, t.claim.alert_id, now - t.started) for t in self._threads.values()
                    if t.claim is not None and not t.hung_reported and now - t.started > limit]
            for t in self._threads.values():
                if t.claim is not None and now - t.started > limit:
                    t.hung_reported = True
        for name, alert_id, running in hung:
            self._log("warning", "alert handler hung on a webhook alert",
                      {"handler": name, "alert_id": alert_id,
                       "running_seconds": round(running, 3), "handler_timeout": limit})

    # -- one handler's thread --------------------------------------------------------------

    def _work(self, worker: _HandlerThread) -> None:
        try:
            while True:
                with self._lock:
                    if self._stopping or worker.removed:
                        return
                claim = self._store_op(self.store.claim, worker.name, self.owner, self._time(),
                                       self.settings.lease_seconds)
                if claim is None:
                    with self._wake:
                        if not (self._stopping or worker.removed):
                            self._wake.wait(self.settings.delivery_poll_interval)
                    continue
                self._deliver(worker, claim)
        finally:
            worker.runner.close()

    def _deliver(self, worker: _HandlerThread, claim: Claim) -> None:
        with self._lock:
            worker.claim, worker.started, worker.hung_reported = claim, self._monotonic(), False
        try:
            try:
                alert = self.manager.build_alert(**claim.payload, id=claim.alert_id,
                                                 timestamp=claim.received_at)
                worker.runner(alert)
            # BaseException too: a handler calling sys.exit() must not end the thread (every
            # later alert for it would wait in the store forever).
            except BaseException as exc:
                self._failed(worker, claim, exc)
            else:
                self._store_op(self.store.complete, claim)
                self._deliveries.labels(worker.name, "delivered").inc()
        finally:
            with self._lock:
                worker.claim = None

    def _failed(self, worker: _HandlerThread, claim: Claim, exc: BaseException) -> None:
        error = _error_text(exc)
        reason = exc if isinstance(exc, Exception) else RuntimeError(error)
        decision = self._policy.decide(claim.attempt, reason)
        metadata = {"handler": worker.name, "alert_id": claim.alert_id,
                    "attempt": claim.attempt, "max_attempts": self._policy.max_attempts,
                    "error": error}
        if decision.retry:
            self._store_op(self.store.retry, claim, error, self._time() + decision.delay)
            self._deliveries.labels(worker.name, "retried").inc()
            self._log("warning", "alert handler raised; the delivery will be tried again",
                      {**metadata, "delay": round(decision.delay, 3)}, exc_info=exc)
            return
        discarded = self._store_op(self.store.dead_letter, claim, error, self._time()) or 0
        self._deliveries.labels(worker.name, "dead_lettered").inc()
        self._log("error", "alert handler failed for the last allowed time; the delivery is "
                           "kept as a dead letter", metadata, exc_info=exc)
        if discarded:
            self._discarded.inc(discarded)
            self._log("warning", "oldest dead letters discarded (exporter.dead_letter_limit)",
                      {"discarded": discarded, "limit": self.settings.dead_letter_limit})

    # -- helpers ---------------------------------------------------------------------------

    def _store_op(self, op: Callable[..., Any], *args: Any) -> Any:
        """``op(*args)``; a store failure is counted and logged (at most every 30 s), not
        raised: the loop retries at its next poll, and the delivery stays in the store."""
        try:
            return op(*args)
        except Exception as exc:
            self._store_failed(exc)
            with self._wake:
                if not self._stopping:
                    self._wake.wait(self.settings.delivery_poll_interval)
            return None

    def _store_failed(self, exc: Exception) -> None:
        self._store_errors.labels(type(exc).__name__).inc()
        now = time.monotonic()
        if now - self._last_store_error >= _STORE_ERROR_LOG_EVERY:
            self._last_store_error = now
            self._log("error", "the alert store failed; retrying",
                      {"store": repr(self.store), "error": _error_text(exc)}, exc_info=exc)

    def _log(self, level: str, message: str, metadata: Mapping[str, Any], *,
             exc_info: BaseException | None = None) -> None:
        try:
            if level == "error":
                self._logger.error(message, metadata, exc_info=exc_info)
            elif level == "warning":
                self._logger.warning(message, metadata)
            else:
                self._logger.info(message, metadata)
        except Exception:  # pragma: no cover - a broken injected logger must not stop delivery
            pass


class StoreCollector(Collector):
    """Scrape-time gauges of the store: what waits (alerts, bytes) and the dead letters.

    Read from the store itself, so every receiver process sharing it reports the same values.
    """

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families(None))

    def collect(self) -> list[GaugeMetricFamily]:
        try:
            stats = self.store.stats()
        except Exception:  # a failing store must not fail the scrape: the series go missing
            return []
        return list(self._families(stats))

    @staticmethod
    def _families(stats: Any) -> list[GaugeMetricFamily]:
        alerts = GaugeMetricFamily(
            "vigil_webhook_store_alerts",
            "Webhook alerts in the durable store, by state: pending (waiting for or in a "
            "handler call) or dead (dead-lettered deliveries).", labels=["state"])
        size = GaugeMetricFamily(
            "vigil_webhook_store_bytes",
            "Bytes of the webhook alerts waiting in the store; at exporter.store_max_bytes "
            "the webhook answers 503.")
        if stats is not None:
            alerts.add_metric(["pending"], stats.pending_alerts)
            alerts.add_metric(["dead"], stats.dead_letters)
            size.add_metric([], stats.pending_bytes)
        return [alerts, size]
