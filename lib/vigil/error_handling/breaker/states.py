"""The breaker's vocabulary: its six states and the outcomes of a call.

Resilience4j's states: ``CLOSED``, ``OPEN`` and ``HALF_OPEN`` move by themselves as calls
succeed and fail; ``DISABLED``, ``METRICS_ONLY`` and ``FORCED_OPEN`` are entered and left only
by hand (``cb.transition_to(state)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, Self, TypeAlias

from vigil.vocabulary import CaseInsensitiveStrEnum

__all__ = [
    "ADMITTING",
    "CircuitState",
    "FAILURE",
    "IGNORED",
    "OUTCOMES",
    "Outcome",
    "REJECTED",
    "SLOW",
    "SUCCESS",
]


class CircuitState(CaseInsensitiveStrEnum):
    """A breaker's state. A ``str``: ``cb.state == "OPEN"``; lookup (vigil's one rule,
    :class:`~vigil.vocabulary.CaseInsensitiveStrEnum`) ignores case, and ``-`` may stand for
    ``_`` (``"half-open"``)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    DISABLED = "DISABLED"
    METRICS_ONLY = "METRICS_ONLY"
    FORCED_OPEN = "FORCED_OPEN"

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return _HYPHENATED

    @classmethod
    def parse(cls, value: object, what: str | None = "circuit state") -> Self:
        """The state named by ``value``, or a ``ValueError`` naming the allowed ones."""
        return super().parse(value, what)


_HYPHENATED: Final[Mapping[str, str]] = {
    member.value.lower().replace("_", "-"): member.value
    for member in CircuitState if "_" in member.value}

# The states that let every call through without a permit count (no lock to admit).
ADMITTING: Final = frozenset({CircuitState.CLOSED, CircuitState.DISABLED,
                              CircuitState.METRICS_ONLY})

Outcome: TypeAlias = Literal["success", "slow", "failure", "ignored", "rejected"]
SUCCESS: Final = "success"
SLOW: Final = "slow"
FAILURE: Final = "failure"
IGNORED: Final = "ignored"
REJECTED: Final = "rejected"
OUTCOMES: Final[tuple[Outcome, ...]] = (SUCCESS, SLOW, FAILURE, IGNORED, REJECTED)
