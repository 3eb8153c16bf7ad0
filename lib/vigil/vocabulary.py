"""Words vigil reads from people: one case-insensitive enum base and one severity scale.

Config files, environment variables, query strings and call arguments spell the same value
``"HIGH"``, ``"high"`` or ``" High "``. :class:`CaseInsensitiveStrEnum` is the one lookup
rule: by value or name, any case, surrounding spaces ignored, plus the aliases a subclass
declares; :meth:`~CaseInsensitiveStrEnum.parse` turns a miss into a ``ValueError`` that lists
what is allowed. Members are ``str``s, so ``state == "open"`` and JSON work as they are.

:class:`Severity` is the one severity scale (LOW < MEDIUM < HIGH < CRITICAL) of alerts and
handled errors alike (``AlertSeverity`` and ``ErrorSeverity`` are this class), and
:data:`SEVERITY_NAMES` the words alerting tools use for its four values, understood by
``send_alert()``, ``handle_error()`` and the Alertmanager webhook's ``severity`` label.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Self, cast

__all__ = ["SEVERITY_NAMES", "CaseInsensitiveStrEnum", "Severity"]


class CaseInsensitiveStrEnum(StrEnum):
    """A ``str`` enum found by value or name in any case (and by :meth:`_aliases`)."""

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        """Lower-case words that also name a member: word -> member value."""
        return {}

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        text = value.strip().lower()
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
        alias = cls._aliases().get(text)
        return None if alias is None else cls(alias)

    @classmethod
    def parse(cls, value: object, what: str | None = None) -> Self:
        """The member ``value`` names, or a ``ValueError`` saying what is allowed."""
        try:
            return cls(cast(str, value))  # anything else reaches _missing_, which refuses it
        except ValueError:
            allowed = ", ".join(member.value for member in cls)
            also = cls._aliases().keys() - {member.value for member in cls}
            extra = f" (or {', '.join(sorted(also))})" if also else ""
            raise ValueError(f"invalid {what or cls.__name__} {value!r}; expected one of: "
                             f"{allowed}{extra}") from None


# The severity words alerting tools use, as vigil's four.
SEVERITY_NAMES: Mapping[str, str] = {
    "critical": "critical", "page": "critical", "p1": "critical",
    "high": "high", "error": "high", "major": "high",
    "warning": "medium", "warn": "medium", "medium": "medium",
    "info": "low", "low": "low", "none": "low", "minor": "low",
}


class Severity(CaseInsensitiveStrEnum):
    """How bad an alert or a handled error is; ordered by :attr:`rank`.

    ``Severity("HIGH")``, ``Severity("warning")`` (MEDIUM) and ``Severity.parse(" p1 ")``
    (CRITICAL) all work.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return SEVERITY_NAMES

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for CRITICAL."""
        return _RANK[self.value]


_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
