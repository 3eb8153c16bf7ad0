"""vigil.clock: the system clock and the RFC 3339 formatting every record uses."""

from __future__ import annotations

import asyncio
import time

import pytest

from vigil.clock import SYSTEM_CLOCK, Clock, format_rfc3339
from vigil.testing import FakeClock


def test_system_clock_reads_real_time() -> None:
    """SYSTEM_CLOCK's wall time is time.time() and its monotonic time never goes back."""
    before = time.time()
    now = SYSTEM_CLOCK.time()
    assert before <= now <= time.time()
    first = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= first


def test_system_clock_sleeps_through_time_and_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """SYSTEM_CLOCK.sleep is time.sleep and sleep_async awaits asyncio.sleep, with the seconds
    given (so code driven by it sleeps for real, and yields to the event loop)."""
    slept: list[tuple[str, float]] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: slept.append(("sync", seconds)))

    async def fake_async_sleep(seconds: float) -> None:
        slept.append(("async", seconds))

    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    SYSTEM_CLOCK.sleep(0.25)
    asyncio.run(SYSTEM_CLOCK.sleep_async(1.5))
    assert slept == [("sync", 0.25), ("async", 1.5)]


def test_both_clocks_satisfy_the_protocol() -> None:
    """The system clock and FakeClock are both Clocks."""
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)


def test_rfc3339_is_utc_with_milliseconds() -> None:
    """Epoch seconds format as RFC 3339 in UTC with exactly three fractional digits."""
    assert format_rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert format_rfc3339(1_767_225_600.25) == "2026-01-01T00:00:00.250Z"
    assert format_rfc3339(1_767_225_601.999) == "2026-01-01T00:00:01.999Z"


def test_rfc3339_cache_follows_the_second() -> None:
    """The cached per-second prefix is replaced when the second changes, also backwards."""
    assert format_rfc3339(1_767_225_600.5) == "2026-01-01T00:00:00.500Z"
    assert format_rfc3339(1_767_225_659.5) == "2026-01-01T00:00:59.500Z"
    assert format_rfc3339(1_767_225_600.1) == "2026-01-01T00:00:00.100Z"
