"""The :class:`AlertManager` facade: settings, sending, reading and the lifecycle.

It decides, under the pool's one lock, whether an alert is a repeat (:mod:`.dedup`) or is
recorded (:mod:`.budget`) and queued for the handlers (:mod:`.pool`); it counts
``vigil_alerts_total`` and ``vigil_alerts_deduplicated_total``, follows ``configure`` and, at
interpreter exit, gives the handlers ``exit_flush_timeout`` seconds to finish.
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import (
    AlertSettings,
    VigilConfig,
    get_config,
    get_config_or_defaults,
    with_arguments,
)
from vigil.monitoring.alerts.budget import BudgetedLog
from vigil.monitoring.alerts.building import build_alert
from vigil.monitoring.alerts.dedup import RepeatIndex
from vigil.monitoring.alerts.failures import HandlerFailures
from vigil.monitoring.alerts.model import (
    FIRING,
    Alert,
    AlertHandler,
    AlertSeverity,
    alert_size,
    count_repeat,
    parse_status,
)
from vigil.monitoring.alerts.pool import Drops, HandlerPool
from vigil.monitoring.instruments import counter, default_registry
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger

__all__ = ["AlertManager"]


class AlertManager:
    """Records alerts, folds repeats and dispatches them to handlers (see the package docs).

    Every argument left as ``None`` comes from ``vigil.config`` (``monitoring.alerts.*``), the
    system clock, prometheus_client's default registry and a ``StructuredLogger("vigil.alerts")``.
    Invalid sizes raise :class:`vigil.ConfigError` (a ``ValueError``) naming the argument.
    """

    def __init__(self, *, clock: Clock | None = None, registry: CollectorRegistry | None = None,
                 buffer_size: int | None = None, dedup_window: float | None = None,
                 handler_timeout: float | None = None, queue_size: int | None = None,
                 logger: Logger | None = None) -> None:
        # Given arguments win over the configuration, now and after every configure().
        self._arguments: dict[str, tuple[str, object]] = {
            "buffer_size": ("buffer_size", buffer_size),
            "dedup_window": ("dedup_window", dedup_window),
            "handler_timeout": ("handler_timeout", handler_timeout),
            "queue_size": ("queue_size", queue_size)}
        self._settings = with_arguments(get_config().monitoring.alerts, self._arguments)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._logger: Logger = logger if logger is not None else StructuredLogger("vigil.alerts")
        self._buffer: BudgetedLog[Alert] = BudgetedLog()  # get_recent_alerts' alerts
        self._repeats = RepeatIndex()
        self._exit_flush_armed = False
        registry = registry if registry is not None else default_registry()
        self._sent = counter(registry, "vigil_alerts_total",
                             "Alerts dispatched to handlers (repeats folded by de-duplication "
                             "not included).", ["severity", "component"])
        self._deduplicated = counter(registry, "vigil_alerts_deduplicated_total",
                                     "Repeated alerts folded into an earlier one instead of being "
                                     "dispatched.", ["severity", "component"])
        self._pool = HandlerPool(self._clock, self._current_settings,
                                 HandlerFailures(registry, self._logger))

    def _current_settings(self) -> AlertSettings:
        return self._settings

    # -- settings ------------------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        """Recent alerts kept."""
        return self._settings.buffer_size

    @property
    def dedup_window(self) -> float:
        """Seconds in which a repeat is folded instead of dispatched."""
        return self._settings.dedup_window

    @property
    def handler_timeout(self) -> float:
        """Seconds a handler call may run before it is reported as hung."""
        return self._settings.handler_timeout

    @property
    def queue_size(self) -> int:
        """Alerts that may wait per handler before new ones are dropped for it."""
        return self._settings.queue_size

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply ``config.monitoring.alerts``: the buffer keeps its newest alerts; the window,
        timeout and queue bound apply from the next alert on. Registered with
        :func:`vigil.config.on_configure` for the module-level ``alert_manager``."""
        settings = with_arguments(config.monitoring.alerts, self._arguments)
        with self._pool.lock:
            self._settings = settings
            self._trim_locked()

    # -- sending -------------------------------------------------------------------------

    def send_alert(self, severity: AlertSeverity | str, component: str, message: str,
                   metadata: Mapping[str, Any] | None = None, *, source: str = "vigil",
                   status: str = FIRING, labels: Mapping[str, str] | None = None,
                   annotations: Mapping[str, str] | None = None,
                   fingerprint: str | None = None) -> Alert:
        """Record an alert and dispatch it to every handler; returns it.

        A repeat (same fingerprint and status within ``dedup_window``) is not dispatched: the
        earlier alert's ``count`` grows and that alert is returned. Raises ``ValueError`` for an
        unknown severity or status and ``RuntimeError`` once the manager is closed.
        """
        alert = self.build_alert(severity, component, message, metadata, source=source,
                                 status=status, labels=labels, annotations=annotations,
                                 fingerprint=fingerprint)
        now = self._clock.monotonic()
        drops: Drops = []
        with self._pool.lock:
            if self._pool.closed:
                raise RuntimeError("AlertManager is closed; it cannot send alerts")
            stored = self._repeats.repeat_of(alert, now, self._settings.dedup_window)
            if stored is not None:
                count_repeat(stored)
            else:
                self._remember_locked(alert, now)
                drops = self._pool.enqueue_locked(alert)
            hung = self._pool.hung_locked(now)
        self._pool.report_hung(hung)
        if stored is not None:
            self._deduplicated.labels(alert.severity, alert.component).inc()
            return stored
        self._sent.labels(alert.severity, alert.component).inc()
        self._pool.report_drops(alert, drops)
        return alert

    def build_alert(self, severity: AlertSeverity | str, component: str, message: str,
                    metadata: Mapping[str, Any] | None = None, *, source: str = "vigil",
                    status: str = FIRING, labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None,
                    fingerprint: str | None = None, id: str | None = None,
                    timestamp: float | None = None) -> Alert:
        """An :class:`Alert` from ``send_alert``'s arguments, neither recorded nor dispatched.

        ``id`` defaults to a new random one, ``timestamp`` (epoch seconds) to the clock's now.
        The exporter's delivery loop builds webhook alerts this way, with the store's id.
        """
        return build_alert(severity, component, message, metadata,
                           timestamp=self._clock.time() if timestamp is None else timestamp,
                           source=source, status=status, labels=labels,
                           annotations=annotations, fingerprint=fingerprint, id=id)

    def record(self, alert: Alert) -> None:
        """Keep ``alert`` in the recent buffer (``get_recent_alerts``) and count it in
        ``vigil_alerts_total``, without calling the handlers: for alerts that reach the handlers
        another way (the exporter's durable webhook delivery)."""
        with self._pool.lock:
            self._buffer.add(alert, alert_size(alert))
            self._trim_locked()
        self._sent.labels(alert.severity, alert.component).inc()

    def _remember_locked(self, alert: Alert, now: float) -> None:
        size = alert_size(alert)
        self._buffer.add(alert, size)
        self._repeats.remember(alert, now, size)
        self._trim_locked()

    def _trim_locked(self) -> None:
        """Keep the buffer and the de-duplication index within buffer_size alerts and
        buffer_max_bytes bytes each (the newest alert stays, however large)."""
        limit, budget = self._settings.buffer_size, self._settings.buffer_max_bytes
        self._buffer.trim(limit, budget)
        self._repeats.trim(limit, budget)

    # -- handlers ------------------------------------------------------------------------

    def register_handler(self, handler: AlertHandler) -> AlertHandler:
        """Call ``handler(alert)`` for every dispatched alert, on its own worker thread.

        Registering the same handler twice has no effect. Returns ``handler``, so this can be
        used as a decorator. Raises ``RuntimeError`` once the manager is closed.
        """
        if self._pool.register(handler):
            self._arm_exit_flush()
        return handler

    def handlers(self) -> dict[str, AlertHandler]:
        """The registered handlers by name, in registration order.

        The name is ``module.qualname`` (``#2``, ``#3`` ... for further handlers of the same
        name, in registration order): the same in every process that registers the same
        handlers, which is what the exporter's durable store keys deliveries by.
        """
        return self._pool.handlers()

    def unregister_handler(self, handler: AlertHandler) -> bool:
        """Stop calling ``handler``: alerts queued for it are dropped, a running call finishes.

        Returns whether it was registered.
        """
        return self._pool.unregister(handler)

    # -- waiting, reading, closing -------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert has been handled; returns whether all were.

        ``timeout`` is in real seconds; ``None`` waits as long as it takes (with a hung handler,
        forever) and ``0`` only looks. Handlers running past ``handler_timeout`` are reported
        as hung while it waits.
        """
        return self._pool.flush(timeout)

    def get_recent_alerts(self, count: int = 50, *, source: str | None = None,
                          status: str | None = None,
                          severity: AlertSeverity | str | None = None) -> list[Alert]:
        """Up to ``count`` recent alerts matching every filter given, newest first."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        wanted = _Filter(source, status, severity)
        with self._pool.lock:
            alerts = self._buffer.values()
        found: list[Alert] = []
        for alert in reversed(alerts):
            if len(found) >= count:
                break
            if wanted.matches(alert):
                found.append(alert)
        return found

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the handler workers and wait up to ``timeout`` real seconds for their threads.

        Alerts not yet started are dropped; a running call finishes. Returns whether every
        thread ended (a hung handler's daemon thread cannot be stopped). Idempotent.
        """
        return self._pool.close(timeout)

    def __enter__(self) -> AlertManager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- interpreter exit ----------------------------------------------------------------

    def _arm_exit_flush(self) -> None:
        """At interpreter exit, give the handlers ``exit_flush_timeout`` seconds to finish.

        Handler threads are daemons (a hung handler must not keep the process alive forever),
        so without this a short script's alerts would die with the interpreter unhandled.
        """
        with self._pool.lock:
            if self._exit_flush_armed:
                return
            self._exit_flush_armed = True
        atexit.register(self._flush_at_exit)

    def _flush_at_exit(self) -> None:
        with self._pool.lock:
            if self._pool.closed:
                return
        timeout = get_config_or_defaults().monitoring.alerts.exit_flush_timeout
        if timeout > 0 and self.flush(timeout):
            return
        left = self._pool.pending_by_handler()
        if left:
            # A broken injected logger must not turn the exit into a traceback.
            with contextlib.suppress(Exception):
                self._logger.warning(
                    "interpreter exiting with alerts not yet handled; they are lost",
                    metadata={"pending_by_handler": left, "exit_flush_timeout": timeout})


class _Filter:
    """``get_recent_alerts``' filters, checked once: ``None`` matches anything."""

    def __init__(self, source: str | None, status: str | None,
                 severity: AlertSeverity | str | None) -> None:
        self.source = source
        self.status = None if status is None else parse_status(status)
        self.severity = None if severity is None else \
            AlertSeverity.parse(severity, "alert severity").value

    def matches(self, alert: Alert) -> bool:
        return ((self.source is None or alert.source == self.source)
                and (self.status is None or alert.status == self.status)
                and (self.severity is None or alert.severity == self.severity))
