"""The manager: :class:`ErrorRecoveryManager` decides with its policy, keeps the bounded
history, the fallbacks and one breaker per name, and publishes an :class:`ErrorHandled` per
handled error (vigil.reporting counts, logs and alerts them); and the factory of the shared
``error_recovery_manager``, which lives in the package (built on first use there, so that
replacing it there is seen everywhere)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock, format_rfc3339
from vigil.config import VigilConfig, get_config, on_configure, with_arguments
from vigil.error_handling.breaker import CircuitBreaker
from vigil.error_handling.recovery.categories import (
    Category,
    CustomCategory,
    ErrorCategory,
    ErrorSeverity,
    RecoveryActionType,
    parse_row,
    parse_severity,
)
from vigil.error_handling.recovery.events import ErrorHandled, ErrorRecord, NamedRecovery
from vigil.error_handling.recovery.policy import RecoveryAction, RecoveryPolicy
from vigil.events import EventPublisher, Hook, ReportTo
from vigil.monitoring import instruments
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import current_span
from vigil.monitoring.logger_protocol import Logger
from vigil.text import safe_text

__all__ = ["ErrorRecoveryManager", "build_shared_manager"]


class ErrorRecoveryManager:
    """Central coordinator: decides with a :class:`RecoveryPolicy`, reports every error.

    ``policy`` defaults to :meth:`RecoveryPolicy.from_config`; ``alert_min_severity`` and
    ``history_size`` to ``error_handling.recovery.*``. Also the one-per-name registry of circuit
    breakers (:meth:`get_circuit_breaker`) and of fallbacks (:meth:`register_fallback`).

    The categories it takes are its policy's (:attr:`RecoveryPolicy.categories`): the seven
    built-ins, ``error_handling.recovery.categories`` (when the policy comes from config) and
    those added by :meth:`add_category`. :meth:`reconfigure` rebuilds a config-made policy from
    the new config and then adds the :meth:`add_category` rows again, so categories added by
    code survive a ``vigil.configure()`` and win over a config entry of the same name, while
    config-made ones follow the config (dropped when it drops them). A policy given as
    ``policy=`` is kept as it is by :meth:`reconfigure`, plus what :meth:`add_category` added.
    """

    named: ClassVar[Hook[NamedRecovery]] = Hook("recovery")
    """Announces every manager when it is built (:class:`NamedRecovery`); vigil.reporting
    attaches its metrics, log lines and alerts here."""

    def __init__(self, *, policy: RecoveryPolicy | None = None,
                 alert_min_severity: ErrorSeverity | str | None = None,
                 history_size: int | None = None, clock: Clock | None = None,
                 registry: CollectorRegistry | None = None,
                 alert_manager: AlertManager | None = None,
                 logger: Logger | None = None) -> None:
        config = get_config()
        self._fixed_policy = policy is not None
        self.policy = policy if policy is not None else RecoveryPolicy.from_config(config)
        # Given arguments win over the configuration, now and after every configure().
        self._fixed_severity = None if alert_min_severity is None else \
            parse_severity(alert_min_severity)
        self._arguments: dict[str, tuple[str, object]] = {
            "history_size": ("history_size", history_size)}
        settings = with_arguments(config.error_handling.recovery, self._arguments)
        self.alert_min_severity = self._fixed_severity if self._fixed_severity is not None \
            else parse_severity(settings.alert_min_severity)
        self._history: deque[ErrorRecord] = deque(maxlen=settings.history_size)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        # Carried for the reporting (vigil.reporting.recovery) and the breakers it makes.
        self.report_to = ReportTo(registry, logger, alert_manager)
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._fallbacks: dict[Category, Callable[..., Any]] = {}
        self._added: dict[CustomCategory, tuple[RecoveryActionType, ...]] = {}
        self._attempts: OrderedDict[Hashable, int] = OrderedDict()
        self._total = 0
        self.events: EventPublisher[ErrorHandled] = EventPublisher("recovery", self.registry)
        self.named.announce(NamedRecovery(self.registry, self.report_to, self.events))

    @property
    def registry(self) -> CollectorRegistry:
        """The registry its metrics are recorded on (``registry=``, else the default)."""
        registry = self.report_to.registry
        return registry if registry is not None else instruments.default_registry()

    @property
    def alert_manager(self) -> AlertManager:
        """Where its alerts go (``alert_manager=``, else the shared ``vigil.alert_manager``)."""
        given: AlertManager | None = self.report_to.alert_manager
        if given is None:
            from vigil.monitoring import alerts

            return alerts.alert_manager
        return given

    # --- the seed's API -------------------------------------------------------------------

    def handle_error(self, error: BaseException, category: ErrorCategory | str,
                     severity: ErrorSeverity | str, component: str, operation: str,
                     metadata: Mapping[str, Any] | None = None, *,
                     transient: bool | None = None) -> RecoveryAction:
        """Decide what to do about ``error`` and report it (metrics, log, alert, history).

        ``category``: an :class:`ErrorCategory`, one of this manager's custom categories
        (:meth:`add_category`, ``error_handling.recovery.categories``), or the name or value of
        either in any case; ``ValueError`` listing both kinds for any other.
        ``transient``: whether the error is worth retrying, when the caller knows better than
        the exception's class (see :meth:`RecoveryPolicy.decide`).
        """
        policy = self.policy  # one policy for the whole decision, even if it is replaced
        cat, sev = policy.resolve_category(category), parse_severity(severity)
        with self._lock:
            fallback = self._fallbacks.get(cat)
        action = policy.decide(error, cat, sev, fallback, transient=transient)
        self._report(error, cat, sev, component, operation, dict(metadata or {}), action)
        return action

    def add_category(self, name: CustomCategory | str,
                     actions: Sequence[RecoveryActionType | str] | str) -> CustomCategory:
        """Add the application's own category ``name`` with its actions for LOW, MEDIUM, HIGH,
        CRITICAL (see :meth:`RecoveryPolicy.with_category`) and return it.

        From then on :meth:`handle_error`, :meth:`register_fallback` and the others take it by
        its name or value in any case, and its label value is ``name.lower()``. Adding a name
        again replaces its row. Survives :meth:`reconfigure`. ``ValueError`` for a built-in or
        malformed name, a wrong count or an unknown action. Thread-safe.
        """
        category = name if isinstance(name, CustomCategory) else CustomCategory(name)
        row = parse_row(actions)
        with self._lock:
            self.policy = self.policy.with_category(category, row)
            self._added[category] = row
        return category

    def get_circuit_breaker(self, name: str, **overrides: Any) -> CircuitBreaker:
        """The breaker called ``name``, created on first use with ``overrides``.

        One instance per name, safe under concurrent first calls. ``overrides`` (any
        :class:`CircuitBreaker` argument) only apply when the breaker is created.
        """
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                if self.report_to.registry is not None:
                    overrides.setdefault("registry", self.report_to.registry)
                if self.report_to.alert_manager is not None:
                    overrides.setdefault("alert_manager", self.report_to.alert_manager)
                breaker = CircuitBreaker(name=name, **overrides)
                self._breakers[name] = breaker
            return breaker

    def circuit_breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers created through :meth:`get_circuit_breaker`, by name."""
        with self._lock:
            return dict(self._breakers)

    def register_fallback(self, category: Category | str,
                          fallback: Callable[..., Any]) -> Callable[..., Any]:
        """Make errors of ``category`` answer ``fallback`` (unless critical or overridden)."""
        with self._lock:
            self._fallbacks[self.policy.resolve_category(category)] = fallback
        return fallback

    def unregister_fallback(self, category: Category | str) -> None:
        with self._lock:
            self._fallbacks.pop(self.policy.resolve_category(category), None)

    def has_fallback(self, category: Category | str) -> bool:
        with self._lock:
            return self.policy.resolve_category(category) in self._fallbacks

    def get_error_stats(self) -> dict[str, Any]:
        """Counts over the retained history (``total`` counts every error ever handled).

        ``by_category`` is keyed by the label value (``"vector_db"``, ``"payments"``).
        """
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

    def _report(self, error: BaseException, category: Category, severity: ErrorSeverity,
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
        self.events.publish(ErrorHandled(record, error, action,
                                         severity.rank >= self.alert_min_severity.rank))

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply new ``error_handling.recovery`` settings (the shared manager follows configure).

        A config-made policy is rebuilt (its categories and overrides from ``config``), then the
        categories of :meth:`add_category` are added again on top; a ``policy=`` given to the
        constructor is kept.
        """
        settings = with_arguments(config.error_handling.recovery, self._arguments)
        with self._lock:
            if not self._fixed_policy:
                policy = RecoveryPolicy.from_config(config)
                for category, row in self._added.items():
                    policy = policy.with_category(category, row)
                self.policy = policy
            if self._fixed_severity is None:
                self.alert_min_severity = parse_severity(settings.alert_min_severity)
            if self._history.maxlen != settings.history_size:
                self._history = deque(self._history, maxlen=settings.history_size)


def build_shared_manager() -> ErrorRecoveryManager:
    """The shared manager's factory (the package builds it on first use): one that follows
    ``configure()``."""
    manager = ErrorRecoveryManager()
    on_configure(manager.reconfigure)
    return manager
