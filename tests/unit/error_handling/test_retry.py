"""vigil.error_handling.retry: the seed's @with_retry, its policy, metrics, events and logs."""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import vigil
from vigil.clock import SYSTEM_CLOCK
from vigil.config import ConfigError
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.retry import (
    Retrier,
    RetryEvent,
    RetryGaveUp,
    Retrying,
    RetryPolicy,
    RetryScheduled,
    RetrySucceeded,
    retry_events,
    retrying,
    with_retry,
)
from vigil.monitoring.metrics import performance_monitor
from vigil.testing import FakeClock, LogCapture

OUTCOMES = ("success_first_try", "success_after_retry", "failure_after_retry",
            "failure_without_retry")


class Rig:
    """A fresh registry, fake clock, seeded rng and captured logger for one test."""

    def __init__(self, seed: int = 7) -> None:
        self.registry = CollectorRegistry()
        self.clock = FakeClock()
        self.rng = random.Random(seed)
        self.logs = LogCapture()
        self.stream = self.logs.stream
        self.logger = self.logs.logger("vigil.retry", registry=self.registry)

    def retry(self, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return with_retry(**self.options(kwargs))

    def retrying(self, **kwargs: Any) -> Retrying:
        return retrying(**self.options({"operation": "loop", **kwargs}))

    def options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The rig's clock, registry and logger, its rng unless ``wait`` is given, + kwargs."""
        options: dict[str, Any] = {"clock": self.clock, "registry": self.registry,
                                   "logger": self.logger}
        if "wait" not in kwargs:
            options["rng"] = self.rng
        options.update(kwargs)
        return options

    def events(self, target: Any) -> list[RetryEvent]:
        """A list that receives every event of ``target`` (a retried function or loop)."""
        seen: list[RetryEvent] = []
        retry_events(target).subscribe(seen.append)
        return seen

    def lines(self) -> list[dict[str, Any]]:
        """The metadata of every log line written so far."""
        return [entry["metadata"] for entry in self.logger.get_recent_logs()]

    def calls(self, operation: str, outcome: str) -> float | None:
        return self.registry.get_sample_value(
            "vigil_retry_calls_total", {"operation": operation, "outcome": outcome})

    def attempts(self, operation: str, exception: str) -> float | None:
        return self.registry.get_sample_value(
            "vigil_retry_attempts_total", {"operation": operation, "exception": exception})

    def outcomes(self, operation: str) -> dict[str, float | None]:
        return {outcome: self.calls(operation, outcome) for outcome in OUTCOMES}


class Flaky:
    """A callable raising the given exceptions in turn, then returning ``"ok"``."""

    def __init__(self, errors: Iterable[BaseException]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _flaky_async(flaky: Flaky) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return flaky(*args, **kwargs)

    return run


# --- the seed's usage, sync and async -----------------------------------------------------


def test_seed_example_retries_io_and_connection_errors_on_async_function() -> None:
    """The seed's decorator on an async def retries IOError and ConnectionError, then succeeds."""
    rig = Rig()
    flaky = Flaky([OSError("disk busy"), ConnectionError("reset")])

    @with_retry(max_attempts=3, retry_on=(IOError, ConnectionError), clock=rig.clock,
                registry=rig.registry, logger=rig.logger, rng=rig.rng)
    async def process_file(file_path: str) -> str:
        return flaky(file_path)

    assert asyncio.run(process_file("a.pdf")) == "ok"
    assert flaky.calls == 3
    assert len(rig.clock.sleeps) == 2
    assert rig.calls(process_file.__qualname__, "success_after_retry") == 1


def test_sync_function_retries_then_succeeds() -> None:
    """A plain function failing twice is called three times and returns the third result."""
    rig = Rig()
    flaky = Flaky([TimeoutError(), TimeoutError()])
    fetch = rig.retry(max_attempts=3, operation="fetch")(flaky)
    assert fetch("url") == "ok"
    assert flaky.calls == 3
    assert len(rig.clock.sleeps) == 2
    assert rig.calls("fetch", "success_after_retry") == 1


def test_retrier_call_and_call_async_retry_without_a_decorator() -> None:
    """Retrier.call and Retrier.call_async drive the same policy for undecorated callables."""
    rig = Rig()
    policy = RetryPolicy.from_config(3, (OSError,), jitter=False, rng=rig.rng)
    retrier = Retrier(policy, operation="manual", clock=rig.clock, registry=rig.registry,
                      logger=rig.logger)
    assert retrier.call(Flaky([OSError("io")]), 1, key="v") == "ok"
    assert asyncio.run(retrier.call_async(_flaky_async(Flaky([OSError("io")])), 1)) == "ok"
    assert rig.clock.sleeps == [1.0, 1.0]
    assert rig.calls("manual", "success_after_retry") == 2


# --- backoff ------------------------------------------------------------------------------


def test_delays_without_jitter_grow_exponentially_up_to_max_delay() -> None:
    """jitter=False waits initial_delay * multiplier**(n-1), capped at max_delay."""
    rig = Rig()
    always = rig.retry(max_attempts=6, initial_delay=1.0, multiplier=2.0, max_delay=5.0,
                       jitter=False)(Flaky([OSError("io")] * 6))
    with pytest.raises(OSError, match="io"):
        always()
    assert rig.clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jittered_delays_stay_in_their_window_and_grow_below_the_cap() -> None:
    """With jitter retry n waits in [b, 2b] (b its base), or [max/2, max] at the cap."""
    rig = Rig()
    always = rig.retry(max_attempts=10, initial_delay=0.5, multiplier=2.0, max_delay=30.0)(
        Flaky([OSError("io")] * 10))
    with pytest.raises(OSError, match="io"):
        always()
    sleeps = rig.clock.sleeps
    assert len(sleeps) == 9
    for n, delay in enumerate(sleeps, start=1):
        high = min(2 * 0.5 * 2 ** (n - 1), 30.0)
        assert max(high / 2, 0.5) <= delay <= high
        assert 0.5 <= delay <= 30.0
    below_cap = sleeps[:5]  # 2b <= 30 for n <= 5
    assert below_cap == sorted(below_cap)
    assert len(set(sleeps[5:])) == 4  # at the cap jitter is kept: no synchronised clients


def test_jitter_comes_from_the_injected_rng() -> None:
    """The same seed gives the same delays; another seed gives different ones."""

    def delays(seed: int) -> list[float]:
        rig = Rig(seed)
        with pytest.raises(OSError, match="io"):
            rig.retry(max_attempts=5)(Flaky([OSError("io")] * 5))()
        return rig.clock.sleeps

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)
    assert len(set(delays(3))) == 4


@given(initial=st.floats(0, 100), extra=st.floats(0, 1000), multiplier=st.floats(1, 10),
       retry=st.integers(1, 3000), seed=st.integers(0, 2**32), jitter=st.booleans())
def test_every_delay_lies_between_initial_and_max_delay(
        initial: float, extra: float, multiplier: float, retry: int, seed: int,
        jitter: bool) -> None:
    """For any valid policy and retry number (overflow included) the wait is within bounds."""
    policy = RetryPolicy(max_attempts=5, initial_delay=initial, max_delay=initial + extra,
                         multiplier=multiplier, jitter=jitter, rng=random.Random(seed))
    assert policy.initial_delay <= policy.delay(retry) <= policy.max_delay


def test_zero_initial_delay_retries_at_once() -> None:
    """initial_delay=0 means no wait between attempts."""
    rig = Rig()
    assert rig.retry(initial_delay=0)(Flaky([OSError("io"), OSError("io")]))() == "ok"
    assert rig.clock.sleeps == [0.0, 0.0]


# --- what is retried ----------------------------------------------------------------------


def test_only_retry_on_exceptions_are_retried() -> None:
    """An exception outside retry_on propagates after one attempt, without a wait."""
    rig = Rig()
    flaky = Flaky([ValueError("bad input")])
    parse = rig.retry(max_attempts=3, retry_on=(OSError,), operation="parse")(flaky)
    with pytest.raises(ValueError, match="bad input"):
        parse()
    assert flaky.calls == 1
    assert rig.clock.sleeps == []
    assert rig.calls("parse", "failure_without_retry") == 1


def test_retry_on_accepts_a_single_class() -> None:
    """retry_on=OSError works like retry_on=(OSError,)."""
    rig = Rig()
    assert rig.retry(retry_on=OSError)(Flaky([OSError("io")]))() == "ok"
    assert len(rig.clock.sleeps) == 1


def test_retry_if_vetoes_a_retry_and_runs_only_when_it_decides() -> None:
    """retry_if(exc) False stops retrying; it is not asked once no attempts are left."""
    rig = Rig()
    asked: list[str] = []

    def transient(exc: Exception) -> bool:
        asked.append(str(exc))
        return "transient" in str(exc)

    flaky = Flaky([OSError("transient"), OSError("permanent")])
    with pytest.raises(OSError, match="permanent"):
        rig.retry(max_attempts=5, retry_if=transient)(flaky)()
    assert flaky.calls == 2
    assert asked == ["transient", "permanent"]

    asked.clear()
    with pytest.raises(OSError, match="transient"):
        rig.retry(max_attempts=1, retry_if=transient)(Flaky([OSError("transient")]))()
    assert asked == []


def test_a_raising_retry_if_propagates_chained_to_the_judged_error() -> None:
    """An exception from retry_if propagates with the error it was judging as __context__."""
    rig = Rig()

    def broken(exc: Exception) -> bool:
        raise LookupError("predicate bug")

    with pytest.raises(LookupError, match="predicate bug") as info:
        rig.retry(retry_if=broken)(Flaky([OSError("io")]))()
    assert isinstance(info.value.__context__, OSError)
    assert rig.clock.sleeps == []


def test_circuit_open_error_is_never_retried() -> None:
    """CircuitOpenError propagates at once even with retry_on=(Exception,)."""
    rig = Rig()
    flaky = Flaky([CircuitOpenError("api", "OPEN", 12.0)])
    guarded = rig.retry(max_attempts=5, retry_on=(Exception,), operation="guarded")(flaky)
    with pytest.raises(CircuitOpenError) as info:
        guarded()
    assert flaky.calls == 1
    assert rig.clock.sleeps == []
    assert "CircuitOpenError is never retried" in info.value.__notes__[0]
    assert rig.calls("guarded", "failure_without_retry") == 1


def test_keyboard_interrupt_propagates_at_once_untouched_and_uncounted() -> None:
    """A non-Exception (KeyboardInterrupt) is not retried, annotated or counted as an outcome."""
    rig = Rig()
    flaky = Flaky([KeyboardInterrupt()])
    job = rig.retry(max_attempts=5, retry_on=(BaseException,), operation="job")(flaky)
    with pytest.raises(KeyboardInterrupt) as info:
        job()
    assert flaky.calls == 1
    assert rig.clock.sleeps == []
    assert not hasattr(info.value, "vigil_attempts")
    assert rig.outcomes("job") == dict.fromkeys(OUTCOMES, 0.0)


def test_cancelled_task_propagates_at_once() -> None:
    """Cancelling a task inside a with_retry coroutine raises CancelledError with no retry."""
    rig = Rig()
    calls = 0

    @rig.retry(max_attempts=5, retry_on=(BaseException,), operation="waiter")
    async def waiter() -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert calls == 1
    assert rig.clock.sleeps == []
    assert rig.outcomes("waiter") == dict.fromkeys(OUTCOMES, 0.0)


# --- giving up ----------------------------------------------------------------------------


def test_last_attempts_exception_propagates_with_note_and_attempt_count() -> None:
    """After the last attempt the original exception (no wrapper, no chain) carries the count."""
    rig = Rig()
    last = ConnectionError("third")
    fetch = rig.retry(max_attempts=3, operation="x")(
        Flaky([ConnectionError("first"), ConnectionError("second"), last]))
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert info.value is last
    assert info.value.vigil_attempts == 3  # type: ignore[attr-defined]
    assert info.value.__notes__ == ["vigil: gave up after 3 attempts (operation 'x')"]
    assert info.value.__context__ is None


def test_async_give_up_carries_the_same_annotation() -> None:
    """The async driver gives up exactly like the sync one."""
    rig = Rig()
    fetch = rig.retry(max_attempts=2, operation="y")(_flaky_async(Flaky([OSError("io")] * 2)))
    with pytest.raises(OSError, match="io") as info:
        asyncio.run(fetch())
    assert info.value.vigil_attempts == 2  # type: ignore[attr-defined]
    assert info.value.__notes__ == ["vigil: gave up after 2 attempts (operation 'y')"]


def test_exception_refusing_attributes_still_propagates() -> None:
    """An exception class that rejects new attributes and notes is re-raised as it is."""

    class Sealed(Exception):
        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"{name} is read-only")

    rig = Rig()
    with pytest.raises(Sealed) as info:
        rig.retry(max_attempts=2)(Flaky([Sealed(), Sealed()]))()
    assert not hasattr(info.value, "vigil_attempts")


# --- metrics ------------------------------------------------------------------------------


def test_outcome_series_exist_from_decoration() -> None:
    """All four outcome series are bound (at 0) as soon as the function is decorated."""
    rig = Rig()
    rig.retry(operation="idle")(Flaky([]))
    assert rig.outcomes("idle") == dict.fromkeys(OUTCOMES, 0.0)


def test_every_outcome_is_counted() -> None:
    """Each way a call can end increments exactly its own outcome label."""
    rig = Rig()
    op = rig.retry(max_attempts=2, retry_on=(OSError,), operation="op")
    op(Flaky([]))()
    op(Flaky([OSError("io")]))()
    with pytest.raises(OSError, match="io"):
        op(Flaky([OSError("io"), OSError("io")]))()
    with pytest.raises(ValueError, match="no"):
        op(Flaky([ValueError("no")]))()
    with pytest.raises(ValueError, match="late"):
        op(Flaky([OSError("io"), ValueError("late")]))()  # not retryable, but after a retry
    with pytest.raises(OSError, match="io"):
        rig.retry(max_attempts=1, operation="op")(Flaky([OSError("io")]))()
    assert rig.outcomes("op") == {"success_first_try": 1.0, "success_after_retry": 1.0,
                                  "failure_after_retry": 2.0, "failure_without_retry": 2.0}


def test_attempts_counter_counts_retries_by_exception_class() -> None:
    """vigil_retry_attempts_total counts failures followed by a retry, not the final failure."""
    rig = Rig()
    fetch = rig.retry(max_attempts=3, operation="fetch")(
        Flaky([OSError("io"), ConnectionError(), ConnectionError()]))
    with pytest.raises(ConnectionError):
        fetch()
    assert rig.attempts("fetch", "OSError") == 1
    assert rig.attempts("fetch", "ConnectionError") == 1


# --- logs and events ----------------------------------------------------------------------


def test_one_warning_line_per_retry_with_attempt_and_delay() -> None:
    """Each retry writes one WARNING line; giving up after retries writes one more."""
    rig = Rig()
    fetch = rig.retry(max_attempts=3, operation="fetch")(Flaky([OSError("down")] * 3))
    with pytest.raises(OSError, match="down"):
        fetch()
    entries = rig.logger.get_recent_logs()
    retries = [e for e in entries if "attempt" in e["metadata"]]
    assert [e["level"] for e in entries] == ["WARNING"] * 3
    assert [e["metadata"]["attempt"] for e in retries] == [1, 2]
    assert [e["metadata"]["delay"] for e in retries] == rig.clock.sleeps
    assert retries[0]["metadata"] | {"delay": 0} == {
        "operation": "fetch", "attempt": 1, "max_attempts": 3, "delay": 0,
        "exception": "OSError", "error": "down"}
    assert entries[-1]["metadata"]["attempts"] == 3
    assert rig.stream.getvalue().count("\n") == 3


def test_a_first_try_failure_writes_no_log_line() -> None:
    """A non-retryable error without retries is the caller's to log, not vigil's."""
    rig = Rig()
    with pytest.raises(ValueError, match="x"):
        rig.retry(retry_on=(OSError,))(Flaky([ValueError("x")]))()
    assert rig.logger.get_recent_logs() == []


def test_events_describe_each_retry_and_the_end_of_the_call() -> None:
    """Subscribers see RetryScheduled per retry, then RetrySucceeded or RetryGaveUp."""
    rig = Rig()
    seen: list[RetryEvent] = []
    fetch = rig.retry(max_attempts=3, operation="fetch")(Flaky([OSError("io")]))
    retry_events(fetch).subscribe(seen.append)
    assert fetch() == "ok"
    assert [type(e) for e in seen] == [RetryScheduled, RetrySucceeded]
    scheduled = seen[0]
    assert isinstance(scheduled, RetryScheduled)
    assert (scheduled.operation, scheduled.attempt, scheduled.max_attempts) == ("fetch", 1, 3)
    assert scheduled.delay == rig.clock.sleeps[0]
    assert seen[1] == RetrySucceeded("fetch", 2)

    seen.clear()
    failing = rig.retry(retry_on=(OSError,), operation="parse")(Flaky([ValueError()]))
    failing.events.subscribe(seen.append)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError from Flaky
        failing()
    assert len(seen) == 1
    assert isinstance(seen[0], RetryGaveUp)
    assert (seen[0].attempts, seen[0].reason) == (1, "not_retryable")


def test_a_raising_subscriber_does_not_break_the_call() -> None:
    """A subscriber that raises is counted by the publisher; the call still retries and returns."""
    rig = Rig()
    fetch = rig.retry(operation="fetch")(Flaky([OSError("io")]))

    def broken(event: RetryEvent) -> None:
        raise RuntimeError("subscriber bug")

    retry_events(fetch).subscribe(broken)
    assert fetch() == "ok"
    assert rig.attempts("fetch", "OSError") == 1
    assert rig.registry.get_sample_value(
        "vigil_event_subscriber_failures_total", {"publisher": "retry:fetch"}) == 2


def test_retry_events_finds_the_publisher_through_other_decorators() -> None:
    """retry_events() follows __wrapped__ to the with_retry layer; other callables are refused."""
    rig = Rig()
    inner = rig.retry(operation="inner")(Flaky([]))

    def outer(*args: Any) -> Any:
        return inner(*args)

    outer.__wrapped__ = inner  # type: ignore[attr-defined]
    assert retry_events(outer) is inner.events  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not decorated with with_retry"):
        retry_events(len)


# --- the decision on its own --------------------------------------------------------------


def test_policy_decide_gives_each_reason() -> None:
    """decide() returns retry with a delay, or give up with the reason why."""
    policy = RetryPolicy(max_attempts=3, initial_delay=1.0, max_delay=10.0, multiplier=2.0,
                         retry_on=(OSError,), jitter=False,
                         retry_if=lambda exc: "fatal" not in str(exc))
    first = policy.decide(1, OSError("io"))
    assert (first.retry, first.delay, first.reason) == (True, 1.0, None)
    assert policy.decide(2, OSError("io")).delay == 2.0
    assert policy.decide(3, OSError("io")).reason == "attempts_exhausted"
    assert policy.decide(1, ValueError()).reason == "not_retryable"
    assert policy.decide(1, OSError("fatal")).reason == "rejected_by_retry_if"
    assert policy.decide(1, CircuitOpenError("b", "OPEN", 1.0)).reason == "circuit_open"
    assert policy.decide(1, KeyboardInterrupt()).reason == "not_an_exception"
    with pytest.raises(ValueError, match="start at 1"):
        policy.decide(0, OSError("io"))


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": True}, "max_attempts"),
    ({"max_attempts": 2.5}, "max_attempts"),
    ({"initial_delay": -1}, "initial_delay"),
    ({"initial_delay": float("nan")}, "initial_delay"),
    ({"max_delay": float("inf")}, "max_delay"),
    ({"initial_delay": 5, "max_delay": 2}, "max_delay"),
    ({"multiplier": 0.5}, "multiplier"),
    ({"retry_on": ()}, "retry_on"),
    ({"retry_on": (OSError, "timeout")}, "retry_on"),
    ({"retry_on": int}, "retry_on"),
    ({"retry_if": 42}, "retry_if"),
    ({"jitter": "yes"}, "jitter"),
    ({"rng": 42}, "rng"),
])
def test_bad_arguments_raise_config_error_naming_them(kwargs: dict[str, Any], key: str) -> None:
    """Each invalid argument is a ConfigError naming the argument and the value received."""
    with pytest.raises(ConfigError) as info:
        with_retry(**kwargs)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: got {kwargs[key]!r}; ")


def test_bad_operation_is_a_config_error() -> None:
    """An empty operation name is refused, naming the argument."""
    with pytest.raises(ConfigError, match="operation"):
        with_retry(operation="", registry=CollectorRegistry())(Flaky([]))


def test_a_callable_max_attempts_in_from_config_gets_a_hint() -> None:
    """RetryPolicy.from_config(fn) is a ConfigError explaining the bare decorator form."""
    with pytest.raises(ConfigError, match="without parentheses takes no other argument"):
        RetryPolicy.from_config(Flaky([]))  # type: ignore[arg-type]


def test_generator_functions_are_refused() -> None:
    """A generator's errors surface after the call returns, so decorating one is a TypeError."""

    def numbers() -> Iterable[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        with_retry(registry=CollectorRegistry())(numbers)


# --- defaults and wiring ------------------------------------------------------------------


def test_defaults_come_from_vigil_configure() -> None:
    """Unset arguments take error_handling.retry.default_* from the active configuration."""
    vigil.configure({"error_handling": {"retry": {
        "default_max_attempts": 4, "default_initial_delay": 0.5, "default_max_delay": 1.5,
        "default_multiplier": 3}}})
    rig = Rig()
    flaky = Flaky([OSError("io")] * 4)
    with pytest.raises(OSError, match="io"):
        rig.retry(jitter=False)(flaky)()
    assert flaky.calls == 4
    assert rig.clock.sleeps == [0.5, 1.5, 1.5]


def test_unset_clock_and_registry_are_the_shared_ones() -> None:
    """Without clock/registry the system clock and performance_monitor's registry are used."""
    fn = with_retry(operation="test_retry.shared_defaults")(Flaky([]))
    labels = {"operation": "test_retry.shared_defaults", "outcome": "success_first_try"}
    before = performance_monitor.registry.get_sample_value("vigil_retry_calls_total", labels)
    assert fn() == "ok"
    after = performance_monitor.registry.get_sample_value("vigil_retry_calls_total", labels)
    assert (before, after) == (0.0, 1.0)
    assert fn.retrier.clock is SYSTEM_CLOCK  # type: ignore[attr-defined]


def test_decorated_functions_keep_their_metadata_and_kind() -> None:
    """functools.wraps metadata is kept and an async def stays a coroutine function."""
    rig = Rig()

    async def fetch(url: str) -> str:
        """Fetch a URL."""
        return url

    def parse(text: str) -> str:
        """Parse text."""
        return text

    for fn in (fetch, parse):
        wrapped = rig.retry()(fn)
        assert wrapped.__name__ == fn.__name__
        assert wrapped.__qualname__ == fn.__qualname__
        assert wrapped.__doc__ == fn.__doc__
        assert wrapped.__wrapped__ is fn  # type: ignore[attr-defined]
        assert inspect.signature(wrapped) == inspect.signature(fn)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)


def test_methods_are_retried_with_their_qualname_as_operation() -> None:
    """Decorated methods bind self and label metrics with Class.method."""
    rig = Rig()

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky([OSError("io")])

        @rig.retry()
        def get(self, path: str) -> str:
            return self.flaky(path)

    assert Client().get("/x") == "ok"
    operation = Client.get.__qualname__
    assert operation.endswith("Client.get")
    assert rig.calls(operation, "success_after_retry") == 1


def test_stacked_with_functools_wraps_decorators_expose_events() -> None:
    """An outer functools.wraps decorator copies .events, so it stays reachable."""
    rig = Rig()

    def logged(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    fn = logged(rig.retry(operation="stacked")(Flaky([])))
    assert fn.events is retry_events(fn)  # type: ignore[attr-defined]


def test_concurrent_calls_from_eight_threads_are_counted_exactly() -> None:
    """8 threads sharing one decorated function: every call, retry and sleep is counted once."""
    rig = Rig()
    threads, per_thread = 8, 200
    start = threading.Barrier(threads)

    @rig.retry(max_attempts=3, operation="shared", initial_delay=0.01)
    def once_flaky(state: list[int]) -> int:
        state[0] += 1  # per-call state: fails on the first attempt only
        if state[0] == 1:
            raise ConnectionError("first attempt")
        return state[0]

    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        for _ in range(per_thread):
            value = once_flaky([0])
            with lock:
                results.append(value)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    total = threads * per_thread
    assert results == [2] * total
    assert len(rig.clock.sleeps) == total
    assert rig.calls("shared", "success_after_retry") == total
    assert rig.attempts("shared", "ConnectionError") == total
    assert rig.stream.getvalue().count("\n") == total  # one log line per retry
