"""The words of ``error_handling.recovery`` and its two kinds of text entry: the built-in
categories, severities and actions; ``CATEGORY.SEVERITY=action`` policy overrides; and
``NAME=LOW/MEDIUM/HIGH/CRITICAL`` custom categories with the rule for their names."""

from __future__ import annotations

import re

from vigil.config.errors import ConfigError
from vigil.vocabulary import Severity

__all__ = [
    "CATEGORY_ENTRIES",
    "CATEGORY_NAME_MAX",
    "ERROR_CATEGORIES",
    "ERROR_SEVERITIES",
    "RECOVERY_ACTIONS",
    "check_category_name",
    "parse_category_entry",
    "parse_policy_override",
]

# The recovery policy's vocabulary; vigil.error_handling's enums carry the same names (tested).
ERROR_CATEGORIES = ("FILE_PROCESSING", "AGENT_EXECUTION", "MEMORY_STORAGE", "VECTOR_DB", "API_CALL",
                    "CONFIGURATION", "SYSTEM")
ERROR_SEVERITIES = tuple(severity.name for severity in Severity)  # LOW, MEDIUM, HIGH, CRITICAL
RECOVERY_ACTIONS = ("retry", "fallback", "skip", "abort")
# error_handling.recovery.categories: a user's own category names (vigil.error_handling's
# CustomCategory applies the same rule): a letter, then letters, digits or _, case-insensitive.
CATEGORY_NAME_MAX = 64
_CATEGORY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
CATEGORY_ENTRIES = (  # what a categories entry may be, for its ConfigError
    f"entries look like NAME=LOW/MEDIUM/HIGH/CRITICAL: NAME of letters, digits and _ starting "
    f"with a letter, at most {CATEGORY_NAME_MAX} characters, not one of the built-in "
    f"{', '.join(ERROR_CATEGORIES)}; then four actions separated by /, each one of "
    f"{', '.join(RECOVERY_ACTIONS)}; e.g. PAYMENTS=retry/retry/fallback/abort")


def parse_policy_override(entry: str, *, categories: tuple[str, ...] = ()
                          ) -> tuple[str, str, str]:
    """``"API_CALL.HIGH=fallback"`` -> ``("API_CALL", "HIGH", "fallback")``; ``*`` matches any.

    ``categories``: the custom category names (``error_handling.recovery.categories``, upper
    case) the entry may name besides the built-in ones.
    """
    target, sep, action = entry.partition("=")
    category, dot, severity = target.strip().upper().partition(".")
    action = action.strip().lower()
    names = ", ".join(ERROR_CATEGORIES)
    if categories:
        names += f" (built-in), {', '.join(categories)} (from categories)"
    allowed = (f"entries look like CATEGORY.SEVERITY=action with CATEGORY in "
               f"{names} or *, SEVERITY in {', '.join(ERROR_SEVERITIES)} "
               f"or *, action in {', '.join(RECOVERY_ACTIONS)}")
    if (not sep or not dot or category not in (*ERROR_CATEGORIES, *categories, "*")
            or severity not in (*ERROR_SEVERITIES, "*") or action not in RECOVERY_ACTIONS):
        raise ConfigError("policy_overrides", entry, allowed)
    return category, severity, action


def _foreign_character(text: str) -> str | None:
    """The first character of ``text`` that is not an ASCII letter, digit or ``_``."""
    return next((c for c in text if not (c.isascii() and (c.isalnum() or c == "_"))), None)


def _name_problem(text: str) -> str:
    """Why ``text`` (stripped) cannot name a custom category; ``""`` when it can."""
    if not text:
        return "is empty"
    bad = _foreign_character(text)
    if bad is not None:
        return f"holds {bad!r}: only letters, digits and _ are allowed"
    if not _CATEGORY_NAME.fullmatch(text):
        return "must start with a letter"
    if len(text) > CATEGORY_NAME_MAX:
        return f"is {len(text)} characters long, at most {CATEGORY_NAME_MAX} are allowed"
    if text.upper() in ERROR_CATEGORIES:
        return "is a built-in category; a custom one needs another name"
    return ""


def check_category_name(name: object) -> str:
    """A custom category's name, upper-cased; :class:`ValueError` saying why it cannot be one.

    The rule of ``error_handling.recovery.categories`` and of ``CustomCategory``: a letter,
    then letters, digits or ``_``, at most :data:`CATEGORY_NAME_MAX` characters,
    case-insensitive, and not one of the built-in :data:`ERROR_CATEGORIES`.
    """
    if not isinstance(name, str):
        raise ValueError(f"a category name is a string, not {type(name).__name__}")
    text = name.strip()
    reason = _name_problem(text)
    if reason:
        raise ValueError(f"category name {name!r} {reason}")
    return text.upper()


def _check_actions(row: str, actions: list[str]) -> None:
    """``ValueError`` unless ``actions`` (``row`` split at /) are one action per severity."""
    if "," in row:
        raise ValueError("separate the actions by /, not ,")
    if len(actions) != len(ERROR_SEVERITIES):
        raise ValueError(f"{len(actions)} action(s) given, {len(ERROR_SEVERITIES)} needed")
    for action in actions:
        if action not in RECOVERY_ACTIONS:
            raise ValueError(f"{action!r} is not an action")


def parse_category_entry(entry: str) -> tuple[str, tuple[str, str, str, str]]:
    """``"payments=retry/retry/fallback/abort"`` -> ``("PAYMENTS", ("retry", "retry",
    "fallback", "abort"))``: a custom category and its actions for LOW, MEDIUM, HIGH, CRITICAL.

    A wrong entry is a :class:`ConfigError` on ``categories`` saying what is wrong with it.
    """
    name, sep, row = entry.partition("=")
    actions = [part.strip().lower() for part in row.split("/")]
    try:
        if not sep:
            raise ValueError("no = between the name and the actions")
        name = check_category_name(name)
        _check_actions(row, actions)
    except ValueError as err:
        raise ConfigError("categories", entry, CATEGORY_ENTRIES, hint=str(err)) from None
    low, medium, high, critical = actions
    return name, (low, medium, high, critical)
