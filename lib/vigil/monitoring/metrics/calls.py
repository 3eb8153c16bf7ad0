"""The last calls of one decorated function, read as the seed's three names.

``name.duration_ms``, ``name.calls`` and ``name.errors`` are views of one bounded history of
calls (one append per call instead of three).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from vigil.monitoring.metrics.naming import MetricKind
from vigil.monitoring.metrics.series import Record

__all__ = ["CallHistory", "CallRecord", "SeedView"]

CallRecord = tuple[float, float, bool]
"""One call: (wall time, duration in ms, raised an Exception)."""

SeedView = tuple[str, MetricKind, Callable[[], list[Record]]]
"""A seed name's suffix (``.calls``), its kind, and the records it answers with."""


class CallHistory:
    """The last ``retention`` calls of one decorated function; the base of both recorders."""

    __slots__ = ("calls",)

    def __init__(self, retention: int) -> None:
        self.calls: deque[CallRecord] = deque(maxlen=retention)

    def resize(self, retention: int) -> None:
        """Keep the newest ``retention`` calls from now on."""
        if self.calls.maxlen != retention:
            self.calls = deque(self.calls, maxlen=retention)

    def views(self) -> tuple[SeedView, ...]:
        """The seed names' suffixes, kinds and the records each answers with."""
        return ((".duration_ms", "histogram", self.durations), (".calls", "counter", self.ones),
                (".errors", "counter", self.failures))

    def durations(self) -> list[Record]:
        return [(ts, ms, None) for ts, ms, _ in list(self.calls)]

    def ones(self) -> list[Record]:
        return [(ts, 1.0, None) for ts, _, _ in list(self.calls)]

    def failures(self) -> list[Record]:
        return [(ts, 1.0, None) for ts, _, failed in list(self.calls) if failed]
