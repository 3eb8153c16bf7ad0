"""Helpers for testing code that uses vigil, shipped so users' own tests can use them too.

* :class:`FakeClock`: time that moves only when told to (breakers, retries, tracers, alerts
  take ``clock=``).
* :func:`capture_logs` / :class:`LogCapture`: vigil's JSON lines, parsed.
* :func:`capture_alerts`: the alerts an :class:`~vigil.monitoring.alerts.AlertManager`
  dispatched while a block ran.
* :func:`capture_events`: the events a breaker's or a retry's publisher sent.
* :class:`MetricReader`: read values back from a registry (by labels, as a change since a
  baseline, or every series of a family).

::

    with capture_logs() as logs, capture_alerts() as alerts:
        run_the_job()
    assert logs.messages("ERROR") == ["job failed"]
    assert [a.component for a in alerts.alerts()] == ["Billing"]
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from vigil.monitoring import alerts as _alerts
from vigil.monitoring import instruments
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.logs import writing as _log_writing

__all__ = ["AlertCapture", "EventCapture", "FakeClock", "LogCapture", "MetricReader",
           "capture_alerts", "capture_events", "capture_logs"]

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)


class FakeClock:
    """A clock that only moves when told to.

    ``sleep`` and ``sleep_async`` advance the clock instantly instead of waiting, and are
    recorded in :attr:`sleeps`, so a test can assert on a retry schedule without waiting for it.
    """

    def __init__(self, start: float = 1000.0, wall: float = 1_767_225_600.0) -> None:
        # A non-zero monotonic origin catches code that treats 0.0 as "unset".
        self._lock = threading.Lock()
        self._monotonic = float(start)
        self._wall_offset = float(wall) - float(start)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def time(self) -> float:
        with self._lock:
            return self._monotonic + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still yield to the loop, as a real sleep would

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self.monotonic()!r})"


class LogCapture:
    """JSON lines written to :attr:`stream` (an ``io.StringIO``), parsed on reading.

    :meth:`logger` builds a :class:`StructuredLogger` writing here (on a fresh registry unless
    one is given), for code that takes a ``logger=``.
    """

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def logger(self, component: str, **options: Any) -> StructuredLogger:
        options.setdefault("registry", CollectorRegistry())
        return StructuredLogger(component, stream=self.stream, **options)

    def lines(self) -> list[dict[str, Any]]:
        """Every line so far, as dicts, oldest first."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def messages(self, level: str | None = None) -> list[str]:
        """The ``message`` of every line (of ``level`` only, e.g. ``"WARNING"``, when given)."""
        wanted = None if level is None else level.upper()
        return [line["message"] for line in self.lines()
                if wanted is None or line.get("level") == wanted]


@contextmanager
def capture_logs() -> Iterator[LogCapture]:
    """Collect the lines of every :class:`StructuredLogger` (and :func:`configure_logging`
    handler) that has no stream of its own, while the block runs. Loggers given an explicit
    ``stream=`` keep writing there."""
    capture = LogCapture()
    # Swapped where it lives (a module attribute read on every line), not in a copy of it.
    before = _log_writing.default_stream
    _log_writing.default_stream = capture.stream
    try:
        yield capture
    finally:
        _log_writing.default_stream = before


class AlertCapture:
    """The alerts a manager dispatched to the capturing handler (see :func:`capture_alerts`)."""

    def __init__(self, manager: AlertManager) -> None:
        self.manager = manager
        self._alerts: list[Alert] = []
        self._lock = threading.Lock()

    def __call__(self, alert: Alert) -> None:
        with self._lock:
            self._alerts.append(alert)

    def alerts(self, timeout: float = 5.0) -> list[Alert]:
        """The alerts received so far, once the manager's handlers have caught up (waits up to
        ``timeout`` real seconds: handlers run on their own threads)."""
        self.manager.flush(timeout)
        with self._lock:
            return list(self._alerts)


@contextmanager
def capture_alerts(manager: AlertManager | None = None) -> Iterator[AlertCapture]:
    """Register a capturing handler on ``manager`` (default: vigil's ``alert_manager``) for
    the block; read what it received with :meth:`AlertCapture.alerts`, inside the block or
    after it (leaving the block waits up to 5 s for the handler to catch up)."""
    capture = AlertCapture(manager if manager is not None else _alerts.alert_manager)
    capture.manager.register_handler(capture)
    try:
        yield capture
    finally:
        # Unregistering drops what is still queued for the handler: let it catch up first.
        capture.manager.flush(5.0)
        capture.manager.unregister_handler(capture)


class _Publisher(Protocol[E_co]):
    def subscribe(self, subscriber: Callable[[E_co], object]) -> Callable[[], None]: ...


class EventCapture(Generic[E]):
    """The events received while subscribed (see :func:`capture_events`), oldest first."""

    def __init__(self) -> None:
        self.events: list[E] = []

    def __call__(self, event: E) -> None:
        self.events.append(event)

    def of_type(self, kind: type[Any]) -> list[Any]:
        """The received events that are instances of ``kind``."""
        return [event for event in self.events if isinstance(event, kind)]


@contextmanager
def capture_events(publisher: _Publisher[E]) -> Iterator[EventCapture[E]]:
    """Subscribe to ``publisher`` (``breaker.events``, ``breaker.call_events``, a retried
    function's ``.events``) for the block. Events are delivered synchronously, so the list is
    complete when the publishing call returns."""
    capture: EventCapture[E] = EventCapture()
    unsubscribe = publisher.subscribe(capture)
    try:
        yield capture
    finally:
        unsubscribe()


class MetricReader:
    """Reads samples back from ``registry`` (default: prometheus_client's default registry).

    :meth:`value` answers 0.0 for a series that does not exist (yet), as Prometheus' ``or 0``
    would; :meth:`delta` is the change since the reader was built (or :meth:`rebase`), for the
    default registry, which other code in the process also records on.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else instruments.default_registry()
        self._base: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.rebase()

    def _samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        for family in self.registry.collect():
            for sample in family.samples:
                yield sample.name, sample.labels, sample.value

    def rebase(self) -> None:
        """Take the current values as the baseline of :meth:`delta`."""
        self._base = {(name, tuple(sorted(labels.items()))): value
                      for name, labels, value in self._samples()}

    def value(self, name: str, labels: Mapping[str, str] | None = None, **by: str) -> float:
        """The sample ``name`` with exactly these labels (``labels`` and/or keywords)."""
        wanted = {**(labels or {}), **by}
        found = self.registry.get_sample_value(name, wanted)
        return 0.0 if found is None else found

    def delta(self, name: str, labels: Mapping[str, str] | None = None, **by: str) -> float:
        """How much the sample moved since the baseline."""
        wanted = {**(labels or {}), **by}
        return self.value(name, wanted) - self._base.get((name, tuple(sorted(wanted.items()))),
                                                         0.0)

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample called ``name``, in exposition order."""
        return [labels for sample, labels, _ in self._samples() if sample == name]
