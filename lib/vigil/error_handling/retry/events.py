"""What a retry tells the world: its events, its announcement, the give-up annotation.

Events (published on the operation's :class:`~vigil.events.EventPublisher`):
:class:`RetryScheduled` before each wait, :class:`RetrySucceeded` when a call succeeds after
retrying, :class:`RetryGaveUp` when a call ends failed (an exception leaves it, or its last
result still matched ``retry_if_result``). An attempt retried for its result has
``exception=None`` and the result in ``result``.

A :class:`~vigil.error_handling.retry.Retrier` announces a :class:`NamedRetry` on
``Retrier.named`` when it is built; vigil.reporting.retries subscribes the metrics and log lines
(``vigil_retry_attempts_total``, one WARNING line per retry and one on giving up).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.error_handling.retry.policy import GiveUpReason, RetryOutcome
from vigil.events import EventPublisher, ReportTo

__all__ = [
    "NamedRetry",
    "RetryEvent",
    "RetryGaveUp",
    "RetryScheduled",
    "RetrySucceeded",
    "annotate",
]


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """Attempt ``attempt`` of ``max_attempts`` failed; the next one starts after ``delay`` s.

    ``exception`` is what it raised, or ``None`` when ``retry_if_result`` rejected ``result``.
    """

    operation: str
    attempt: int
    max_attempts: int
    delay: float
    exception: Exception | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class RetrySucceeded:
    """The call succeeded on attempt ``attempts`` after retrying."""

    operation: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RetryGaveUp:
    """The call ended failed after ``attempts`` attempts, for ``reason``.

    ``exception`` leaves the call; or it is ``None`` and the caller gets ``result``, which
    ``retry_if_result`` still rejected.
    """

    operation: str
    attempts: int
    reason: GiveUpReason
    exception: Exception | None
    result: Any = None


RetryEvent = RetryScheduled | RetrySucceeded | RetryGaveUp


@dataclass(frozen=True, slots=True)
class NamedRetry:
    """A retrier was built for ``operation``: what it announces on ``Retrier.named``.

    ``count_calls`` holds one function per :data:`RetryOutcome` that the drivers call once per
    call (a no-op until set; the first-try success is the benchmarked hot path, where an event
    per call would cost an object and a delivery loop): set an entry to count that outcome.
    """

    operation: str
    registry: CollectorRegistry
    report_to: ReportTo
    events: EventPublisher[RetryEvent]
    count_calls: dict[RetryOutcome, Callable[[], object]]


def annotate(error: Exception, attempts: int, operation: str, why: str) -> None:
    """Attach the attempt count and a note; classes that refuse attributes/notes keep going."""
    plural = "s" if attempts != 1 else ""
    note = f"vigil: gave up after {attempts} attempt{plural} (operation {operation!r})"
    if why:
        note += f": {why}"
    with contextlib.suppress(Exception):
        error.vigil_attempts = attempts  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        error.add_note(note)
