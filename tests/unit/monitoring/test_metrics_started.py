"""vigil.monitoring.metrics.started: the lock-free start counter and the repr it reads."""

from __future__ import annotations

import itertools
import threading

from vigil.monitoring.metrics.started import StartCounter


def test_itertools_count_repr_holds_the_next_value() -> None:
    """The form value() parses: count(N) where N is the next value (CPython's repr)."""
    counter = itertools.count()
    for _ in range(12):
        next(counter)
    assert repr(counter) == "count(12)"


def test_value_counts_every_enter_from_many_threads() -> None:
    """8 threads x 5,000 enters read back as exactly 40,000."""
    starts = StartCounter()

    def work() -> None:
        for _ in range(5_000):
            starts.enter()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert starts.value() == 40_000


def test_a_fresh_counter_reads_zero() -> None:
    """No start yet: 0."""
    assert StartCounter().value() == 0
