"""What the recovery manager keeps and publishes: :class:`ErrorRecord` (one handled error, as
in the bounded history), :class:`ErrorHandled` (the event per handled error) and
:class:`NamedRecovery` (what a manager announces on ``ErrorRecoveryManager.named``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.error_handling.recovery.categories import Category, ErrorSeverity, RecoveryActionType
from vigil.error_handling.recovery.policy import RecoveryAction
from vigil.events import EventPublisher, ReportTo

__all__ = ["ErrorHandled", "ErrorRecord", "NamedRecovery"]


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One handled error, as kept in the manager's bounded history."""

    timestamp: str
    category: Category
    severity: ErrorSeverity
    component: str
    operation: str
    error_type: str
    message: str
    action: RecoveryActionType
    trace_id: str | None
    metadata: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "category": str(self.category),
                "severity": str(self.severity), "component": self.component,
                "operation": self.operation, "error_type": self.error_type,
                "message": self.message, "action": str(self.action), "trace_id": self.trace_id,
                "metadata": dict(self.metadata)}


@dataclass(frozen=True, slots=True)
class ErrorHandled:
    """The event of one handled error: its ``record`` (as kept in the history), the
    ``error`` itself (for the log line's stack), the ``action`` decided, and whether its
    severity reaches the manager's ``alert_min_severity`` (``alert``)."""

    record: ErrorRecord
    error: BaseException
    action: RecoveryAction
    alert: bool


@dataclass(frozen=True, slots=True)
class NamedRecovery:
    """A recovery manager was built: what it announces on ``ErrorRecoveryManager.named``."""

    registry: CollectorRegistry
    report_to: ReportTo
    events: EventPublisher[ErrorHandled]

