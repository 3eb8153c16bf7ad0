"""Events and the one hook through which reporting attaches to what publishes them.

Resilience4j's shape: a component that decides (a breaker's state machine, a retry schedule, the
recovery manager) only *publishes* what happened; everything that reacts (Prometheus metrics, a
JSON log line, an alert, the user's own code) is a subscriber. The component never builds its
own reporters: when it is named it announces itself on its :class:`Hook`, and whoever attached
to that hook subscribes. vigil's own metrics, logs and alerts attach in :mod:`vigil.reporting`;
a user can attach to the same hooks (``CircuitBreaker.named.attach(fn)``) to wire every breaker
the process creates.

* :class:`EventPublisher`: delivers events to subscribers, each isolated from the others. A
  subscriber that raises goes to the process's failure sink (:func:`set_failure_sink`; vigil's
  reporting counts it in ``vigil_event_subscriber_failures_total{publisher}`` and logs it); it
  never breaks the caller or the other subscribers. Publishing costs one tuple iteration when
  nobody listens: subscribers are kept in an immutable tuple replaced on (rare) subscribe and
  unsubscribe, so ``publish`` takes no lock.
* :class:`Hook`: announces each new component to the functions attached to it.
* :class:`ReportTo`: the ``registry=``, ``logger=`` and ``alert_manager=`` a component was given;
  it carries them for the reporting and never uses them itself.

This module is base layer: it imports nothing from vigil.monitoring or vigil.error_handling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

__all__ = ["EventPublisher", "FailureSink", "Hook", "ReportTo", "Subscriber", "set_failure_sink"]

E = TypeVar("E")
T = TypeVar("T")
Subscriber = Callable[[E], object]
FailureSink = Callable[["EventPublisher[Any]", Callable[[Any], object], object], None]
"""Called as ``sink(publisher, subscriber, event)`` inside the ``except`` of a failed delivery."""


def _log_failure(publisher: EventPublisher[Any], subscriber: Callable[[Any], object],
                 event: object) -> None:
    """The sink before any is set, and the fallback of one that raises: stdlib logging."""
    logging.getLogger("vigil.events").exception(
        "event subscriber %s failed on %s (publisher %s)",
        getattr(subscriber, "__qualname__", repr(subscriber)), type(event).__name__,
        publisher.name)


_failure_sink: FailureSink = _log_failure


def set_failure_sink(sink: FailureSink | None) -> FailureSink:
    """Where every publisher's failed deliveries go from now on (``None``: stdlib logging);
    returns the sink it replaces. vigil.reporting sets one when vigil is imported."""
    global _failure_sink
    previous, _failure_sink = _failure_sink, sink if sink is not None else _log_failure
    return previous


class EventPublisher(Generic[E]):
    """Delivers events of type ``E`` to subscribers, each isolated from the others.

    ``name`` labels the failure counter (a breaker's or an operation's name: a bounded set);
    ``registry`` is where the failure sink counts (``None``: prometheus_client's default).
    """

    __slots__ = ("_lock", "_subscribers", "name", "registry")

    def __init__(self, name: str, registry: CollectorRegistry | None = None) -> None:
        self.name = name
        self.registry = registry
        self._subscribers: tuple[Subscriber[E], ...] = ()
        self._lock = threading.Lock()

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
        """Deliver ``event``; a subscriber that raises goes to the failure sink, never re-raised."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                try:
                    _failure_sink(self, subscriber, event)
                except Exception:  # a broken sink must not break the caller either
                    _log_failure(self, subscriber, event)


@dataclass(frozen=True, slots=True)
class ReportTo:
    """Where a component's metrics, logs and alerts go; ``None``: vigil's shared default
    (prometheus_client's default registry, a shared JSON logger, ``vigil.alert_manager``)."""

    registry: CollectorRegistry | None = None
    logger: Any = None
    alert_manager: Any = None


class Hook(Generic[T]):
    """Announces each new component of one kind to the functions attached to it.

    ``attach(fn)`` calls ``fn(component)`` for every component announced from then on (a
    component announces itself once, when it is named, before its first event). Attaching is
    for process set-up (vigil.reporting attaches when vigil is imported); an attached function
    that raises fails the construction that announced, as a bad ``registry=`` would.
    """

    __slots__ = ("_attached", "_lock", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._attached: tuple[Callable[[T], object], ...] = ()
        self._lock = threading.Lock()

    def attach(self, fn: Callable[[T], object]) -> Callable[[], None]:
        """Call ``fn(component)`` for each component announced from now on; returns a
        function that detaches it."""
        with self._lock:
            self._attached = (*self._attached, fn)

        def detach() -> None:
            with self._lock:
                self._attached = tuple(f for f in self._attached if f is not fn)

        return detach

    def announce(self, component: T) -> None:
        """A new component: every attached function sees it, in the order attached."""
        for fn in self._attached:
            fn(component)

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, attached={len(self._attached)})"
