"""The error recovery manager: classify a handled error, decide what to do, and report it.

The seed's API::

    action = error_recovery_manager.handle_error(
        error=exception, category=ErrorCategory.FILE_PROCESSING, severity=ErrorSeverity.HIGH,
        component="FileProcessor", operation="read_file", metadata={"file_path": "/path/to/file"})
    if action.action_type == "retry": ...
    elif action.action_type == "fallback": ...

**The decision is data.** :class:`RecoveryPolicy` answers in this order, first match wins:

1. an override, from the user (``RecoveryPolicy(overrides=...)``) or from config
   (``error_handling.recovery.policy_overrides: ["API_CALL.HIGH=fallback", "VECTOR_DB.*=retry"]``);
2. ``CRITICAL`` severity or the ``CONFIGURATION`` category -> ``abort`` (retrying cannot fix them);
3. a fallback registered for the category (:meth:`ErrorRecoveryManager.register_fallback`) ->
   ``fallback``, with the callable on ``action.fallback``;
4. a transient error (network, connection, timeout; see :func:`is_transient`, or the caller's
   ``transient=`` when it knows the error's nature) -> ``retry``;
5. :data:`DEFAULT_POLICY`, the category x severity table below.

=================  =========  =========  =========  ========
category           LOW        MEDIUM     HIGH       CRITICAL
=================  =========  =========  =========  ========
FILE_PROCESSING    skip       skip       fallback   abort
AGENT_EXECUTION    retry      retry      abort      abort
MEMORY_STORAGE     retry      retry      fallback   abort
VECTOR_DB          retry      retry      fallback   abort
API_CALL           retry      retry      retry      abort
CONFIGURATION      abort      abort      abort      abort
SYSTEM             skip       retry      abort      abort
=================  =========  =========  =========  ========

A ``retry`` action carries ``delay`` = ``error_handling.retry.default_initial_delay``.

**Every handled error is reported the same way:** ``vigil_errors_total{category,severity,
component}``, ``vigil_recovery_actions_total{category,action}``, one ERROR log line (with the
current trace id and the exception's stack), an alert at ``alert_min_severity`` (default HIGH) and
above, and a record in a bounded history read by :meth:`ErrorRecoveryManager.get_error_stats`.

Reporting never raises into the caller's ``except`` block, whatever it is given: the component,
operation and the error's message become text by :mod:`vigil.text`'s rule (a lone surrogate, as
in an ``os.fsdecode``-d file name, becomes U+FFFD; an error whose ``__str__`` raises is
``<unprintable TypeName>``) before they reach a label, the log line, the alert or the history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock, format_rfc3339
from vigil.config import VigilConfig, get_config, on_configure, parse_policy_override
from vigil.error_handling.breaker import CircuitBreaker
from vigil.monitoring import instruments
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import current_span
from vigil.monitoring.logs import StructuredLogger
from vigil.text import safe_text

__all__ = [
    "DEFAULT_POLICY",
    "ErrorCategory",
    "ErrorRecord",
    "ErrorRecoveryManager",
    "ErrorSeverity",
    "RecoveryAction",
    "RecoveryActionType",
    "RecoveryPolicy",
    "error_recovery_manager",
    "is_transient",
]


class ErrorCategory(StrEnum):
    """Where an error comes from (the seed's categories). Values are Prometheus label values."""

    FILE_PROCESSING = "file_processing"
    AGENT_EXECUTION = "agent_execution"
    MEMORY_STORAGE = "memory_storage"
    VECTOR_DB = "vector_db"
    API_CALL = "api_call"
    CONFIGURATION = "configuration"
    SYSTEM = "system"


class ErrorSeverity(StrEnum):
    """How bad an error is; ordered LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(ErrorSeverity)}


class RecoveryActionType(StrEnum):
    """What the caller should do next. A ``str`` enum: ``action_type == "retry"`` works."""

    RETRY = "retry"
    FALLBACK = "fallback"
    SKIP = "skip"
    ABORT = "abort"


_R, _F, _S, _A = (RecoveryActionType.RETRY, RecoveryActionType.FALLBACK,
                  RecoveryActionType.SKIP, RecoveryActionType.ABORT)
_C = ErrorCategory

DEFAULT_POLICY: Mapping[ErrorCategory, tuple[RecoveryActionType, ...]] = {
    # LOW, MEDIUM, HIGH, CRITICAL
    _C.FILE_PROCESSING: (_S, _S, _F, _A),
    _C.AGENT_EXECUTION: (_R, _R, _A, _A),
    _C.MEMORY_STORAGE: (_R, _R, _F, _A),
    _C.VECTOR_DB: (_R, _R, _F, _A),
    _C.API_CALL: (_R, _R, _R, _A),
    _C.CONFIGURATION: (_A, _A, _A, _A),
    _C.SYSTEM: (_S, _R, _A, _A),
}


@dataclass(frozen=True, slots=True)
class RecoveryAction:
    """The manager's answer: ``action_type`` (retry/fallback/skip/abort) and why."""

    action_type: RecoveryActionType
    reason: str
    category: ErrorCategory
    severity: ErrorSeverity
    delay: float | None = None  # seconds to wait before retrying, for "retry"
    fallback: Callable[..., Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One handled error, as kept in the manager's bounded history."""

    timestamp: str
    category: ErrorCategory
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


# Exception classes whose name says "try again later" in libraries vigil cannot import
# (requests, httpx, aiohttp, grpc, redis...): matched by name along the MRO.
_TRANSIENT_NAME_PARTS = ("timeout", "connection", "temporar", "unavailable", "throttl",
                         "ratelimit", "toomanyrequests")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` looks like a network, connection or timeout failure worth retrying."""
    if isinstance(error, ConnectionError | TimeoutError | asyncio.TimeoutError | socket.timeout):
        return True
    names = (cls.__name__.lower() for cls in type(error).__mro__)
    return any(part in name for name in names for part in _TRANSIENT_NAME_PARTS)


def _category(value: ErrorCategory | str) -> ErrorCategory:
    if isinstance(value, ErrorCategory):
        return value
    text = str(value)
    for category in ErrorCategory:
        if text.upper() == category.name or text.lower() == category.value:
            return category
    raise ValueError(f"category {value!r} is not one of "
                     f"{', '.join(c.name for c in ErrorCategory)}")


def _severity(value: ErrorSeverity | str) -> ErrorSeverity:
    if isinstance(value, ErrorSeverity):
        return value
    try:
        return ErrorSeverity(str(value).lower())
    except ValueError:
        raise ValueError(f"severity {value!r} is not one of "
                         f"{', '.join(s.name for s in ErrorSeverity)}") from None


OverrideKey = tuple[ErrorCategory | None, ErrorSeverity | None]  # None matches any


@dataclass(frozen=True)
class RecoveryPolicy:
    """The decision table plus overrides. Immutable; build a new one to change it.

    ``overrides`` maps ``(category or None, severity or None)`` to an action; ``None`` is a
    wildcard and the most specific match wins. :meth:`from_config` reads
    ``error_handling.recovery.policy_overrides``.
    """

    table: Mapping[ErrorCategory, tuple[RecoveryActionType, ...]] = field(
        default_factory=lambda: dict(DEFAULT_POLICY))
    overrides: Mapping[OverrideKey, RecoveryActionType] = field(default_factory=dict)
    retry_delay: float = 1.0

    @classmethod
    def from_config(cls, config: VigilConfig,
                    overrides: Mapping[OverrideKey, RecoveryActionType | str] | None = None
                    ) -> RecoveryPolicy:
        """The default table with the config's overrides, then ``overrides`` on top."""
        merged: dict[OverrideKey, RecoveryActionType] = {}
        for entry in config.error_handling.recovery.policy_overrides:
            cat, sev, action = parse_policy_override(entry)
            merged[(None if cat == "*" else ErrorCategory[cat],
                    None if sev == "*" else ErrorSeverity[sev])] = RecoveryActionType(action)
        for key, action in (overrides or {}).items():
            merged[key] = RecoveryActionType(action)
        return cls(overrides=merged,
                   retry_delay=config.error_handling.retry.default_initial_delay)

    def decide(self, error: BaseException, category: ErrorCategory, severity: ErrorSeverity,
               fallback: Callable[..., Any] | None = None, *,
               transient: bool | None = None) -> RecoveryAction:
        """The action for this error; pure (no I/O, no state).

        ``transient`` states the error's nature when the caller knows it (an unsupported file
        format is never transient, whatever exception the parser raised); ``None`` asks
        :func:`is_transient`.
        """
        for key in ((category, severity), (category, None), (None, severity), (None, None)):
            if key in self.overrides:
                return self._action(self.overrides[key], "override for "
                                    f"{key[0].name if key[0] else '*'}."
                                    f"{key[1].name if key[1] else '*'}",
                                    category, severity, fallback)
        if severity is ErrorSeverity.CRITICAL:
            return self._action(_A, "critical severity", category, severity, None)
        if category is ErrorCategory.CONFIGURATION:
            return self._action(_A, "configuration errors do not heal by retrying",
                                category, severity, None)
        if fallback is not None:
            return self._action(_F, f"a fallback is registered for {category.name}",
                                category, severity, fallback)
        if transient if transient is not None else is_transient(error):
            return self._action(_R, f"{type(error).__name__} is transient", category, severity,
                                None)
        action = self.table[category][severity.rank]
        return self._action(action, f"policy table: {category.name} x {severity.name}",
                            category, severity, None)

    def _action(self, action: RecoveryActionType, reason: str, category: ErrorCategory,
                severity: ErrorSeverity, fallback: Callable[..., Any] | None) -> RecoveryAction:
        return RecoveryAction(action_type=action, reason=reason, category=category,
                              severity=severity,
                              delay=self.retry_delay if action is _R else None,
                              fallback=fallback if action is _F else None)


class ErrorRecoveryManager:
    """Central coordinator: decides with a :class:`RecoveryPolicy`, reports every error.

    ``policy`` defaults to :meth:`RecoveryPolicy.from_config`; ``alert_min_severity`` and
    ``history_size`` to ``error_handling.recovery.*``. Also the one-per-name registry of circuit
    breakers (:meth:`get_circuit_breaker`) and of fallbacks (:meth:`register_fallback`).
    """

    def __init__(self, *, policy: RecoveryPolicy | None = None,
                 alert_min_severity: ErrorSeverity | str | None = None,
                 history_size: int | None = None, clock: Clock | None = None,
                 registry: CollectorRegistry | None = None,
                 alert_manager: AlertManager | None = None,
                 logger: StructuredLogger | None = None) -> None:
        config = get_config()
        settings = config.error_handling.recovery
        self._fixed_policy = policy is not None
        self.policy = policy if policy is not None else RecoveryPolicy.from_config(config)
        self.alert_min_severity = _severity(alert_min_severity if alert_min_severity is not None
                                            else settings.alert_min_severity)
        if history_size is not None:  # validated by the settings class, like the config file
            settings = dataclasses.replace(settings, history_size=history_size)
        self._history: deque[ErrorRecord] = deque(maxlen=settings.history_size)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._registry = registry
        self._alerts = alert_manager
        self._logger = logger if logger is not None else StructuredLogger("vigil.recovery")
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._fallbacks: dict[ErrorCategory, Callable[..., Any]] = {}
        self._attempts: OrderedDict[Hashable, int] = OrderedDict()
        self._total = 0
        reg = self.registry
        self._errors = instruments.counter(
            reg, "vigil_errors_total", "Errors handled by the recovery manager.",
            ["category", "severity", "component"])
        self._actions = instruments.counter(
            reg, "vigil_recovery_actions_total", "Recovery actions decided, by category.",
            ["category", "action"])

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from vigil.monitoring.metrics import performance_monitor

            return performance_monitor.registry
        return self._registry

    @property
    def alert_manager(self) -> AlertManager:
        if self._alerts is None:
            from vigil.monitoring.alerts import alert_manager

            return alert_manager
        return self._alerts

    # --- the seed's API -------------------------------------------------------------------

    def handle_error(self, error: BaseException, category: ErrorCategory | str,
                     severity: ErrorSeverity | str, component: str, operation: str,
                     metadata: Mapping[str, Any] | None = None, *,
                     transient: bool | None = None) -> RecoveryAction:
        """Decide what to do about ``error`` and report it (metrics, log, alert, history).

        ``transient``: whether the error is worth retrying, when the caller knows better than
        the exception's class (see :meth:`RecoveryPolicy.decide`).
        """
        cat, sev = _category(category), _severity(severity)
        with self._lock:
            fallback = self._fallbacks.get(cat)
        action = self.policy.decide(error, cat, sev, fallback, transient=transient)
        self._report(error, cat, sev, component, operation, dict(metadata or {}), action)
        return action

    def get_circuit_breaker(self, name: str, **overrides: Any) -> CircuitBreaker:
        """The breaker called ``name``, created on first use with ``overrides``.

        One instance per name, safe under concurrent first calls. ``overrides`` (any
        :class:`CircuitBreaker` argument) only apply when the breaker is created.
        """
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                if self._registry is not None:
                    overrides.setdefault("registry", self._registry)
                if self._alerts is not None:
                    overrides.setdefault("alert_manager", self._alerts)
                breaker = CircuitBreaker(name=name, **overrides)
                self._breakers[name] = breaker
            return breaker

    def circuit_breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers created through :meth:`get_circuit_breaker`, by name."""
        with self._lock:
            return dict(self._breakers)

    def register_fallback(self, category: ErrorCategory | str,
                          fallback: Callable[..., Any]) -> Callable[..., Any]:
        """Make errors of ``category`` answer ``fallback`` (unless critical or overridden)."""
        with self._lock:
            self._fallbacks[_category(category)] = fallback
        return fallback

    def unregister_fallback(self, category: ErrorCategory | str) -> None:
        with self._lock:
            self._fallbacks.pop(_category(category), None)

    def has_fallback(self, category: ErrorCategory | str) -> bool:
        with self._lock:
            return _category(category) in self._fallbacks

    def get_error_stats(self) -> dict[str, Any]:
        """Counts over the retained history (``total`` counts every error ever handled)."""
        with self._lock:
            records = list(self._history)
            total = self._total
        return {
            "total": total,
            "retained": len(records),
            "by_category": dict(Counter(str(r.category) for r in records)),
            "by_severity": dict(Counter(str(r.severity) for r in records)),
            "by_component": dict(Counter(r.component for r in records)),
            "by_action": dict(Counter(str(r.action) for r in records)),
            "by_error_type": dict(Counter(r.error_type for r in records)),
        }

    def get_recent_errors(self, count: int = 50) -> list[ErrorRecord]:
        """The newest ``count`` handled errors, newest first."""
        with self._lock:
            records = list(self._history)
        return records[::-1][:max(0, count)]

    # --- attempt counting for the specialised handlers ------------------------------------

    _MAX_TRACKED = 10_000  # attempt counters kept; the least recently used go first

    def count_attempt(self, key: Hashable) -> int:
        """Add one to the attempts recorded for ``key`` and return the new count."""
        with self._lock:
            count = self._attempts.pop(key, 0) + 1
            self._attempts[key] = count
            while len(self._attempts) > self._MAX_TRACKED:
                self._attempts.popitem(last=False)
            return count

    def reset_attempts(self, key: Hashable) -> None:
        """Forget the attempts for ``key`` (call it when the operation succeeded)."""
        with self._lock:
            self._attempts.pop(key, None)

    # --- reporting ------------------------------------------------------------------------

    def _report(self, error: BaseException, category: ErrorCategory, severity: ErrorSeverity,
                component: str, operation: str, metadata: dict[str, Any],
                action: RecoveryAction) -> None:
        span = current_span()
        component, operation, text = safe_text(component), safe_text(operation), safe_text(error)
        error_type = type(error).__name__
        record = ErrorRecord(
            timestamp=format_rfc3339(self._clock.time()), category=category, severity=severity,
            component=component, operation=operation, error_type=error_type,
            message=text, action=action.action_type,
            trace_id=span.trace_id if span else None, metadata=metadata)
        with self._lock:
            self._history.append(record)
            self._total += 1
        self._errors.labels(category.value, severity.value, component).inc()
        self._actions.labels(category.value, action.action_type.value).inc()
        self._logger.error(
            f"{component}.{operation} failed: {error_type}: {text}",
            metadata={**metadata, "category": category.value, "severity": severity.value,
                      "component": component, "operation": operation,
                      "action": action.action_type.value, "reason": action.reason},
            exc_info=error)
        if severity.rank >= self.alert_min_severity.rank:
            self.alert_manager.send_alert(
                severity.value, component,
                f"{operation} failed with {error_type}: {text}",
                metadata={**metadata, "action": action.action_type.value},
                labels={"category": category.value, "operation": operation})

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply new ``error_handling.recovery`` settings (the shared manager follows configure)."""
        settings = config.error_handling.recovery
        with self._lock:
            if not self._fixed_policy:
                self.policy = RecoveryPolicy.from_config(config)
            self.alert_min_severity = _severity(settings.alert_min_severity)
            if self._history.maxlen != settings.history_size:
                self._history = deque(self._history, maxlen=settings.history_size)


error_recovery_manager = ErrorRecoveryManager()


@on_configure
def _on_configure(config: VigilConfig) -> None:
    error_recovery_manager.reconfigure(config)
