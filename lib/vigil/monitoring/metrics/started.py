"""Calls started, counted without a lock: the one counting trick of the recorder.

``itertools.count().__next__`` is atomic under the GIL and costs less than any lock, so a
decorated call's start is one C call; but the count has no read method: its ``repr`` holds the
next value (``count(7)``). :meth:`StartCounter.value` parses it, at scrape time only.
``tests/unit/monitoring/test_metrics_started.py`` pins the ``repr`` form, from several threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

__all__ = ["StartCounter"]


class StartCounter:
    """``enter()`` counts one start (lock-free); :meth:`value` reads how many so far."""

    __slots__ = ("_count", "enter")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.enter: Callable[[], object] = self._count.__next__

    def value(self) -> int:
        """Starts counted so far."""
        return int(repr(self._count)[6:-1])
