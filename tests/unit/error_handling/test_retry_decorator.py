"""vigil.error_handling.retry.decorator: the new options through @with_retry, the bare form, and
the first-try fast path (what it skips, and that it reports exactly what the driver reports)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from tests.unit.error_handling.test_retry import OUTCOMES, Flaky, Rig, _flaky_async

import vigil
from vigil.config import ConfigError
from vigil.error_handling.retry import (
    RetryEvent,
    RetryGaveUp,
    RetryPolicy,
    current_attempt,
    wait_fixed,
    with_retry,
)
from vigil.error_handling.retry import fast_path as fast_path_module
from vigil.monitoring.metrics import performance_monitor
from vigil.testing import FakeClock


class Script:
    """A callable returning or raising the given outcomes in turn (then returning "ok")."""

    def __init__(self, outcomes: Iterable[object]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, *args: Any) -> object:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _as_async(fn: Callable[..., object]) -> Callable[..., Any]:
    async def run(*args: Any) -> object:
        await asyncio.sleep(0)
        return fn(*args)

    return run


class CountingClock(FakeClock):
    """A FakeClock that counts monotonic() reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


# --- @with_retry without parentheses ------------------------------------------------------


def test_bare_decorator_uses_the_configured_defaults_sync_and_async() -> None:
    """@with_retry alone is @with_retry(): defaults from error_handling.retry, sync and async."""
    vigil.configure({"error_handling": {"retry": {"default_max_attempts": 2,
                                                  "default_initial_delay": 0}}})
    flaky = Flaky([OSError("io")])

    @with_retry
    def fetch() -> str:
        return flaky()

    async_flaky = Flaky([OSError("io")])

    @with_retry
    async def fetch_async() -> str:
        return async_flaky()

    assert fetch() == "ok"
    assert asyncio.run(fetch_async()) == "ok"
    assert (flaky.calls, async_flaky.calls) == (2, 2)
    assert fetch.retrier.policy == RetryPolicy.from_config()  # type: ignore[attr-defined]
    assert fetch.__name__ == "fetch"
    assert asyncio.iscoroutinefunction(fetch_async)
    labels = {"operation": fetch.__qualname__, "outcome": "success_after_retry"}
    assert performance_monitor.registry.get_sample_value("vigil_retry_calls_total", labels) == 1


def test_bare_decorator_on_a_callable_object_and_a_generator() -> None:
    """with_retry(obj) decorates any callable; a generator function is still refused."""
    wrapped = with_retry(Flaky([]))
    assert wrapped() == "ok"

    def numbers() -> Iterable[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        with_retry(numbers)


# --- the new options through the decorator ------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
def test_retry_if_result_retries_until_accepted(is_async: bool) -> None:
    """A rejected result is retried; the first accepted one is returned (sync and async)."""
    rig = Rig()
    script = Script([None, None, 42])
    fn = rig.retry(max_attempts=5, retry_if_result=lambda r: r is None, operation="poll",
                   wait=wait_fixed(1))(_as_async(script) if is_async else script)
    result = asyncio.run(fn()) if is_async else fn()
    assert (result, script.calls, rig.clock.sleeps) == (42, 3, [1.0, 1.0])
    assert rig.calls("poll", "success_after_retry") == 1
    assert rig.attempts("poll", "result") == 2


@pytest.mark.parametrize("is_async", [False, True])
def test_retry_if_result_gives_up_returning_the_last_result(is_async: bool) -> None:
    """When attempts run out the last (still rejected) result comes back; RetryGaveUp says so."""
    rig = Rig()
    script = Script([[], [], ["last"]])
    fn = rig.retry(max_attempts=3, retry_if_result=lambda r: len(r) < 2,
                   operation="short")(_as_async(script) if is_async else script)
    seen = rig.events(fn)
    result = asyncio.run(fn()) if is_async else fn()
    assert result == ["last"]
    assert rig.calls("short", "failure_after_retry") == 1
    gave_up = seen[-1]
    assert isinstance(gave_up, RetryGaveUp)
    assert (gave_up.attempts, gave_up.exception, gave_up.result) == (3, None, ["last"])
    assert rig.lines()[-1] == {"operation": "short", "attempts": 3,
                               "reason": "attempts_exhausted", "exception": "result"}


def test_a_rejected_result_without_retries_is_a_failure_without_retry() -> None:
    """max_attempts=1, a rejected result: returned, counted failure_without_retry, no log line."""
    rig = Rig()
    fn = rig.retry(max_attempts=1, retry_if_result=lambda r: True, operation="one")(Script([7]))
    assert fn() == 7
    assert rig.calls("one", "failure_without_retry") == 1
    assert rig.lines() == []


def test_results_and_exceptions_mix() -> None:
    """An exception, then a rejected result, then an accepted one: two retries, one of each kind."""
    rig = Rig()
    fn = rig.retry(max_attempts=4, retry_if_result=lambda r: r == "bad",
                   operation="mixed")(Script([OSError("io"), "bad", "good"]))
    assert fn() == "good"
    assert (rig.attempts("mixed", "OSError"), rig.attempts("mixed", "result")) == (1, 1)


@pytest.mark.parametrize("is_async", [False, True])
def test_max_time_gives_up_with_the_original_exception(is_async: bool) -> None:
    """With max_time no attempt starts after it; the last exception propagates, annotated."""
    rig = Rig()

    def slow() -> None:
        rig.clock.advance(1.0)
        raise TimeoutError("slow")

    fn = rig.retry(max_attempts=10, wait=wait_fixed(1), max_time=4.5, operation="deadline")(
        _as_async(slow) if is_async else slow)
    with pytest.raises(TimeoutError) as info:
        asyncio.run(fn()) if is_async else fn()
    assert info.value.vigil_attempts == 3  # type: ignore[attr-defined]
    assert "after max_time (4.5s)" in info.value.__notes__[0]
    assert rig.clock.sleeps == [1.0, 1.0]
    assert rig.calls("deadline", "failure_after_retry") == 1


def test_max_time_counts_the_first_attempt() -> None:
    """The clock starts before the first attempt: a long first attempt leaves no time to retry."""
    rig = Rig()

    def first_is_slow() -> None:
        rig.clock.advance(5.0)
        raise OSError("late")

    fn = rig.retry(max_time=4, wait=wait_fixed(0.1), operation="long")(first_is_slow)
    with pytest.raises(OSError, match="late"):
        fn()
    assert rig.clock.sleeps == []
    assert rig.calls("long", "failure_without_retry") == 1


def test_wait_strategy_drives_the_sleeps() -> None:
    """wait=fn(n) is slept before retry n."""
    rig = Rig()
    fn = rig.retry(max_attempts=4, wait=lambda n: 0.5 * n)(Flaky([OSError()] * 3))
    assert fn() == "ok"
    assert rig.clock.sleeps == [0.5, 1.0, 1.5]


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_a_bad_wait_value_raises_before_any_sleep(bad: float) -> None:
    """A NaN/negative/infinite wait is a ConfigError chained to the failure; nothing is slept."""
    rig = Rig()
    fn = rig.retry(wait=lambda n: bad)(Flaky([OSError("io")]))
    with pytest.raises(ConfigError, match="wait") as info:
        fn()
    assert isinstance(info.value.__context__, OSError)
    assert rig.clock.sleeps == []


def test_wait_with_backoff_arguments_is_refused_at_decoration() -> None:
    """with_retry(wait=..., initial_delay=...) is a ConfigError: one of them would be ignored."""
    with pytest.raises(ConfigError, match="either wait or initial_delay"):
        with_retry(wait=wait_fixed(1), initial_delay=2)


def test_expose_attempt_lets_the_function_read_its_attempt() -> None:
    """Inside @with_retry(expose_attempt=True) current_attempt() has number and elapsed."""
    rig = Rig()
    seen: list[tuple[int, float]] = []

    @rig.retry(max_attempts=3, wait=wait_fixed(2), expose_attempt=True)
    def fetch() -> str:
        attempt = current_attempt()
        assert attempt is not None
        seen.append((attempt.number, attempt.elapsed))
        if attempt.number < 3:
            raise OSError("again")
        return "ok"

    @rig.retry()
    def hidden() -> object:
        return current_attempt()

    assert fetch() == "ok"
    assert seen == [(1, 0.0), (2, 2.0), (3, 4.0)]
    assert hidden() is None
    with pytest.raises(ConfigError, match="expose_attempt"):
        rig.retry(expose_attempt="yes")(Flaky([]))


def test_threads_each_read_their_own_attempt() -> None:
    """8 threads through one exposing function: each call sees its own numbers 1 then 2."""
    rig = Rig()
    numbers: list[list[int]] = []
    lock = threading.Lock()

    @rig.retry(expose_attempt=True, operation="threads")
    def once_flaky(state: list[int]) -> None:
        attempt = current_attempt()
        assert attempt is not None
        state.append(attempt.number)
        if len(state) == 1:
            raise ConnectionError("first")

    def worker() -> None:
        for _ in range(100):
            state: list[int] = []
            once_flaky(state)
            with lock:
                numbers.append(state)

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert numbers == [[1, 2]] * 800
    assert rig.calls("threads", "success_after_retry") == 800


# --- the fast path: what it skips ---------------------------------------------------------


def test_a_first_try_success_does_no_clock_read_no_policy_call_no_event(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Default options: a success is one counter increment; no call state, clock, policy, event."""
    rig = Rig()
    rig.clock = CountingClock()
    asked: list[object] = []
    def retry_if(exc: Exception) -> bool:
        asked.append(exc)
        return True

    def wait(retry: int) -> float:
        asked.append(retry)
        return 0.0

    fn = rig.retry(retry_if=retry_if, wait=wait, operation="fast")(Flaky([]))
    seen = rig.events(fn)

    def no_call_state(*args: object) -> None:
        raise AssertionError("the fast path built a RetryCall on success")

    monkeypatch.setattr(fast_path_module, "RetryCall", no_call_state)
    assert fn() == "ok"
    assert asyncio.run(rig.retry(operation="fast_async")(_flaky_async(Flaky([])))()) == "ok"
    assert (rig.clock.reads, asked, seen) == (0, [], [])
    assert rig.calls("fast", "success_first_try") == 1


def test_max_time_reads_the_clock_once_and_retry_if_result_once_per_success() -> None:
    """The options that stay on the fast path add exactly their own work: one read, one call."""
    rig = Rig()
    rig.clock = CountingClock()
    judged: list[object] = []

    def rejects(result: object) -> bool:
        judged.append(result)
        return False

    fn = rig.retry(max_time=10, retry_if_result=rejects)(Flaky([]))
    assert fn() == "ok"
    assert (rig.clock.reads, judged) == (1, ["ok"])


def test_expose_attempt_bypasses_the_fast_path() -> None:
    """Only expose_attempt needs the driver from the first attempt: the wrapper says which."""
    rig = Rig()
    for options, fast in (({}, True), ({"max_time": 5}, True),
                          ({"retry_if_result": bool}, True), ({"expose_attempt": True}, False)):
        fn = rig.retry(**options)(Flaky([]))
        assert fast_path_module.fast_path_applies(fn.retrier) is fast  # type: ignore[attr-defined]
        assert fn.__code__.co_name == ("fast" if fast else "driven")


# --- the fast path: the same report as the driver -----------------------------------------

SCRIPTS: dict[str, Callable[[], list[object]]] = {  # fresh exceptions per run (notes stick)
    "success": list,
    "one retry": lambda: [OSError("io")],
    "exhausted": lambda: [OSError("a"), OSError("b"), OSError("c")],
    "not retryable": lambda: [ValueError("v")],
    "late not retryable": lambda: [OSError("a"), ValueError("v")],
    "result retried": lambda: [None, "fine"],
    "result exhausted": lambda: [None, None, None],
    "result then error": lambda: [None, OSError("a"), "fine"],
}


def _report(rig: Rig, operation: str, fn: Callable[[], object], is_async: bool,
            seen: list[RetryEvent]) -> dict[str, Any]:
    try:
        outcome: object = asyncio.run(fn()) if is_async else fn()  # type: ignore[arg-type]
    except Exception as exc:
        outcome = (type(exc).__name__, str(exc), exc.__notes__,
                   exc.vigil_attempts)  # type: ignore[attr-defined]
    events = [(type(e).__name__, *(getattr(e, f, None) for f in (
        "attempt", "attempts", "delay", "reason", "result"))) for e in seen]
    lines = [{k: v for k, v in line.items() if k != "operation"} for line in rig.lines()]
    counts = {o: rig.calls(operation, o) for o in OUTCOMES}
    retries = {name: rig.attempts(operation, name)
               for name in ("OSError", "ValueError", "result")}
    return {"outcome": outcome, "sleeps": list(rig.clock.sleeps), "events": events,
            "lines": lines, "counts": counts, "retries": retries}


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_the_fast_path_reports_exactly_what_the_driver_reports(name: str, is_async: bool) -> None:
    """Same script through the fast wrapper and the driver: same result, waits, events, lines."""
    reports = []
    for expose in (False, True):  # expose_attempt=True: the driver from the first attempt
        rig = Rig(seed=11)
        operation = f"{name}:{expose}"
        script = Script(SCRIPTS[name]())
        fn = rig.retry(max_attempts=3, retry_on=OSError, retry_if_result=lambda r: r is None,
                       max_time=100, operation=operation, expose_attempt=expose)(
            _as_async(script) if is_async else script)
        assert fast_path_module.fast_path_applies(fn.retrier) is not expose  # type: ignore[attr-defined]
        reports.append(_report(rig, operation, fn, is_async, rig.events(fn)))
        reports[-1]["outcome"] = str(reports[-1]["outcome"]).replace(f"{name}:{expose}", "op")
    assert reports[0] == reports[1]
    assert reports[0]["counts"] != dict.fromkeys(OUTCOMES, 0.0)  # the script did run


def test_the_plain_fast_path_matches_retrier_call() -> None:
    """Default options (no start read) against Retrier.call: same waits, counts and note."""
    reports = []
    for via_retrier in (False, True):
        rig = Rig(seed=5)
        script = Script([OSError("a"), OSError("b"), OSError("c")])
        fn: Callable[[], object]
        if via_retrier:
            retrier = rig.retry(max_attempts=3, operation="op")(Flaky([])).retrier  # type: ignore[attr-defined]
            fn = functools.partial(retrier.call, script)
        else:
            fn = rig.retry(max_attempts=3, operation="op")(script)
        reports.append(_report(rig, "op", fn, False, []))
    assert reports[0] == reports[1]
