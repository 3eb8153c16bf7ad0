"""Subscribers that raise: ``vigil_event_subscriber_failures_total{publisher}`` and a log line.

:func:`report_failure` is the process's failure sink (:func:`vigil.events.set_failure_sink`):
every publisher's failed deliveries reach it inside the ``except``, so the ERROR line carries
the traceback. :func:`watch` creates a publisher's series at 0 when its component is announced,
so that ``increase()`` sees the first failure (a counter born at 1 shows no increase).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from vigil.events import EventPublisher
from vigil.monitoring import instruments
from vigil.monitoring.logs import shared_logger

__all__ = ["FAILURES_METRIC", "report_failure", "watch"]

FAILURES_METRIC = "vigil_event_subscriber_failures_total"


def _series(publisher: EventPublisher[Any]) -> Any:
    registry: CollectorRegistry = publisher.registry if publisher.registry is not None \
        else instruments.default_registry()
    return instruments.counter(
        registry, FAILURES_METRIC,
        "Event subscribers (metrics, logs, alerts, user callbacks) that raised.",
        ["publisher"]).labels(publisher.name)


def watch(publisher: EventPublisher[Any]) -> None:
    """Show the publisher's failure series (at 0) from now on."""
    _series(publisher)


def report_failure(publisher: EventPublisher[Any], subscriber: Callable[[Any], object],
                   event: object) -> None:
    """Count and log one failed delivery (called inside its ``except``)."""
    _series(publisher).inc()
    # error() inside except attaches the traceback; StructuredLogger never raises.
    shared_logger("vigil.events").error(
        "event subscriber failed",
        metadata={"publisher": publisher.name, "event": type(event).__name__,
                  "subscriber": getattr(subscriber, "__qualname__", repr(subscriber))})
