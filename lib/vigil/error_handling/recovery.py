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
   for a custom category (below), ``CRITICAL`` answers its row's CRITICAL action instead;
3. a fallback registered for the category (:meth:`ErrorRecoveryManager.register_fallback`) ->
   ``fallback``, with the callable on ``action.fallback``;
4. a transient error (network, connection, timeout; see :func:`is_transient`, or the caller's
   ``transient=`` when it knows the error's nature) -> ``retry``;
5. the category x severity table: :data:`DEFAULT_POLICY` below, plus a row per custom category.

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

**Your own categories.** The seven above are :class:`ErrorCategory` members; an application adds
its own, each with its row of the table (the actions for LOW, MEDIUM, HIGH, CRITICAL), by config
or by code::

    error_handling:
      recovery:
        categories: ["PAYMENTS=retry/retry/fallback/abort", "SEARCH=skip/retry/fallback/abort"]
        policy_overrides: ["PAYMENTS.HIGH=abort"]   # overrides may name them too

    # VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES=PAYMENTS=retry/retry/fallback/abort,SEARCH=...
    payments = error_recovery_manager.add_category("payments", ["retry", "retry", "fallback",
                                                               "abort"])
    error_recovery_manager.handle_error(err, "payments", "high", "Billing", "charge")

A custom category is a :class:`CustomCategory`, a ``str`` whose value is the lower-case name
(``"payments"``, the label value of the metrics, logs and alerts below) with ``.name`` upper-case
(``"PAYMENTS"``), like an :class:`ErrorCategory` member; wherever a category is taken it may be
given as either spelling, in any case. Only the seven built-ins and the categories configured or
added exist, so the ``category`` label stays a small set; any other name raises ``ValueError``
listing both. The rules above apply to custom categories as to built-in ones, with two
differences: the ``CONFIGURATION`` rule is the built-in category's only, and a ``CRITICAL`` error
answers the row's CRITICAL action (``abort`` in every built-in row, and what a custom row should
normally say too) before any fallback or transient rule, so that column means what it says.

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
import contextlib
import dataclasses
import socket
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client import CollectorRegistry

from vigil._lazy import shared_objects
from vigil.clock import SYSTEM_CLOCK, Clock, format_rfc3339
from vigil.config import (
    ERROR_SEVERITIES,
    RECOVERY_ACTIONS,
    VigilConfig,
    check_category_name,
    get_config,
    on_configure,
    parse_category_entry,
    parse_policy_override,
    with_arguments,
)
from vigil.error_handling.breaker import CircuitBreaker
from vigil.events import EventPublisher, Hook, ReportTo
from vigil.monitoring import instruments
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import current_span
from vigil.monitoring.logger_protocol import Logger
from vigil.text import safe_text
from vigil.vocabulary import CaseInsensitiveStrEnum, Severity

__all__ = [
    "Category",
    "CustomCategory",
    "DEFAULT_POLICY",
    "ErrorCategory",
    "ErrorHandled",
    "ErrorRecord",
    "ErrorRecoveryManager",
    "ErrorSeverity",
    "NamedRecovery",
    "RecoveryAction",
    "RecoveryActionType",
    "RecoveryPolicy",
    "error_recovery_manager",
    "is_transient",
]


class ErrorCategory(CaseInsensitiveStrEnum):
    """Where an error comes from (the seed's categories). Values are Prometheus label values.

    Applications add their own with :class:`CustomCategory` (see the module's documentation).
    """

    FILE_PROCESSING = "file_processing"
    AGENT_EXECUTION = "agent_execution"
    MEMORY_STORAGE = "memory_storage"
    VECTOR_DB = "vector_db"
    API_CALL = "api_call"
    CONFIGURATION = "configuration"
    SYSTEM = "system"


class CustomCategory(str):
    """A category of the application's own, beside the seven :class:`ErrorCategory` members.

    A ``str`` (so a label value, a JSON string and a dict key as it is) whose value is the
    lower-case name: ``CustomCategory("Payments") == "payments"``, ``str()`` of it is
    ``"payments"``, ``.value`` is ``"payments"`` and ``.name`` ``"PAYMENTS"``, the same shape
    as an :class:`ErrorCategory` member, so code written for one works with the other.

    The name: a letter, then letters, digits or ``_``, at most 64 characters, case-insensitive,
    not a built-in name (``ValueError`` otherwise). Making one does not make it known: a
    manager only takes the categories of its policy's table
    (:meth:`ErrorRecoveryManager.add_category`, ``error_handling.recovery.categories``).
    """

    __slots__ = ()

    def __new__(cls, name: str) -> CustomCategory:
        return super().__new__(cls, check_category_name(name).lower())

    @property
    def name(self) -> str:
        """The upper-case name, as config entries and override keys spell it."""
        return self.upper()

    @property
    def value(self) -> str:
        """The lower-case name: the ``category`` label value of metrics, logs and alerts."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"CustomCategory({self.value!r})"


Category = ErrorCategory | CustomCategory
"""A category as the recovery manager keeps it: built-in or the application's own."""


ErrorSeverity = Severity
"""How bad an error is: :class:`vigil.vocabulary.Severity` (LOW < MEDIUM < HIGH < CRITICAL by
``.rank``), the same scale and words as alerts."""


class RecoveryActionType(CaseInsensitiveStrEnum):
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
    category: Category
    severity: ErrorSeverity
    delay: float | None = None  # seconds to wait before retrying, for "retry"
    fallback: Callable[..., Any] | None = field(default=None, compare=False)


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


def _category(value: Category | str, custom: Mapping[str, CustomCategory]) -> Category:
    """``value`` as a built-in or one of ``custom`` (by lower-case value); ValueError if none."""
    if isinstance(value, ErrorCategory):
        return value
    text = str(value)
    with contextlib.suppress(ValueError):
        return ErrorCategory(text)  # by name or value, any case
    found = custom.get(text.strip().lower())
    if found is not None:
        return found
    mine = (f"; custom: {', '.join(c.name for c in custom.values())}" if custom else
            "; no custom ones (add them with ErrorRecoveryManager.add_category() or "
            "error_handling.recovery.categories)")
    raise ValueError(f"category {value!r} is not one of the built-in "
                     f"{', '.join(c.name for c in ErrorCategory)}{mine}")


def _row(actions: Sequence[RecoveryActionType | str] | str) -> tuple[RecoveryActionType, ...]:
    """Four actions (LOW, MEDIUM, HIGH, CRITICAL) from names, members or ``"a/b/c/d"``."""
    items = actions.split("/") if isinstance(actions, str) else list(actions)
    if len(items) != len(ERROR_SEVERITIES):
        raise ValueError(f"a category's row needs {len(ERROR_SEVERITIES)} actions (for "
                         f"{', '.join(ERROR_SEVERITIES)}), got {len(items)}: {actions!r}")
    row = []
    for item in items:
        try:
            row.append(item if isinstance(item, RecoveryActionType)
                       else RecoveryActionType(str(item)))
        except ValueError:
            raise ValueError(f"action {item!r} is not one of "
                             f"{', '.join(RECOVERY_ACTIONS)}") from None
    return tuple(row)


def _severity(value: ErrorSeverity | str) -> ErrorSeverity:
    return value if isinstance(value, ErrorSeverity) else ErrorSeverity.parse(value, "severity")


OverrideKey = tuple[Category | None, ErrorSeverity | None]  # None matches any


def _default_table() -> dict[Category, tuple[RecoveryActionType, ...]]:
    return dict(DEFAULT_POLICY.items())


@dataclass(frozen=True)
class RecoveryPolicy:
    """The decision table plus overrides. Immutable; build a new one to change it.

    ``table`` maps each category to its actions for LOW, MEDIUM, HIGH, CRITICAL: the seven
    built-in rows (:data:`DEFAULT_POLICY`) and a row per :class:`CustomCategory`, whose keys
    are the custom categories this policy knows (:meth:`with_category` adds one).
    ``overrides`` maps ``(category or None, severity or None)`` to an action; ``None`` is a
    wildcard and the most specific match wins. :meth:`from_config` reads
    ``error_handling.recovery.categories`` and ``policy_overrides``.
    """

    table: Mapping[Category, tuple[RecoveryActionType, ...]] = field(
        default_factory=_default_table)
    overrides: Mapping[OverrideKey, RecoveryActionType] = field(default_factory=dict)
    retry_delay: float = 1.0

    @classmethod
    def from_config(cls, config: VigilConfig,
                    overrides: Mapping[OverrideKey, RecoveryActionType | str] | None = None
                    ) -> RecoveryPolicy:
        """The default table plus the config's categories, with the config's overrides, then
        ``overrides`` on top."""
        settings = config.error_handling.recovery
        table = _default_table()
        for entry in settings.categories:
            name, row = parse_category_entry(entry)
            table[CustomCategory(name)] = _row(row)
        names = tuple(c.name for c in table if isinstance(c, CustomCategory))
        merged: dict[OverrideKey, RecoveryActionType] = {}
        for entry in settings.policy_overrides:
            cat, sev, action = parse_policy_override(entry, categories=names)
            merged[(None if cat == "*" else
                    ErrorCategory[cat] if cat in ErrorCategory.__members__ else
                    CustomCategory(cat),
                    None if sev == "*" else ErrorSeverity.parse(sev))] = RecoveryActionType(action)
        for key, action in (overrides or {}).items():
            merged[key] = RecoveryActionType(action)
        return cls(table=table, overrides=merged,
                   retry_delay=config.error_handling.retry.default_initial_delay)

    @property
    def custom_categories(self) -> tuple[CustomCategory, ...]:
        """The application's own categories this policy has a row for, in the order added."""
        return tuple(c for c in self.table if isinstance(c, CustomCategory))

    @property
    def categories(self) -> tuple[Category, ...]:
        """Every category this policy takes: the seven built-ins, then the custom ones."""
        return (*ErrorCategory, *self.custom_categories)

    def resolve_category(self, value: Category | str) -> Category:
        """``value`` (a category, or its name or value in any case) as this policy knows it.

        ``ValueError``, listing the built-in and the custom categories, for any other.
        """
        if isinstance(value, ErrorCategory | CustomCategory) and value in self.table:
            return value
        return _category(value, {c.value: c for c in self.custom_categories})

    def with_category(self, name: CustomCategory | str,
                      actions: Sequence[RecoveryActionType | str] | str) -> RecoveryPolicy:
        """This policy with a row for the custom category ``name`` (replacing its old row).

        ``actions``: the actions for LOW, MEDIUM, HIGH and CRITICAL, as
        :class:`RecoveryActionType` members or names (``["retry", "retry", "fallback",
        "abort"]``, or ``"retry/retry/fallback/abort"`` as in config). ``ValueError`` for a
        built-in or malformed name, a wrong count or an unknown action. Overrides are kept.
        """
        category = name if isinstance(name, CustomCategory) else CustomCategory(name)
        row = _row(actions)
        table = {k: v for k, v in self.table.items() if k != category}
        table[category] = row
        return dataclasses.replace(self, table=table)

    def decide(self, error: BaseException, category: Category | str,
               severity: ErrorSeverity | str, fallback: Callable[..., Any] | None = None, *,
               transient: bool | None = None) -> RecoveryAction:
        """The action for this error; pure (no I/O, no state).

        ``category`` is one of :attr:`categories` (or its name or value); a custom one's row
        comes from :attr:`table`. ``transient`` states the error's nature when the caller knows
        it (an unsupported file format is never transient, whatever exception the parser
        raised); ``None`` asks :func:`is_transient`.
        """
        category, severity = self.resolve_category(category), _severity(severity)
        for key in ((category, severity), (category, None), (None, severity), (None, None)):
            if key in self.overrides:
                return self._action(self.overrides[key], "override for "
                                    f"{key[0].name if key[0] else '*'}."
                                    f"{key[1].name if key[1] else '*'}",
                                    category, severity, fallback)
        if severity is ErrorSeverity.CRITICAL:
            if isinstance(category, CustomCategory):  # its row's own CRITICAL column decides
                return self._action(self.table[category][severity.rank],
                                    f"policy table: {category.name} x CRITICAL",
                                    category, severity, fallback)
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

    def _action(self, action: RecoveryActionType, reason: str, category: Category,
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
            _severity(alert_min_severity)
        self._arguments: dict[str, tuple[str, object]] = {
            "history_size": ("history_size", history_size)}
        settings = with_arguments(config.error_handling.recovery, self._arguments)
        self.alert_min_severity = self._fixed_severity if self._fixed_severity is not None \
            else _severity(settings.alert_min_severity)
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
        cat, sev = policy.resolve_category(category), _severity(severity)
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
        row = _row(actions)
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
                self.alert_min_severity = _severity(settings.alert_min_severity)
            if self._history.maxlen != settings.history_size:
                self._history = deque(self._history, maxlen=settings.history_size)


def _build_shared_manager() -> ErrorRecoveryManager:
    manager = ErrorRecoveryManager()
    on_configure(manager.reconfigure)
    return manager


error_recovery_manager: ErrorRecoveryManager
"""The seed's process-wide manager; built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"error_recovery_manager": _build_shared_manager})
