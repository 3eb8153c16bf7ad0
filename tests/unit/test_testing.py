"""vigil.testing: a fake clock that moves only when told to."""

from __future__ import annotations

import asyncio

import pytest

from vigil.testing import FakeClock


def test_fake_clock_moves_only_when_advanced() -> None:
    """monotonic() and time() stay put until advance(), then move together."""
    clock = FakeClock(start=10.0, wall=1000.0)
    assert (clock.monotonic(), clock.time()) == (10.0, 1000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (12.5, 1002.5)


def test_fake_clock_refuses_to_go_backwards() -> None:
    """A negative advance is an error."""
    with pytest.raises(ValueError, match=">= 0"):
        FakeClock().advance(-1)


def test_fake_sleeps_advance_and_are_recorded() -> None:
    """sleep and sleep_async return at once, advance the clock and record the durations."""
    clock = FakeClock(start=0.0)
    clock.sleep(1.5)
    asyncio.run(clock.sleep_async(3.0))
    assert clock.sleeps == [1.5, 3.0]
    assert clock.monotonic() == 4.5
