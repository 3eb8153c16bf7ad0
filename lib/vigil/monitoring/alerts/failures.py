"""Handler failures made visible: each one counted in
``vigil_alert_handler_failures_total{handler,reason}`` and logged.

``reason`` is ``error`` (the handler raised: logged with its traceback), ``hung`` (a call ran
past ``handler_timeout``: logged once per stuck call) or ``dropped`` (its queue was full:
every drop counted, one log line per run of drops). A broken injected logger never breaks
``send_alert`` or kills a worker.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from vigil.monitoring.alerts.model import Alert
from vigil.monitoring.instruments import counter
from vigil.monitoring.logger_protocol import Logger

__all__ = ["HandlerFailures"]


class HandlerFailures:
    """The failures counter on ``registry`` and the lines written to ``logger``."""

    def __init__(self, registry: CollectorRegistry, logger: Logger) -> None:
        self._logger = logger
        self._failures = counter(registry, "vigil_alert_handler_failures_total",
                                 "Alert handler failures: reason is error (raised), hung (ran "
                                 "past handler_timeout) or dropped (its queue was full).",
                                 ["handler", "reason"])

    def raised(self, handler: str, alert: Alert, exc: BaseException) -> None:
        self._failures.labels(handler, "error").inc()
        self._log("error", "alert handler raised", handler, alert, exc_info=exc)

    def hung(self, handler: str, running: float, handler_timeout: float) -> None:
        self._failures.labels(handler, "hung").inc()
        self._log("warning", "alert handler hung", handler, None,
                  running_seconds=round(running, 3), handler_timeout=handler_timeout)

    def dropped(self, handler: str, alert: Alert, first_of_run: bool, queue_size: int) -> None:
        self._failures.labels(handler, "dropped").inc()
        if first_of_run:
            self._log("warning", "alert handler queue full; dropping alerts for it",
                      handler, alert, queue_size=queue_size)

    def _log(self, level: str, message: str, handler: str, alert: Alert | None, *,
             exc_info: BaseException | None = None, **extra: Any) -> None:
        metadata: dict[str, Any] = {"handler": handler, **extra}
        if alert is not None:
            metadata.update(alert_id=alert.id, fingerprint=alert.fingerprint)
        try:
            if level == "error":
                self._logger.error(message, metadata=metadata, exc_info=exc_info)
            else:
                self._logger.warning(message, metadata=metadata, exc_info=exc_info)
        # A broken injected logger must not break send_alert or kill a worker.
        except Exception:  # pragma: no cover - defensive
            pass
