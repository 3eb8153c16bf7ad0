"""What a retry reports: ``vigil_retry_calls_total{operation,outcome}``,
``vigil_retry_attempts_total{operation,exception}`` and its WARNING log lines.

:func:`attach_retry` runs for each :class:`~vigil.error_handling.retry.events.NamedRetry`
announced on ``Retrier.named``: it binds the outcome counter's children once (an outcome is one
increment of a child held by the retrier) and subscribes the attempts counter and the log lines
to the retrier's events.

``vigil_retry_attempts_total`` counts one per retry, by the failed attempt's exception class
name, or ``"result"`` for a result-retry; one WARNING line per retry plus one when giving up
after retries. Result values are never logged (they may be large or secret): the line says
``"exception": "result"`` and has no ``error``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from vigil.error_handling.retry.events import (
    NamedRetry,
    RetryEvent,
    RetryGaveUp,
    RetryScheduled,
)
from vigil.error_handling.retry.policy import OUTCOMES
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import shared_logger
from vigil.reporting import failures
from vigil.text import safe_text

__all__ = ["LogSubscriber", "MetricsSubscriber", "RESULT_LABEL", "attach_retry"]

RESULT_LABEL = "result"
"""The ``exception`` label (and log field) of a retry caused by a result, not an exception."""


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

    def __init__(self, logger: Logger) -> None:
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


def attach_retry(named: NamedRetry) -> None:
    """Report on a retrier just built: its outcome counter, attempts counter and log lines."""
    family = instruments.counter(
        named.registry, "vigil_retry_calls_total",
        "Calls through with_retry or retrying(), by outcome (success_first_try, "
        "success_after_retry, failure_after_retry, failure_without_retry).",
        ["operation", "outcome"])
    for outcome in OUTCOMES:
        named.count_calls[outcome] = family.labels(named.operation, outcome).inc
    named.events.subscribe(MetricsSubscriber(named.registry, named.operation))
    logger: Logger = named.report_to.logger if named.report_to.logger is not None \
        else shared_logger("vigil.retry")
    named.events.subscribe(LogSubscriber(logger))
    failures.watch(named.events)
