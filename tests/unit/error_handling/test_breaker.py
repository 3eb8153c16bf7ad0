"""vigil.error_handling.breaker: the seed's CircuitBreaker, its state machine, metrics, events."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import io
import json
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.error_handling.breaker_rig import (
    WAIT,
    Rig,
    fail,
    ok,
    raise_,
    rigs,
    trip,
)

from vigil.config import ConfigError
from vigil.error_handling.breaker import (
    CallOutcome,
    CallRejected,
    CircuitBreaker,
    CircuitState,
    StateTransition,
    all_breakers,
)
from vigil.error_handling.errors import CircuitOpenError
from vigil.monitoring.alerts import Alert
from vigil.monitoring.logs import StructuredLogger
from vigil.testing import FakeClock

THREADS = 64


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    """Builds rigs (named ``svc`` unless told otherwise) and closes their alert managers."""
    with rigs() as build:
        yield build


# --- the seed's examples ------------------------------------------------------------------


def test_seed_circuit_breaker_example_runs() -> None:
    """The seed's Circuit Breaker Pattern example runs unchanged with the default wiring."""
    def risky_function(a: int, b: int) -> int:
        return a + b

    arg1, arg2 = 1, 2
    # Create circuit breaker
    cb = CircuitBreaker(
        failure_threshold=5,
        recovery_timeout=60.0,
        expected_exception=Exception
    )
    # Use circuit breaker
    try:  # noqa: SIM105 - the seed's code, verbatim
        result = cb.call(risky_function, arg1, arg2)
    except Exception:
        # Handle failure
        pass
    assert result == 3
    assert cb.state == "CLOSED"
    assert cb.failure_count == 0


def test_seed_integration_example_counts_async_failures_and_rejects(
        make: Callable[..., Rig]) -> None:
    """The seed's async flow: call_async failures open the breaker; then calls are rejected."""
    rig = make(failure_threshold=3)
    cb = rig.breaker
    called: list[str] = []

    async def external_service_call(file_path: str) -> str:
        called.append(file_path)
        await asyncio.sleep(0)
        raise OSError(f"cannot reach service for {file_path}")

    async def process_file(file_path: str) -> str:
        return await cb.call_async(external_service_call, file_path)

    for _ in range(3):
        with pytest.raises(OSError, match="cannot reach"):
            asyncio.run(process_file("a.pdf"))
    assert cb.state == "OPEN"
    with pytest.raises(CircuitOpenError):
        asyncio.run(process_file("b.pdf"))
    assert called == ["a.pdf"] * 3
    assert rig.calls("failure") == 3
    assert rig.calls("rejected") == 1


def test_seed_manual_reset_idiom_goes_through_the_state_machine(
        make: Callable[..., Rig]) -> None:
    """``cb.failure_count = 0; cb.state = "CLOSED"`` closes an open breaker, published and
    counted like any transition."""
    rig = make(failure_threshold=2)
    cb = rig.breaker
    trip(rig)
    print(f"State: {cb.state}, Failures: {cb.failure_count}")
    assert (cb.state, cb.failure_count) == ("OPEN", 2)

    # Manual reset (use with caution)
    cb.failure_count = 0
    cb.state = "CLOSED"

    assert (cb.state, cb.failure_count) == ("CLOSED", 0)
    assert rig.transitions("OPEN", "CLOSED") == 1
    assert (rig.gauge("CLOSED"), rig.gauge("OPEN")) == (1.0, 0.0)
    assert rig.logs()[-1]["metadata"]["reason"] == "set manually"
    assert cb.call(ok) == "ok"


# --- states -------------------------------------------------------------------------------


def test_state_is_a_str_enum() -> None:
    """States compare equal to their names and parse case-insensitively."""
    assert CircuitState.OPEN == "OPEN"
    assert f"{CircuitState.HALF_OPEN}" == "HALF_OPEN"
    assert CircuitState.parse("half-open") is CircuitState.HALF_OPEN
    with pytest.raises(ValueError, match="CLOSED, OPEN, HALF_OPEN"):
        CircuitState.parse("AJAR")


def test_failures_in_a_row_open_it_and_a_success_resets_the_count(
        make: Callable[..., Rig]) -> None:
    """failure_threshold failures in a row open the breaker; a success in between resets."""
    rig = make(failure_threshold=3)
    cb = rig.breaker
    fail(cb, 2)
    assert cb.failure_count == 2
    assert cb.call(ok) == "ok"
    assert cb.failure_count == 0
    fail(cb, 2)
    assert cb.state == "CLOSED"
    fail(cb)
    assert cb.state == "OPEN"
    assert rig.logs()[-1]["metadata"]["reason"] == "3 failures in a row"


def test_open_breaker_never_calls_the_function(make: Callable[..., Rig]) -> None:
    """OPEN rejects with CircuitOpenError without running the function, and stays OPEN
    (the ``circuitbreaker`` package runs it and resets to CLOSED)."""
    rig = make(failure_threshold=1, recovery_timeout=60.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(15.0)
    ran: list[int] = []
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            cb.call(ran.append, 1)
    assert ran == []
    assert cb.state == "OPEN"
    err = info.value
    assert (err.breaker, err.state, err.retry_after) == ("svc", "OPEN", 45.0)
    assert rig.calls("rejected") == 3


def test_open_turns_half_open_on_read_once_the_timeout_passes(make: Callable[..., Rig]) -> None:
    """Reading ``state`` after recovery_timeout shows HALF_OPEN, without any call."""
    rig = make(failure_threshold=1, recovery_timeout=30.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(29.5)
    assert cb.state == "OPEN"
    assert cb.seconds_until_probe == 0.5
    rig.clock.advance(0.5)
    assert cb.state == "HALF_OPEN"
    assert cb.seconds_until_probe == 0.0
    assert rig.transitions("OPEN", "HALF_OPEN") == 1
    assert (rig.gauge("OPEN"), rig.gauge("HALF_OPEN")) == (0.0, 1.0)
    assert rig.logs()[-1]["metadata"]["reason"] == "recovery timeout elapsed"


def test_probe_successes_close_it(make: Callable[..., Rig]) -> None:
    """In HALF_OPEN, success_threshold probe successes close the breaker."""
    rig = make(failure_threshold=1, recovery_timeout=10.0, success_threshold=2)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(10.0)
    assert cb.call(ok) == "ok"
    assert cb.state == "HALF_OPEN"
    assert cb.call(ok) == "ok"
    assert cb.state == "CLOSED"
    assert rig.transitions("HALF_OPEN", "CLOSED") == 1


def test_probe_failure_reopens_with_a_fresh_timer(make: Callable[..., Rig]) -> None:
    """A failed probe opens the breaker again for a full recovery_timeout from that moment."""
    rig = make(failure_threshold=1, recovery_timeout=10.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(12.0)
    fail(cb)
    assert cb.state == "OPEN"
    assert cb.seconds_until_probe == 10.0
    assert rig.transitions("HALF_OPEN", "OPEN") == 1


def test_half_open_rejection_names_the_state(make: Callable[..., Rig]) -> None:
    """With every probe slot taken, a call is rejected as HALF_OPEN with retry_after 0."""
    rig = make(failure_threshold=1, recovery_timeout=10.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(10.0)
    inner: list[CircuitOpenError] = []

    def probe() -> str:
        with pytest.raises(CircuitOpenError) as info:
            cb.call(ok)
        inner.append(info.value)
        return "probe"

    assert cb.call(probe) == "probe"
    assert (inner[0].state, inner[0].retry_after) == ("HALF_OPEN", 0.0)


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_only_max_probes_among_64_threads(
        make: Callable[..., Rig], max_calls: int) -> None:
    """64 threads hitting a HALF_OPEN breaker at once: exactly half_open_max_calls get in."""
    rig = make(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=max_calls)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(10.0)
    start = threading.Barrier(THREADS)
    arrived = threading.Semaphore(0)
    release = threading.Event()
    results: queue.Queue[object] = queue.Queue()

    def probe() -> str:
        arrived.release()
        release.wait(WAIT)
        return "probed"

    def worker() -> None:
        start.wait(WAIT)
        try:
            results.put(cb.call(probe))
        except CircuitOpenError as err:
            results.put(err)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        # Every thread not admitted comes back rejected while the admitted ones are held.
        rejected = [results.get(timeout=WAIT) for _ in range(THREADS - max_calls)]
        for _ in range(max_calls):
            assert arrived.acquire(timeout=WAIT)
        assert not arrived.acquire(timeout=0)
        assert results.empty()
    finally:
        release.set()
        for thread in threads:
            thread.join(WAIT)
    assert all(isinstance(r, CircuitOpenError) and r.state == "HALF_OPEN" for r in rejected)
    assert [results.get_nowait() for _ in range(max_calls)] == ["probed"] * max_calls
    assert rig.calls("rejected") == THREADS - max_calls
    assert cb.state == "CLOSED"


def test_no_lock_is_held_during_the_call(make: Callable[..., Rig]) -> None:
    """Four calls through one breaker are inside the function at the same time (pybreaker
    runs them one at a time)."""
    cb = make().breaker
    inside = threading.Barrier(4, timeout=WAIT)  # breaks (and fails the calls) if serialised
    returned: queue.Queue[object] = queue.Queue()

    def slow_call() -> str:
        inside.wait()
        return "done"

    def worker() -> None:
        try:
            returned.put(cb.call(slow_call))
        except Exception as err:
            returned.put(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    assert [returned.get_nowait() for _ in range(4)] == ["done"] * 4


def test_counts_are_exact_under_concurrency(make: Callable[..., Rig]) -> None:
    """Many threads mixing outcomes: every call is counted once, in the right outcome."""
    rig = make(failure_threshold=10**9, expected_exception=ValueError)
    cb = rig.breaker
    threads_n, rounds = 8, 300
    start = threading.Barrier(threads_n)

    def worker() -> None:
        start.wait(WAIT)
        for i in range(rounds):
            if i % 3 == 0:
                cb.call(ok)
            elif i % 3 == 1:
                with pytest.raises(ValueError, match="x"):
                    cb.call(raise_, ValueError("x"))
            else:
                with pytest.raises(KeyError):
                    cb.call(raise_, KeyError("x"))

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 6)
    each = threads_n * rounds // 3
    assert (rig.calls("success"), rig.calls("failure"), rig.calls("ignored")) == (each,) * 3
    assert cb.snapshot()["calls"] == {"success": each, "slow": 0, "failure": each,
                                      "ignored": each, "rejected": 0}


# --- async --------------------------------------------------------------------------------


def test_async_failures_are_counted_and_open_it(make: Callable[..., Rig]) -> None:
    """Failures of awaited coroutines count, through call_async and the decorator alike
    (pybreaker ignores them)."""
    rig = make(failure_threshold=4)
    cb = rig.breaker

    async def flaky() -> str:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    decorated = cb(flaky)

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await cb.call_async(flaky)
            with pytest.raises(ConnectionError):
                await decorated()
        with pytest.raises(CircuitOpenError):
            await decorated()

    asyncio.run(main())
    assert rig.calls("failure") == 4
    assert cb.state == "OPEN"


def test_call_async_accepts_a_plain_function(make: Callable[..., Rig]) -> None:
    """call_async on a function returning a plain value returns it and counts a success."""
    rig = make()
    assert asyncio.run(rig.breaker.call_async(ok, 7)) == 7
    assert rig.calls("success") == 1


def test_cancellation_frees_the_probe_slot_and_is_ignored(make: Callable[..., Rig]) -> None:
    """A cancelled probe (CancelledError) is ignored: the breaker stays HALF_OPEN and admits
    the next probe."""
    rig = make(failure_threshold=1, recovery_timeout=10.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(10.0)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cb.call_async(cancelled))
    assert cb.state == "HALF_OPEN"
    assert rig.calls("ignored") == 1
    assert asyncio.run(cb.call_async(ok, "probe")) == "probe"
    assert cb.state == "CLOSED"


def test_keyboard_interrupt_frees_the_probe_slot_and_is_ignored(
        make: Callable[..., Rig]) -> None:
    """KeyboardInterrupt in a probe propagates, counts as ignored and frees the slot."""
    rig = make(failure_threshold=1, recovery_timeout=10.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(10.0)
    with pytest.raises(KeyboardInterrupt):
        cb.call(raise_, KeyboardInterrupt())
    assert cb.state == "HALF_OPEN"
    assert rig.calls("ignored") == 1
    assert cb.call(ok) == "ok"
    assert cb.state == "CLOSED"


# --- what counts as a failure -------------------------------------------------------------


def test_tuple_expected_exception_lets_others_through_untouched(
        make: Callable[..., Rig]) -> None:
    """Only listed exception types count; others propagate as the same object and are
    counted as ignored, leaving the failure count alone."""
    rig = make(failure_threshold=2, expected_exception=(ValueError, KeyError))
    cb = rig.breaker
    fail(cb, 1, KeyError)
    other = TypeError("not the service's fault")
    with pytest.raises(TypeError) as info:
        cb.call(raise_, other)
    assert info.value is other
    assert cb.failure_count == 1
    assert rig.calls("ignored") == 1
    fail(cb, 1, ValueError)
    assert cb.state == "OPEN"


def test_predicate_expected_exception(make: Callable[..., Rig]) -> None:
    """A predicate decides which exceptions are failures (here: 5xx responses only)."""
    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(status)
            self.status = status

    rig = make(failure_threshold=1,
               expected_exception=lambda e: isinstance(e, HTTPError) and e.status >= 500)
    cb = rig.breaker
    with pytest.raises(HTTPError):
        cb.call(raise_, HTTPError(404))
    assert cb.state == "CLOSED"
    with pytest.raises(HTTPError):
        cb.call(raise_, HTTPError(503))
    assert cb.state == "OPEN"
    assert (rig.calls("ignored"), rig.calls("failure")) == (1, 1)


def test_a_raising_predicate_counts_a_failure_and_is_logged(make: Callable[..., Rig]) -> None:
    """A broken predicate does not hide the call's exception; the call counts as a failure."""
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("bug in predicate")

    rig = make(failure_threshold=5, expected_exception=broken)
    with pytest.raises(ValueError, match="boom"):
        rig.breaker.call(raise_, ValueError("boom"))
    assert rig.calls("failure") == 1
    assert "predicate raised" in rig.logs()[-1]["message"]


# --- beyond the seed ----------------------------------------------------------------------


def test_failure_rate_mode_waits_for_minimum_calls(make: Callable[..., Rig]) -> None:
    """In failure-rate mode nothing opens before minimum_calls; then rate >= threshold does
    (here reached by a success, as in Resilience4j)."""
    rig = make(failure_rate_threshold=0.75, minimum_calls=4, sliding_window_size=4)
    cb = rig.breaker
    fail(cb, 3)
    assert cb.state == "CLOSED"
    cb.call(ok)
    assert cb.state == "OPEN"
    assert "failure rate 75% over the last 4 calls" in rig.logs()[-1]["message"]


def test_failure_rate_window_slides(make: Callable[..., Rig]) -> None:
    """Only the last sliding_window_size calls count: old successes drop out of the window."""
    rig = make(failure_rate_threshold=0.75, minimum_calls=4, sliding_window_size=4)
    cb = rig.breaker
    for _ in range(4):
        cb.call(ok)
    fail(cb, 2)
    assert cb.state == "CLOSED"  # window S S F F: 50%
    assert cb.snapshot()["failure_rate"] == 0.5
    fail(cb)
    assert cb.state == "OPEN"  # window S F F F: 75% (3 of the last 7 overall)


def test_failure_rate_mode_ignores_failures_in_a_row(make: Callable[..., Rig]) -> None:
    """The rate rule replaces the in-a-row rule: 9 failures below minimum_calls keep it closed."""
    rig = make(failure_rate_threshold=0.5)  # minimum_calls 10, window 20
    fail(rig.breaker, 9)
    assert rig.breaker.state == "CLOSED"
    assert rig.breaker.failure_count == 9


def test_slow_calls_count_as_failures_but_return_their_result(
        make: Callable[..., Rig]) -> None:
    """A success slower than slow_call_duration returns its value, is counted as ``slow`` and
    counts toward opening; a fast success resets the count."""
    rig = make(failure_threshold=2, slow_call_duration=1.0)
    cb = rig.breaker

    def slow() -> str:
        rig.clock.advance(1.5)
        return "late"

    assert cb.call(slow) == "late"
    assert cb.failure_count == 1
    cb.call(ok)
    assert cb.failure_count == 0
    cb.call(slow)
    assert cb.call(slow) == "late"
    assert cb.state == "OPEN"
    assert (rig.calls("slow"), rig.calls("success")) == (3, 1)


def test_a_slow_probe_reopens_the_breaker(make: Callable[..., Rig]) -> None:
    """In HALF_OPEN a slow probe counts as a failed one."""
    rig = make(failure_threshold=1, recovery_timeout=5.0, slow_call_duration=1.0)
    cb = rig.breaker
    trip(rig)
    rig.clock.advance(5.0)

    def slow() -> str:
        rig.clock.advance(2.0)
        return "late"

    assert cb.call(slow) == "late"
    assert cb.state == "OPEN"


def test_open_duration_grows_per_consecutive_trip_up_to_the_cap(
        make: Callable[..., Rig]) -> None:
    """Each failed probe multiplies the open duration, capped; closing resets it."""
    rig = make(failure_threshold=1, recovery_timeout=10.0, open_duration_multiplier=2.0,
               max_recovery_timeout=30.0)
    cb = rig.breaker
    trip(rig)
    seen = [cb.seconds_until_probe]
    for _ in range(3):
        rig.clock.advance(seen[-1])
        fail(cb)  # the probe fails
        seen.append(cb.seconds_until_probe)
    assert seen == [10.0, 20.0, 30.0, 30.0]
    rig.clock.advance(30.0)
    cb.call(ok)
    assert cb.state == "CLOSED"
    fail(cb)
    assert cb.seconds_until_probe == 10.0


# --- fallback -----------------------------------------------------------------------------


def test_fallback_answers_rejections_with_the_same_arguments(make: Callable[..., Rig]) -> None:
    """A rejected call returns fallback(*args, **kwargs); the function is not run."""
    seen: list[tuple[Any, ...]] = []

    def cached(key: str, *, default: int = 0) -> str:
        seen.append((key, default))
        return f"cached {key}"

    rig = make(failure_threshold=1, fallback=cached)
    cb = rig.breaker
    trip(rig)
    ran: list[str] = []

    def fetch(key: str, *, default: int = 0) -> str:
        ran.append(key)
        return key

    assert cb.call(fetch, "k", default=3) == "cached k"
    assert seen == [("k", 3)]
    assert ran == []
    assert rig.calls("rejected") == 1


def test_fallback_is_not_used_for_failures(make: Callable[..., Rig]) -> None:
    """A failing call propagates its exception even when a fallback is set."""
    fallback_calls: list[object] = []
    rig = make(failure_threshold=5, fallback=lambda *a: fallback_calls.append(a))
    fail(rig.breaker, 2)
    assert fallback_calls == []


def test_async_fallback_is_awaited(make: Callable[..., Rig]) -> None:
    """call_async awaits a fallback that returns an awaitable; a sync fallback works too."""
    async def from_cache(key: str) -> str:
        await asyncio.sleep(0)
        return f"cache:{key}"

    async def fetch(key: str) -> str:
        raise AssertionError("must not run")

    async_rig = make(failure_threshold=1, fallback=from_cache)
    trip(async_rig)
    assert asyncio.run(async_rig.breaker.call_async(fetch, "k")) == "cache:k"
    sync_rig = make(failure_threshold=1, fallback=lambda key: f"sync:{key}")
    trip(sync_rig)
    assert asyncio.run(sync_rig.breaker.call_async(fetch, "k")) == "sync:k"


# --- events -------------------------------------------------------------------------------


def test_events_describe_transitions_and_rejections(make: Callable[..., Rig]) -> None:
    """Subscribers see each StateTransition with its reason, and each CallRejected."""
    rig = make(failure_threshold=1, recovery_timeout=10.0)
    cb = rig.breaker
    events: list[object] = []
    cb.events.subscribe(events.append)
    start = rig.clock.monotonic()
    trip(rig)
    with pytest.raises(CircuitOpenError):
        cb.call(ok)
    rig.clock.advance(10.0)
    cb.call(ok)
    assert events == [
        StateTransition("svc", CircuitState.CLOSED, CircuitState.OPEN, start,
                        "1 failures in a row"),
        CallRejected("svc", CircuitState.OPEN, 10.0),
        StateTransition("svc", CircuitState.OPEN, CircuitState.HALF_OPEN, start + 10.0,
                        "recovery timeout elapsed"),
        StateTransition("svc", CircuitState.HALF_OPEN, CircuitState.CLOSED, start + 10.0,
                        "1 probe call(s) succeeded"),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].reason = "changed"  # type: ignore[attr-defined]


def test_call_outcomes_are_published_only_to_call_event_subscribers(
        make: Callable[..., Rig]) -> None:
    """call_events carries one CallOutcome per call while subscribed, none after."""
    rig = make(slow_call_duration=1.0)
    cb = rig.breaker
    outcomes: list[CallOutcome] = []
    unsubscribe = cb.call_events.subscribe(outcomes.append)

    def slow() -> None:
        rig.clock.advance(2.0)

    cb.call(ok)
    cb.call(slow)
    fail(cb)
    asyncio.run(cb.call_async(ok))
    unsubscribe()
    cb.call(ok)
    assert [(o.outcome, o.duration) for o in outcomes] == [
        ("success", 0.0), ("slow", 2.0), ("failure", 0.0), ("success", 0.0)]
    assert not cb.call_events.has_subscribers


def test_a_raising_subscriber_never_breaks_the_call(make: Callable[..., Rig]) -> None:
    """Subscribers that raise are counted; calls, metrics and other subscribers go on."""
    rig = make(failure_threshold=1)
    cb = rig.breaker

    def broken(event: object) -> None:
        raise RuntimeError("subscriber bug")

    cb.events.subscribe(broken)
    cb.call_events.subscribe(broken)
    assert cb.call(ok) == "ok"
    fail(cb)  # the ValueError still propagates, and the breaker opens
    assert cb.state == "OPEN"
    assert rig.transitions("CLOSED", "OPEN") == 1
    assert rig.sample("vigil_event_subscriber_failures_total", publisher="svc") == 3


def test_a_subscriber_causing_a_transition_sees_events_in_order(
        make: Callable[..., Rig]) -> None:
    """A subscriber that resets the breaker on OPEN: every subscriber sees OPEN before the
    reset, and the state gauge ends on CLOSED."""
    rig = make(failure_threshold=1)
    cb = rig.breaker
    seen: list[str] = []

    def auto_reset(event: object) -> None:
        if isinstance(event, StateTransition) and event.to_state == "OPEN":
            cb.reset()

    cb.events.subscribe(auto_reset)
    cb.events.subscribe(lambda e: seen.append(f"{e.from_state}->{e.to_state}"))  # type: ignore[union-attr]
    fail(cb)
    assert seen == ["CLOSED->OPEN", "OPEN->CLOSED"]
    assert (rig.gauge("CLOSED"), rig.gauge("OPEN")) == (1.0, 0.0)


# --- metrics, logs, alerts ----------------------------------------------------------------


def test_all_state_series_exist_from_creation(make: Callable[..., Rig]) -> None:
    """A new breaker exports all six state series (CLOSED=1) and zeroed call counters."""
    rig = make()
    assert rig.gauges() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for outcome in ("success", "slow", "failure", "ignored", "rejected"):
        assert rig.sample("vigil_circuit_breaker_calls_total", breaker="svc",
                          outcome=outcome) == 0.0


def test_transitions_move_the_gauge_and_count(make: Callable[..., Rig]) -> None:
    """Each transition sets exactly one state series to 1 and counts from/to."""
    rig = make(failure_threshold=1, recovery_timeout=1.0)
    cb = rig.breaker
    trip(rig)
    assert [rig.gauge(s) for s in ("CLOSED", "OPEN", "HALF_OPEN")] == [0.0, 1.0, 0.0]
    rig.clock.advance(1.0)
    fail(cb)
    rig.clock.advance(1.0)
    cb.call(ok)
    assert [rig.gauge(s) for s in ("CLOSED", "OPEN", "HALF_OPEN")] == [1.0, 0.0, 0.0]
    assert (rig.transitions("CLOSED", "OPEN"), rig.transitions("OPEN", "HALF_OPEN"),
            rig.transitions("HALF_OPEN", "OPEN"), rig.transitions("HALF_OPEN", "CLOSED")) == \
        (1, 2, 1, 1)


def test_each_transition_is_logged(make: Callable[..., Rig]) -> None:
    """A WARNING line when the breaker opens, INFO otherwise, with breaker/from/to/reason."""
    rig = make(failure_threshold=1, recovery_timeout=1.0)
    trip(rig)
    rig.clock.advance(1.0)
    rig.breaker.call(ok)
    lines = [(e["level"], e["metadata"]) for e in rig.logs()]
    assert lines == [
        ("WARNING", {"breaker": "svc", "from_state": "CLOSED", "to_state": "OPEN",
                     "reason": "1 failures in a row"}),
        ("INFO", {"breaker": "svc", "from_state": "OPEN", "to_state": "HALF_OPEN",
                  "reason": "recovery timeout elapsed"}),
        ("INFO", {"breaker": "svc", "from_state": "HALF_OPEN", "to_state": "CLOSED",
                  "reason": "1 probe call(s) succeeded"}),
    ]
    first = json.loads(rig.stream.getvalue().splitlines()[0])
    assert (first["component"], first["level"]) == ("vigil.circuit_breaker", "WARNING")


def test_opening_sends_a_high_alert(make: Callable[..., Rig]) -> None:
    """Opening (and only opening) sends a high alert naming the breaker."""
    rig = make(failure_threshold=1, recovery_timeout=1.0)
    received: list[Alert] = []
    rig.alerts.register_handler(received.append)
    trip(rig)
    rig.clock.advance(1.0)
    rig.breaker.call(ok)
    assert rig.alerts.flush(timeout=WAIT)
    assert len(received) == 1
    alert = received[0]
    assert (alert.severity, alert.component, alert.labels) == ("high", "svc", {"breaker": "svc"})
    assert "svc" in alert.message
    assert alert.metadata["reason"] == "1 failures in a row"


def test_two_breakers_with_one_name_share_series() -> None:
    """Breakers of the same name on one registry add to the same counters (documented)."""
    registry = CollectorRegistry()
    first = CircuitBreaker(name="shared", registry=registry, clock=FakeClock())
    second = CircuitBreaker(name="shared", registry=registry, clock=FakeClock())
    first.call(ok)
    second.call(ok)
    assert registry.get_sample_value("vigil_circuit_breaker_calls_total",
                                     {"breaker": "shared", "outcome": "success"}) == 2


# --- decorator and names ------------------------------------------------------------------


def test_decorator_keeps_metadata_sync_and_async(make: Callable[..., Rig]) -> None:
    """@cb keeps name, docstring, signature and coroutine-ness, and exposes the breaker."""
    cb = make().breaker

    @cb
    def fetch(url: str, timeout: float = 1.0) -> str:
        """Fetch a URL."""
        return url

    @cb
    async def afetch(url: str) -> str:
        """Fetch a URL, async."""
        return url

    assert (fetch.__name__, fetch.__doc__, fetch.__wrapped__) == (  # type: ignore[attr-defined]
        "fetch", "Fetch a URL.", fetch.__wrapped__)  # type: ignore[attr-defined]
    assert str(inspect.signature(fetch)) == "(url: 'str', timeout: 'float' = 1.0) -> 'str'"
    assert inspect.iscoroutinefunction(afetch)
    assert afetch.__doc__ == "Fetch a URL, async."
    assert fetch.circuit_breaker is cb  # type: ignore[attr-defined]
    assert fetch("u") == "u"
    assert asyncio.run(afetch("v")) == "v"


def test_decorator_works_on_methods(make: Callable[..., Rig]) -> None:
    """A decorated method still receives ``self``."""
    cb = make().breaker

    class Client:
        base = "http://x/"

        @cb
        def get(self, path: str) -> str:
            return self.base + path

    assert Client().get("a") == "http://x/a"


def test_unnamed_breaker_takes_the_decorated_functions_name() -> None:
    """@CircuitBreaker(...) without a name is named after the function's __qualname__,
    and its series appear under that name."""
    registry = CollectorRegistry()

    @CircuitBreaker(failure_threshold=2, registry=registry, clock=FakeClock())
    def load_profile() -> str:
        return "p"

    assert load_profile.circuit_breaker.name.endswith(  # type: ignore[attr-defined]
        "test_unnamed_breaker_takes_the_decorated_functions_name.<locals>.load_profile")
    assert registry.get_sample_value(
        "vigil_circuit_breaker_state",
        {"breaker": load_profile.circuit_breaker.name,  # type: ignore[attr-defined]
         "state": "CLOSED"}) == 1.0


def test_unnamed_breaker_used_directly_gets_a_serial_name() -> None:
    """An unnamed breaker first used through call() is called breaker-N; before use it exports
    nothing and is not listed."""
    registry = CollectorRegistry()
    cb = CircuitBreaker(registry=registry, clock=FakeClock())
    assert "unnamed" in repr(cb)
    assert cb not in all_breakers()
    assert list(registry.collect()) == []
    cb.call(ok)
    assert cb.name.startswith("breaker-")
    assert cb in all_breakers()
    assert registry.get_sample_value("vigil_circuit_breaker_state",
                                     {"breaker": cb.name, "state": "CLOSED"}) == 1.0


def test_all_breakers_holds_them_weakly() -> None:
    """all_breakers lists live breakers and forgets collected ones."""
    cb = CircuitBreaker(name="weak", registry=CollectorRegistry())
    assert cb in all_breakers()
    ref = weakref.ref(cb)
    del cb
    gc.collect()
    assert ref() is None
    assert all(b.name != "weak" for b in all_breakers())


# --- manual control and introspection -----------------------------------------------------


def test_force_open_and_reset(make: Callable[..., Rig]) -> None:
    """force_open opens for the given time then probes; reset closes and clears everything."""
    rig = make(failure_threshold=3, recovery_timeout=10.0)
    cb = rig.breaker
    fail(cb, 2)
    cb.force_open(5.0)
    assert (cb.state, cb.seconds_until_probe) == ("OPEN", 5.0)
    rig.clock.advance(5.0)
    assert cb.state == "HALF_OPEN"
    cb.reset()
    assert (cb.state, cb.failure_count) == ("CLOSED", 0)
    assert rig.logs()[-1]["metadata"]["reason"] == "reset"
    cb.force_open()
    assert cb.seconds_until_probe == 10.0
    with pytest.raises(ConfigError, match="duration"):
        cb.force_open(0)


def test_manual_setters_validate(make: Callable[..., Rig]) -> None:
    """Bad manual values are refused; a failure_count at the threshold opens the breaker."""
    cb = make(failure_threshold=3).breaker
    with pytest.raises(ValueError, match="AJAR"):
        cb.state = "AJAR"
    with pytest.raises(ValueError, match="failure_count"):
        cb.failure_count = -1
    cb.state = "open"
    assert cb.state is CircuitState.OPEN
    cb.state = "CLOSED"
    cb.failure_count = 3
    assert cb.state == "OPEN"


def test_snapshot_is_json_ready(make: Callable[..., Rig]) -> None:
    """snapshot() has name, state, counts, timing and settings, and serialises to JSON."""
    rig = make(failure_threshold=1, recovery_timeout=20.0, expected_exception=(ValueError,))
    trip(rig)
    rig.clock.advance(5.0)
    snap = rig.breaker.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert {k: snap[k] for k in ("name", "state", "failure_count", "seconds_until_probe")} == {
        "name": "svc", "state": "OPEN", "failure_count": 1, "seconds_until_probe": 15.0}
    assert snap["calls"]["failure"] == 1
    assert snap["config"]["failure_threshold"] == 1
    assert snap["config"]["expected_exception"] == "ValueError"
    assert snap["config"]["fallback"] is None


def test_the_constructor_settings_read_back_as_attributes() -> None:
    """cb.failure_threshold, recovery_timeout, half_open_max_calls and success_threshold are
    what the constructor was given (they live in cb.policy; reading them raised before)."""
    cb = CircuitBreaker(3, 12.5, name="read-back", half_open_max_calls=2, success_threshold=2,
                        registry=CollectorRegistry())
    assert (cb.failure_threshold, cb.recovery_timeout, cb.half_open_max_calls,
            cb.success_threshold) == (3, 12.5, 2, 2)
    rate = CircuitBreaker(failure_rate_threshold=0.5, name="rate-read-back",
                          registry=CollectorRegistry())
    assert rate.failure_threshold is None


def test_a_second_live_breaker_with_the_same_name_and_registry_is_warned_about() -> None:
    """Two live CircuitBreaker(name="dup") on one registry share their series: the second
    says so in a warning; the same name on another registry, or after the first is gone, not."""
    registry = CollectorRegistry()
    stream = io.StringIO()
    logger = StructuredLogger("vigil.circuit_breaker", registry=registry, stream=stream)
    first = CircuitBreaker(name="dup", registry=registry, logger=logger)
    first.call(ok)
    other = CircuitBreaker(name="dup", registry=CollectorRegistry(), logger=logger)
    other.call(ok)
    assert "same registry" not in stream.getvalue()
    second = CircuitBreaker(name="dup", registry=registry, logger=logger)
    second.call(ok)
    warned = [json.loads(line) for line in stream.getvalue().splitlines()
              if "same registry" in line]
    assert [w["metadata"] for w in warned] == [{"breaker": "dup", "live_with_this_name": 2}]
    del first, second
    gc.collect()
    third = CircuitBreaker(name="dup", registry=registry, logger=logger)
    third.call(ok)
    assert sum("same registry" in line for line in stream.getvalue().splitlines()) == 1
