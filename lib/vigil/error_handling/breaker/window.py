"""Sliding windows over recent calls, for the failure-rate and slow-call-rate rules.

Resilience4j's two kinds, both pure (the caller passes ``now``; no clock, no lock: the state
machine holds its lock around every use):

* :class:`CountWindow`: the last ``size`` calls; O(size) memory.
* :class:`TimeWindow`: the calls that ended in the last ``size`` seconds, kept as one bucket
  per second that saw a call (``floor(now)``) with its calls, failures and slow calls; at most
  ``size`` buckets, however many calls a second brings.

Each keeps running totals in ``calls``, ``failures`` and ``slows`` (current after
:meth:`record` and :meth:`advance`), so recording and reading cost O(1), plus evicting the
buckets that fell out of a time window.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

__all__ = ["CountWindow", "TimeWindow", "Window", "make_window"]


class Window(Protocol):
    """What the state machine needs from a window."""

    calls: int
    failures: int
    slows: int

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Add one call that ended at ``now`` (the totals then include it)."""

    def advance(self, now: float) -> None:
        """Bring the totals to ``now`` (a time window drops the calls that fell out)."""

    def clear(self) -> None:
        """Forget every call."""


class CountWindow:
    """The last ``size`` calls, each kept as two bits (failed, slow)."""

    __slots__ = ("_outcomes", "_size", "calls", "failures", "slows")

    def __init__(self, size: int) -> None:
        self._outcomes: deque[int] = deque(maxlen=size)
        self._size = size
        self.calls = self.failures = self.slows = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        outcomes = self._outcomes
        if self.calls == self._size:
            oldest = outcomes[0]  # about to be pushed out by append
            self.failures -= oldest & 1
            self.slows -= oldest >> 1
        else:
            self.calls += 1
        outcomes.append(failed | slow << 1)
        self.failures += failed
        self.slows += slow

    def advance(self, now: float) -> None:
        """Nothing to do: calls leave a count window only when newer ones push them out."""

    def clear(self) -> None:
        self._outcomes.clear()
        self.calls = self.failures = self.slows = 0


class TimeWindow:
    """The calls of the last ``size`` seconds, in per-second buckets ``[second, calls,
    failures, slows]``, oldest first."""

    __slots__ = ("_buckets", "_seconds", "calls", "failures", "slows")

    def __init__(self, size: int) -> None:
        self._seconds = size
        self._buckets: deque[list[int]] = deque()
        self.calls = self.failures = self.slows = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        second = self._second(now)
        buckets = self._buckets
        if buckets:
            if buckets[0][0] <= second - self._seconds:
                self._evict(second)
            if buckets and buckets[-1][0] >= second:
                # This second's bucket (or, were the clock to step back, the newest one: a
                # bucket is only added for a later second, which keeps the count <= size).
                bucket = buckets[-1]
                bucket[1] += 1
                bucket[2] += failed
                bucket[3] += slow
                self.calls += 1
                self.failures += failed
                self.slows += slow
                return
        buckets.append([second, 1, int(failed), int(slow)])
        self.calls += 1
        self.failures += failed
        self.slows += slow

    def advance(self, now: float) -> None:
        self._evict(self._second(now))

    def clear(self) -> None:
        self._buckets.clear()
        self.calls = self.failures = self.slows = 0

    def _second(self, now: float) -> int:
        try:
            return math.floor(now)
        except (OverflowError, ValueError):
            # A clock answering inf or NaN must not break the caller: such a call joins the
            # newest bucket (or starts one at 0).
            return self._buckets[-1][0] if self._buckets else 0

    def _evict(self, second: int) -> None:
        """Drop the buckets older than the window ending at ``second``."""
        oldest_kept = second - self._seconds + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_kept:
            _, calls, failures, slows = buckets.popleft()
            self.calls -= calls
            self.failures -= failures
            self.slows -= slows


def make_window(kind: str, size: int) -> Window:
    """A :class:`CountWindow` (``"count"``) or :class:`TimeWindow` (``"time"``) of ``size``."""
    return TimeWindow(size) if kind == "time" else CountWindow(size)
