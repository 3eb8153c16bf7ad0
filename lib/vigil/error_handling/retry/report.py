"""What a retry tells the world: its events, the built-in subscribers, the give-up annotation.

Events (published on the operation's :class:`~vigil.error_handling.events.EventPublisher`):
:class:`RetryScheduled` before each wait, :class:`RetrySucceeded` when a call succeeds after
retrying, :class:`RetryGaveUp` when a call ends failed (an exception leaves it, or its last
result still matched ``retry_if_result``). An attempt retried for its result has
``exception=None`` and the result in ``result``.

Built-in subscribers: ``vigil_retry_attempts_total{operation,exception}`` (one per retry, by
the failed attempt's exception class name, or ``"result"`` for a result-retry) and one WARNING
line per retry plus one when giving up after retries. Result values are never logged (they may
be large or secret): the line says ``"exception": "result"`` and has no ``error``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.error_handling.retry.policy import GiveUpReason
from vigil.monitoring import instruments
from vigil.monitoring.logs import StructuredLogger
from vigil.text import safe_text

__all__ = [
    "LogSubscriber",
    "MetricsSubscriber",
    "RESULT_LABEL",
    "RetryEvent",
    "RetryGaveUp",
    "RetryScheduled",
    "RetrySucceeded",
    "annotate",
]

RESULT_LABEL = "result"
"""The ``exception`` label (and log field) of a retry caused by a result, not an exception."""


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


def _cause(exception: Exception | None) -> str:
    return RESULT_LABEL if exception is None else type(exception).__name__


def _safe_str(exc: BaseException) -> str:
    # vigil.text's rule: a broken __str__ must not cost the log line.
    return safe_text(exc)[:500]


class MetricsSubscriber:
    """``vigil_retry_attempts_total{operation,exception}``, one increment per retry."""

    def __init__(self, registry: CollectorRegistry, operation: str) -> None:
        self._family = instruments.counter(
            registry, "vigil_retry_attempts_total",
            "Retries performed: failed attempts followed by another attempt, by exception class "
            "(\"result\": retried for its result).", ["operation", "exception"])
        self._operation = operation

    def __call__(self, event: RetryEvent) -> None:
        if isinstance(event, RetryScheduled):
            self._family.labels(self._operation, _cause(event.exception)).inc()


class LogSubscriber:
    """One WARNING line per retry, and one when a call gives up after retrying."""

    def __init__(self, logger: StructuredLogger) -> None:
        self._logger = logger

    def __call__(self, event: RetryEvent) -> None:
        if isinstance(event, RetryScheduled):
            what = "failed" if event.exception is not None else "returned a rejected result"
            metadata: dict[str, Any] = {
                "operation": event.operation, "attempt": event.attempt,
                "max_attempts": event.max_attempts, "delay": event.delay,
                "exception": _cause(event.exception)}
            if event.exception is not None:
                metadata["error"] = _safe_str(event.exception)
            self._logger.warning(
                f"{event.operation}: attempt {event.attempt} of {event.max_attempts} {what}; "
                f"retrying in {event.delay:.3f}s", metadata=metadata)
        elif isinstance(event, RetryGaveUp) and event.attempts > 1:
            metadata = {"operation": event.operation, "attempts": event.attempts,
                        "reason": event.reason, "exception": _cause(event.exception)}
            if event.exception is not None:
                metadata["error"] = _safe_str(event.exception)
            self._logger.warning(f"{event.operation}: gave up after {event.attempts} attempts",
                                 metadata=metadata)


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
