"""A small publish/subscribe hub: breakers and retries publish, metrics/logs/alerts subscribe.

Resilience4j's shape: the component that decides (a breaker's state machine, a retry schedule)
only *publishes* what happened; everything that reacts (Prometheus metrics, a JSON log line, an
alert, the user's own code) is a subscriber. A subscriber that raises is logged and counted in
``vigil_event_subscriber_failures_total{publisher}``; it never breaks the caller or the other
subscribers.

Publishing costs one tuple iteration when nobody listens: subscribers are kept in an immutable
tuple replaced on (rare) subscribe/unsubscribe, so ``publish`` takes no lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments
from vigil.monitoring.logs import shared_logger

__all__ = ["EventPublisher", "Subscriber"]

E = TypeVar("E")
Subscriber = Callable[[E], object]



class EventPublisher(Generic[E]):
    """Delivers events of type ``E`` to subscribers, each isolated from the others.

    ``name`` labels the failure counter (a breaker's or an operation's name: a bounded set).
    """

    __slots__ = ("_failures", "_lock", "_subscribers", "name")

    def __init__(self, name: str, registry: CollectorRegistry) -> None:
        self.name = name
        self._subscribers: tuple[Subscriber[E], ...] = ()
        self._lock = threading.Lock()
        self._failures = instruments.counter(
            registry, "vigil_event_subscriber_failures_total",
            "Event subscribers (metrics, logs, alerts, user callbacks) that raised.",
            ["publisher"]).labels(name)

    def subscribe(self, subscriber: Subscriber[E]) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                subs = list(self._subscribers)
                if subscriber in subs:
                    subs.remove(subscriber)
                self._subscribers = tuple(subs)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens (lets a publisher skip building an event nobody reads)."""
        return bool(self._subscribers)

    def publish(self, event: E) -> None:
        """Deliver ``event``; a subscriber that raises is logged and counted, never re-raised."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                self._failures.inc()
                # error() inside except attaches the traceback; StructuredLogger never raises.
                shared_logger("vigil.events").error("event subscriber failed",
                             metadata={"publisher": self.name, "event": type(event).__name__,
                                       "subscriber": getattr(subscriber, "__qualname__",
                                                             repr(subscriber))})
