"""Time as a dependency.

Breakers, retries, tracers and alert de-duplication read time through a :class:`Clock`, so
tests drive them with :class:`vigil.testing.FakeClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "format_rfc3339"]


@runtime_checkable
class Clock(Protocol):
    """What vigil needs to know about time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards. Used for durations."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch. Used for timestamps."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def sleep_async(self, seconds: float) -> None:
        """Suspend the calling coroutine for ``seconds``."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time` and the real sleeps."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()


_second_cache: tuple[int, str] = (-1, "")  # (whole second, its formatted prefix), swapped whole


def format_rfc3339(epoch: float) -> str:
    """``2026-01-01T00:00:00.250Z``: RFC 3339 in UTC with milliseconds, as every vigil record.

    Called per log line, so the per-second prefix is cached (strftime is most of the cost).
    """
    global _second_cache
    whole, millis = divmod(int(epoch * 1000), 1000)
    cached_second, prefix = _second_cache
    if whole != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_cache = (whole, prefix)
    return f"{prefix}.{millis:03d}Z"
