"""What the recovery manager reports for each handled error.

:func:`attach_recovery` runs for each manager announced on ``ErrorRecoveryManager.named`` and
subscribes one :class:`RecoveryReporter` to its :class:`~vigil.error_handling.recovery.ErrorHandled`
events: ``vigil_errors_total{category,severity,component}``,
``vigil_recovery_actions_total{category,action}``, one ERROR log line (the current trace id
comes from the logger's context; the exception's stack from the event) and, when the event says
so (its severity reaches the manager's ``alert_min_severity``), an alert. The log lines go to
the manager's ``logger=`` or a ``vigil.recovery`` logger; the alert to its ``alert_manager=``
or the shared ``vigil.alert_manager``, read when the alert is sent.
"""

from __future__ import annotations

from typing import Any

from vigil.error_handling.recovery import ErrorHandled, NamedRecovery
from vigil.monitoring import alerts as _alerts
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil.reporting import failures

__all__ = ["RecoveryReporter", "attach_recovery"]


class RecoveryReporter:
    """The metrics, log line and alert of one manager's handled errors."""

    __slots__ = ("_actions", "_alerts", "_errors", "_logger")

    def __init__(self, named: NamedRecovery) -> None:
        self._errors = instruments.counter(
            named.registry, "vigil_errors_total", "Errors handled by the recovery manager.",
            ["category", "severity", "component"])
        self._actions = instruments.counter(
            named.registry, "vigil_recovery_actions_total",
            "Recovery actions decided, by category.", ["category", "action"])
        self._logger: Logger = named.report_to.logger if named.report_to.logger is not None \
            else StructuredLogger("vigil.recovery")
        self._alerts: Any = named.report_to.alert_manager

    def count(self, event: ErrorHandled) -> None:
        """The two counters."""
        record = event.record
        self._errors.labels(record.category.value, record.severity.value,
                            record.component).inc()
        self._actions.labels(record.category.value, record.action.value).inc()

    def log(self, event: ErrorHandled) -> None:
        """One ERROR line with the error's stack."""
        record = event.record
        self._logger.error(
            f"{record.component}.{record.operation} failed: {record.error_type}: "
            f"{record.message}",
            metadata={**record.metadata, "category": record.category.value,
                      "severity": record.severity.value, "component": record.component,
                      "operation": record.operation, "action": record.action.value,
                      "reason": event.action.reason},
            exc_info=event.error)

    def alert(self, event: ErrorHandled) -> None:
        """An alert, when the event's severity reaches the manager's threshold."""
        if not event.alert:
            return
        record = event.record
        sender = self._alerts if self._alerts is not None else _alerts.alert_manager
        sender.send_alert(
            record.severity.value, record.component,
            f"{record.operation} failed with {record.error_type}: {record.message}",
            metadata={**record.metadata, "action": record.action.value},
            labels={"category": record.category.value, "operation": record.operation})


def attach_recovery(named: NamedRecovery) -> RecoveryReporter:
    """Report on a recovery manager just built."""
    reporter = RecoveryReporter(named)
    named.events.subscribe(reporter.count)
    named.events.subscribe(reporter.log)
    named.events.subscribe(reporter.alert)
    failures.watch(named.events)
    return reporter
