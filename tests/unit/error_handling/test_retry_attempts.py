"""vigil.error_handling.retry.attempts: retrying() loops, Attempt, current_attempt, the drivers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from tests.unit.error_handling.test_retry import OUTCOMES, Flaky, Rig

from vigil.config import ConfigError
from vigil.error_handling.retry import (
    Attempt,
    RetryGaveUp,
    RetryScheduled,
    RetrySucceeded,
    current_attempt,
    retry_events,
    retrying,
    wait_fixed,
)


def test_sync_loop_retries_and_exposes_number_and_elapsed() -> None:
    """for attempt in retrying(): with attempt: retries, numbering from 1, timing on the clock."""
    rig = Rig()
    flaky = Flaky([OSError("a"), OSError("b")])
    seen: list[tuple[int, float]] = []
    for attempt in rig.retrying(max_attempts=5, wait=wait_fixed(2), operation="sync"):
        with attempt:
            seen.append((attempt.number, attempt.elapsed))
            rig.clock.advance(0.5)  # each attempt takes half a second
            value = flaky()
    assert value == "ok"
    assert seen == [(1, 0.0), (2, 2.5), (3, 5.0)]
    assert rig.clock.sleeps == [2.0, 2.0]
    assert rig.calls("sync", "success_after_retry") == 1
    assert rig.attempts("sync", "OSError") == 2


def test_async_loop_awaits_the_waits() -> None:
    """async for attempt in retrying(...) retries the same way, awaiting clock.sleep_async."""
    rig = Rig()
    flaky = Flaky([OSError("a")])

    async def main() -> str:
        async for attempt in rig.retrying(max_attempts=3, wait=wait_fixed(1), operation="async"):
            with attempt:
                await asyncio.sleep(0)
                value = flaky()
        return value

    assert asyncio.run(main()) == "ok"
    assert rig.clock.sleeps == [1.0]
    assert rig.calls("async", "success_after_retry") == 1


def test_a_first_try_success_is_counted_and_publishes_nothing() -> None:
    """One attempt that succeeds: success_first_try, no event, no log line, no wait."""
    rig = Rig()
    loop = rig.retrying(operation="once")
    seen = rig.events(loop)
    for attempt in loop:
        with attempt:
            pass
    assert rig.outcomes("once") == {**dict.fromkeys(OUTCOMES, 0.0), "success_first_try": 1.0}
    assert (seen, rig.clock.sleeps, rig.lines()) == ([], [], [])


def test_giving_up_lets_the_original_exception_leave_the_loop() -> None:
    """After the last attempt its own exception propagates, annotated, unchained, counted."""
    rig = Rig()
    last = ConnectionError("third")
    errors = [ConnectionError("first"), ConnectionError("second"), last]

    def run() -> None:
        for attempt in rig.retrying(max_attempts=3, operation="up"):
            with attempt:
                raise errors[attempt.number - 1]

    with pytest.raises(ConnectionError) as info:
        run()
    assert info.value is last
    assert info.value.__context__ is None
    assert info.value.vigil_attempts == 3  # type: ignore[attr-defined]
    assert info.value.__notes__ == ["vigil: gave up after 3 attempts (operation 'up')"]
    assert rig.calls("up", "failure_after_retry") == 1
    assert [line.get("attempt", line.get("attempts")) for line in rig.lines()] == [1, 2, 3]


def test_a_non_retryable_error_leaves_at_once() -> None:
    """An error outside retry_on ends the loop on the first attempt: failure_without_retry."""
    rig = Rig()

    def run() -> None:
        for attempt in rig.retrying(retry_on=OSError, operation="parse"):
            with attempt:
                raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        run()
    assert rig.calls("parse", "failure_without_retry") == 1
    assert rig.clock.sleeps == []


def test_interrupts_and_cancellation_leave_uncounted() -> None:
    """KeyboardInterrupt (sync) and CancelledError (async) propagate at once, no outcome counted."""
    rig = Rig()

    def interrupted() -> None:
        for attempt in rig.retrying(retry_on=BaseException, operation="job"):
            with attempt:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()

    async def waiter() -> None:
        async for attempt in rig.retrying(retry_on=BaseException, operation="job"):
            with attempt:
                await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert rig.outcomes("job") == dict.fromkeys(OUTCOMES, 0.0)
    assert rig.clock.sleeps == []


def test_cancelled_during_the_wait_propagates_uncounted() -> None:
    """A task cancelled while awaiting the backoff stops there; nothing is counted as an outcome."""
    rig = Rig()
    rig.clock.sleep_async = _never_wakes  # type: ignore[method-assign]
    attempts: list[int] = []

    async def loop() -> None:
        async for attempt in rig.retrying(operation="sleepy"):
            with attempt:
                attempts.append(attempt.number)
                raise OSError("io")

    async def main() -> None:
        task = asyncio.create_task(loop())
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert attempts == [1]
    assert rig.attempts("sleepy", "OSError") == 1
    assert rig.outcomes("sleepy") == dict.fromkeys(OUTCOMES, 0.0)


async def _never_wakes(seconds: float) -> None:
    await asyncio.Event().wait()


def test_result_retries_use_set_result_and_give_up_with_the_last_value() -> None:
    """retry_if_result judges set_result's value; when attempts run out the loop just ends."""
    rig = Rig()
    loop = rig.retrying(max_attempts=3, retry_if_result=lambda r: r is None, operation="poll",
                        wait=wait_fixed(1))
    seen = rig.events(loop)
    values = iter([None, None, None])
    for attempt in loop:
        with attempt:
            attempt.set_result(next(values))
    assert attempt.result is None
    assert rig.calls("poll", "failure_after_retry") == 1
    assert rig.attempts("poll", "result") == 2
    assert [type(e) for e in seen] == [RetryScheduled, RetryScheduled, RetryGaveUp]
    gave_up = seen[-1]
    assert isinstance(gave_up, RetryGaveUp)
    assert (gave_up.attempts, gave_up.reason, gave_up.exception) == (3, "attempts_exhausted", None)
    assert rig.lines()[0] == {"operation": "poll", "attempt": 1, "max_attempts": 3, "delay": 1.0,
                              "exception": "result"}  # no "error": results are never logged


def test_an_accepted_result_ends_the_loop_as_a_success() -> None:
    """Once the predicate is false the loop ends: success_after_retry and RetrySucceeded."""
    rig = Rig()
    loop = rig.retrying(max_attempts=5, retry_if_result=lambda r: r < 3, operation="count")
    seen = rig.events(loop)
    for attempt in loop:
        with attempt:
            attempt.set_result(attempt.number)
    assert attempt.result == 3
    assert seen[-1] == RetrySucceeded("count", 3)
    assert rig.calls("count", "success_after_retry") == 1


def test_a_body_that_sets_no_result_returned_none() -> None:
    """As in tenacity, a block that never calls set_result is judged as returning None."""
    rig = Rig()
    numbers = []
    for attempt in rig.retrying(max_attempts=2, retry_if_result=lambda r: r is None,
                                operation="forgot"):
        with attempt:
            numbers.append(attempt.number)
    assert numbers == [1, 2]
    assert rig.calls("forgot", "failure_after_retry") == 1


def test_a_raising_result_predicate_propagates_uncounted() -> None:
    """An exception from retry_if_result leaves the with block; no outcome is counted."""
    rig = Rig()

    def broken(result: object) -> bool:
        raise LookupError("predicate bug")

    def run() -> None:
        for attempt in rig.retrying(retry_if_result=broken, operation="bug"):
            with attempt:
                attempt.set_result(1)

    with pytest.raises(LookupError, match="predicate bug"):
        run()
    assert rig.outcomes("bug") == dict.fromkeys(OUTCOMES, 0.0)


def test_a_raising_retry_if_chains_to_the_judged_error() -> None:
    """retry_if runs while the attempt's exception is handled: it is the new one's __context__."""
    rig = Rig()

    def broken(exc: Exception) -> bool:
        raise LookupError("predicate bug")

    def run() -> None:
        for attempt in rig.retrying(retry_if=broken, operation="chain"):
            with attempt:
                raise OSError("io")

    with pytest.raises(LookupError) as info:
        run()
    assert isinstance(info.value.__context__, OSError)


def test_max_time_stops_the_loop_before_a_wait_that_would_pass_it() -> None:
    """No attempt starts after max_time: the wait that would cross it is not slept."""
    rig = Rig()
    starts: list[float] = []

    def run() -> None:
        for attempt in rig.retrying(max_attempts=10, wait=wait_fixed(1), max_time=4.5,
                                    operation="deadline"):
            with attempt:
                starts.append(attempt.elapsed)
                rig.clock.advance(1.0)
                raise OSError("slow")

    with pytest.raises(OSError, match="slow") as info:
        run()
    assert starts == [0.0, 2.0, 4.0]
    assert rig.clock.sleeps == [1.0, 1.0]  # the third wait (to 6.0) was not taken
    assert info.value.__notes__ == [
        "vigil: gave up after 3 attempts (operation 'deadline'): "
        "the next attempt would start after max_time (4.5s)"]
    assert rig.lines()[-1]["reason"] == "max_time"


def test_each_iteration_is_a_new_call() -> None:
    """Iterating one retrying() object again starts again at attempt 1; its events are shared."""
    rig = Rig()
    loop = rig.retrying(operation="again")
    assert retry_events(loop) is loop.events
    for _ in range(2):
        numbers = []
        for attempt in loop:
            with attempt:
                numbers.append(attempt.number)
                if attempt.number == 1:
                    raise OSError("once")
        assert numbers == [1, 2]
    assert rig.calls("again", "success_after_retry") == 2


def test_a_finished_iterator_stays_finished() -> None:
    """next() after the loop ended raises StopIteration again, without a new attempt."""
    rig = Rig()
    attempts = iter(rig.retrying(operation="done"))
    with next(attempts):
        pass
    for _ in range(2):
        with pytest.raises(StopIteration):
            next(attempts)
    assert rig.calls("done", "success_first_try") == 1


def test_attempts_must_be_used_as_with_blocks() -> None:
    """Skipping `with attempt:` or entering an attempt twice is a RuntimeError, never silent."""
    rig = Rig()
    attempts = iter(rig.retrying(operation="misuse"))
    first = next(attempts)
    with pytest.raises(RuntimeError, match="with attempt"):
        next(attempts)
    with first, pytest.raises(RuntimeError, match="entered once"), first:
        pass


def test_operation_is_required_and_validated() -> None:
    """retrying() has no function to name its series after: operation is required, non-empty."""
    with pytest.raises(TypeError, match="operation"):
        retrying()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="operation"):
        retrying(operation="")


def test_current_attempt_is_set_only_when_exposed() -> None:
    """current_attempt() is the running Attempt with expose_attempt=True, None otherwise/after."""
    rig = Rig()
    assert current_attempt() is None
    inside: list[Attempt | None] = []
    for attempt in rig.retrying(operation="hidden"):
        with attempt:
            inside.append(current_attempt())
    for attempt in rig.retrying(operation="shown", expose_attempt=True):
        with attempt:
            inside.append(current_attempt())
            if attempt.number == 1:
                raise OSError("again")
    assert inside[0] is None
    assert [a.number if a else None for a in inside[1:]] == [1, 2]
    assert current_attempt() is None


def test_an_inner_exposing_retry_shadows_the_outer_one_and_restores_it() -> None:
    """Nested exposing retries: the innermost attempt is current; the outer one is back after."""
    rig = Rig()
    seen: list[tuple[str, int]] = []
    for outer in rig.retrying(operation="outer", expose_attempt=True):
        with outer:
            for inner in rig.retrying(operation="inner", expose_attempt=True):
                with inner:
                    now = current_attempt()
                    assert now is not None
                    seen.append((now.operation, now.number))
                    if inner.number == 1:
                        raise OSError("inner")
            back = current_attempt()
            assert back is not None
            seen.append((back.operation, back.number))
    assert seen == [("inner", 1), ("inner", 2), ("outer", 1)]


def test_concurrent_tasks_each_see_their_own_attempt() -> None:
    """The ContextVar is per task: two interleaved async loops never read each other's attempt."""
    rig = Rig()
    log: list[tuple[str, int, int]] = []

    async def worker(name: str) -> None:
        async for attempt in rig.retrying(operation=name, expose_attempt=True, max_attempts=3):
            with attempt:
                await asyncio.sleep(0)
                now = current_attempt()
                assert now is not None
                log.append((name, attempt.number, now.number))
                assert now.operation == name
                if attempt.number < 3:
                    raise OSError(name)

    async def main() -> None:
        await asyncio.gather(worker("a"), worker("b"))

    asyncio.run(main())
    assert all(number == seen for _, number, seen in log)
    assert sorted(log) == [("a", n, n) for n in (1, 2, 3)] + [("b", n, n) for n in (1, 2, 3)]


def test_eight_threads_share_one_retrying_object() -> None:
    """Each thread's loop is its own call: every retry and outcome is counted exactly once."""
    rig = Rig()
    loop = rig.retrying(operation="shared", expose_attempt=True)
    threads, per_thread = 8, 100
    start = threading.Barrier(threads)
    mismatches: list[Any] = []

    def worker() -> None:
        start.wait()
        for _ in range(per_thread):
            for attempt in loop:
                with attempt:
                    now = current_attempt()
                    if now is not attempt:
                        mismatches.append(now)
                    if attempt.number == 1:
                        raise ConnectionError("first")

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    total = threads * per_thread
    assert mismatches == []
    assert rig.calls("shared", "success_after_retry") == total
    assert rig.attempts("shared", "ConnectionError") == total
    assert len(rig.clock.sleeps) == total


def test_a_raising_subscriber_does_not_break_the_loop() -> None:
    """Events from a loop go through the publisher: a subscriber bug is counted, not raised."""
    rig = Rig()
    loop = rig.retrying(operation="sub")

    def broken(event: object) -> None:
        raise RuntimeError("subscriber bug")

    loop.events.subscribe(broken)
    for attempt in loop:
        with attempt:
            if attempt.number == 1:
                raise OSError("io")
    assert rig.registry.get_sample_value(
        "vigil_event_subscriber_failures_total", {"publisher": "retry:sub"}) == 2
