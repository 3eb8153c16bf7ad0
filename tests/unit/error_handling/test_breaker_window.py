"""vigil.error_handling.breaker.window: the count and time sliding windows, on explicit times."""

from __future__ import annotations

import math
import random

import pytest

from vigil.error_handling.breaker.window import CountWindow, TimeWindow, Window, make_window


def totals(window: Window) -> tuple[int, int, int]:
    return window.calls, window.failures, window.slows


def test_a_count_window_keeps_the_last_n_calls() -> None:
    """Once full, each new call pushes the oldest out of the totals."""
    window = CountWindow(3)
    window.record(True, False, 0.0)
    window.record(False, True, 0.0)
    assert totals(window) == (2, 1, 1)
    window.record(True, True, 0.0)
    assert totals(window) == (3, 2, 2)
    window.record(False, False, 0.0)  # the first (failed) call leaves
    assert totals(window) == (3, 1, 2)
    window.record(False, False, 0.0)  # the slow one leaves
    assert totals(window) == (3, 1, 1)


def test_a_count_window_ignores_time() -> None:
    """Calls leave a count window only when pushed out, however old they are."""
    window = CountWindow(2)
    window.record(True, False, 0.0)
    window.advance(1e9)
    assert totals(window) == (1, 1, 0)


def test_a_time_window_drops_calls_older_than_its_seconds() -> None:
    """A 10 s window: calls in seconds 100..109 count at 109.9, the ones of second 100 leave
    at 110.0 (per-second buckets, Resilience4j's TIME_BASED)."""
    window = TimeWindow(10)
    window.record(True, False, 100.2)
    window.record(False, True, 100.9)
    window.record(False, False, 105.0)
    window.advance(109.9)
    assert totals(window) == (3, 1, 1)
    window.advance(110.0)
    assert totals(window) == (1, 0, 0)
    window.advance(115.0)
    assert totals(window) == (0, 0, 0)


def test_a_time_window_keeps_at_most_one_bucket_per_second() -> None:
    """10,000 calls over 50 s in a 5 s window hold at most 5 buckets; totals match a
    recount of the calls inside the window."""
    rng = random.Random(7)
    window = TimeWindow(5)
    calls: list[tuple[float, bool, bool]] = []
    now = 0.0
    for _ in range(10_000):
        now += rng.random() * 0.01
        failed, slow = rng.random() < 0.3, rng.random() < 0.2
        window.record(failed, slow, now)
        calls.append((now, failed, slow))
        assert len(window._buckets) <= 5
    inside = [c for c in calls if math.floor(c[0]) > math.floor(now) - 5]
    assert totals(window) == (len(inside), sum(c[1] for c in inside),
                              sum(c[2] for c in inside))


def test_a_time_window_survives_a_clock_stepping_back_or_going_bad() -> None:
    """A call timed before the newest bucket joins it; inf and NaN times join the newest
    bucket too: nothing raises, the bucket count stays bounded."""
    window = TimeWindow(3)
    window.record(False, False, 50.0)
    window.record(True, False, 49.0)
    window.record(True, False, math.nan)
    window.record(False, True, math.inf)
    window.advance(math.nan)
    assert totals(window) == (4, 2, 1)
    assert len(window._buckets) == 1
    empty = TimeWindow(3)
    empty.record(True, False, -math.inf)
    assert totals(empty) == (1, 1, 0)


@pytest.mark.parametrize("kind", ["count", "time"])
def test_clear_forgets_every_call(kind: str) -> None:
    """clear() empties the window and its totals."""
    window = make_window(kind, 4)
    for now in (1.0, 2.0, 3.0):
        window.record(True, True, now)
    window.clear()
    window.advance(3.0)
    assert totals(window) == (0, 0, 0)
    window.record(False, False, 3.5)
    assert totals(window) == (1, 0, 0)


def test_make_window_picks_the_kind() -> None:
    """make_window builds a CountWindow for "count" and a TimeWindow for "time"."""
    assert isinstance(make_window("count", 2), CountWindow)
    assert isinstance(make_window("time", 2), TimeWindow)
