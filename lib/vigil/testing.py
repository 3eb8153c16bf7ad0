"""Helpers for testing code that uses vigil, shipped so users' own tests can use them too."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["FakeClock"]


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
