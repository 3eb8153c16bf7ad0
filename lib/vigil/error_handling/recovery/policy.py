"""The decision: :class:`RecoveryPolicy` (the category x severity table plus overrides, and
the rules before it), :data:`DEFAULT_POLICY`, :class:`RecoveryAction` and :func:`is_transient`.
Pure: no I/O, no state beyond the frozen policy."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.config import VigilConfig, parse_category_entry, parse_policy_override
from vigil.error_handling.recovery.categories import (
    Category,
    CustomCategory,
    ErrorCategory,
    ErrorSeverity,
    RecoveryActionType,
    parse_category,
    parse_row,
    parse_severity,
)

__all__ = [
    "DEFAULT_POLICY",
    "OverrideKey",
    "RecoveryAction",
    "RecoveryPolicy",
    "default_table",
    "is_transient",
]

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



OverrideKey = tuple[Category | None, ErrorSeverity | None]  # None matches any


def default_table() -> dict[Category, tuple[RecoveryActionType, ...]]:
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
        default_factory=default_table)
    overrides: Mapping[OverrideKey, RecoveryActionType] = field(default_factory=dict)
    retry_delay: float = 1.0

    @classmethod
    def from_config(cls, config: VigilConfig,
                    overrides: Mapping[OverrideKey, RecoveryActionType | str] | None = None
                    ) -> RecoveryPolicy:
        """The default table plus the config's categories, with the config's overrides, then
        ``overrides`` on top."""
        settings = config.error_handling.recovery
        table = default_table()
        for entry in settings.categories:
            name, row = parse_category_entry(entry)
            table[CustomCategory(name)] = parse_row(row)
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
        return parse_category(value, {c.value: c for c in self.custom_categories})

    def with_category(self, name: CustomCategory | str,
                      actions: Sequence[RecoveryActionType | str] | str) -> RecoveryPolicy:
        """This policy with a row for the custom category ``name`` (replacing its old row).

        ``actions``: the actions for LOW, MEDIUM, HIGH and CRITICAL, as
        :class:`RecoveryActionType` members or names (``["retry", "retry", "fallback",
        "abort"]``, or ``"retry/retry/fallback/abort"`` as in config). ``ValueError`` for a
        built-in or malformed name, a wrong count or an unknown action. Overrides are kept.
        """
        category = name if isinstance(name, CustomCategory) else CustomCategory(name)
        row = parse_row(actions)
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
        category, severity = self.resolve_category(category), parse_severity(severity)
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

