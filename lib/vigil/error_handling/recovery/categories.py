"""The recovery manager's vocabulary: categories (built-in and custom), severities, actions,
and their parsing from names in any case (``ValueError`` naming what is allowed otherwise)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from vigil.config import ERROR_SEVERITIES, RECOVERY_ACTIONS, check_category_name
from vigil.vocabulary import CaseInsensitiveStrEnum, Severity

__all__ = [
    "Category",
    "CustomCategory",
    "ErrorCategory",
    "ErrorSeverity",
    "RecoveryActionType",
    "parse_category",
    "parse_row",
    "parse_severity",
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



def parse_category(value: Category | str, custom: Mapping[str, CustomCategory]) -> Category:
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


def parse_row(actions: Sequence[RecoveryActionType | str] | str) -> tuple[RecoveryActionType, ...]:
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


def parse_severity(value: ErrorSeverity | str) -> ErrorSeverity:
    return value if isinstance(value, ErrorSeverity) else ErrorSeverity.parse(value, "severity")
