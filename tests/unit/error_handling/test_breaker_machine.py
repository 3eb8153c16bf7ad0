"""vigil.error_handling.breaker.machine: the state machine alone, driven with explicit times."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from vigil.error_handling.breaker import (
    BreakerEvent,
    BreakerPolicy,
    BreakerStateMachine,
    CallRejected,
    CircuitState,
    FailureRateExceeded,
    SlowCallRateExceeded,
    StateTransition,
)

WAIT = 5.0


def machine(**policy: Any) -> tuple[BreakerStateMachine, list[BreakerEvent]]:
    """A machine named ``core`` and the list its events are published to."""
    published: list[BreakerEvent] = []
    return BreakerStateMachine("core", BreakerPolicy(**policy), published.append), published


def succeed(sm: BreakerStateMachine, now: float, duration: float = 0.0) -> str:
    permit = sm.try_acquire(now)
    assert isinstance(permit, int)
    return sm.on_success(permit, now + duration, duration)


def failure(sm: BreakerStateMachine, now: float, duration: float = 0.0) -> str:
    permit = sm.try_acquire(now)
    assert isinstance(permit, int)
    return sm.on_failure(permit, now + duration, duration)


def transitions(published: list[BreakerEvent]) -> list[tuple[str, str]]:
    return [(e.from_state.value, e.to_state.value) for e in published
            if isinstance(e, StateTransition)]


RATE = {"failure_threshold": None, "failure_rate_threshold": 0.5, "minimum_calls": 4,
        "sliding_window_size": 4}


def test_state_machine_runs_without_io() -> None:
    """The core is driven with explicit times and reports transitions to a plain callback."""
    sm, published = machine(failure_threshold=2, recovery_timeout=5.0)
    for now in (1.0, 2.0):
        failure(sm, now, 0.1)
    rejection = sm.try_acquire(3.0)
    assert rejection == CallRejected("core", CircuitState.OPEN, 4.1)
    assert sm.current_state(7.1) is CircuitState.HALF_OPEN
    assert [type(e).__name__ for e in published] == [
        "StateTransition", "CallRejected", "StateTransition"]


def test_a_call_admitted_in_an_earlier_state_does_not_move_the_machine() -> None:
    """A result reported with a permit from a past state period is counted but not acted on."""
    sm, _ = machine(failure_threshold=1, recovery_timeout=5.0)
    old = sm.try_acquire(0.0)
    assert isinstance(old, int)
    sm.transition("OPEN", 0.0, "test")
    assert sm.current_state(5.0) is CircuitState.HALF_OPEN
    sm.on_success(old, 5.0, 0.0)  # not a probe: must not close the breaker
    assert sm.current_state(5.0) is CircuitState.HALF_OPEN
    sm.on_failure(old, 5.0, 0.0)  # nor reopen it
    assert sm.current_state(5.0) is CircuitState.HALF_OPEN
    assert sm.counts()["success"] == 1
    probe = sm.try_acquire(5.0)
    assert isinstance(probe, int)
    sm.on_success(probe, 5.0, 0.0)
    assert sm.current_state(5.0) is CircuitState.CLOSED


# --- the three manual states ----------------------------------------------------------------


def test_disabled_admits_everything_and_records_nothing() -> None:
    """DISABLED: 50 failures neither open it nor count in a row (the outcome counts still
    add up); back in CLOSED, counting starts from zero."""
    sm, published = machine(failure_threshold=2)
    failure(sm, 0.0)
    assert sm.transition("disabled", 1.0, "test")
    for i in range(50):
        assert failure(sm, 2.0 + i) == "failure"
    assert sm.current_state(100.0) is CircuitState.DISABLED
    assert sm.failure_count == 0
    assert sm.counts()["failure"] == 51
    sm.transition(CircuitState.CLOSED, 100.0, "test")
    failure(sm, 101.0)
    assert sm.current_state(101.0) is CircuitState.CLOSED
    assert transitions(published) == [("CLOSED", "DISABLED"), ("DISABLED", "CLOSED")]


def test_disabled_records_nothing_in_its_window_either() -> None:
    """A failure-rate breaker in DISABLED keeps its window empty."""
    sm, _ = machine(**RATE)
    sm.transition("DISABLED", 0.0, "test")
    for i in range(10):
        failure(sm, float(i))
    assert sm.snapshot(10.0)["window_calls"] == 0


def test_metrics_only_counts_but_never_opens_by_itself() -> None:
    """METRICS_ONLY: failures in a row are counted past the threshold; the state stays."""
    sm, published = machine(failure_threshold=2)
    sm.transition("METRICS_ONLY", 0.0, "test")
    for i in range(5):
        failure(sm, float(i))
    assert (sm.current_state(10.0), sm.failure_count) == (CircuitState.METRICS_ONLY, 5)
    assert transitions(published) == [("CLOSED", "METRICS_ONLY")]


def test_metrics_only_publishes_the_rate_event_once_per_excursion() -> None:
    """In METRICS_ONLY the failure rate reaching its threshold publishes one
    FailureRateExceeded (state METRICS_ONLY), not one per call; falling below re-arms it."""
    sm, published = machine(**RATE)
    sm.transition("METRICS_ONLY", 0.0, "test")
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):  # F F F F F: 100% from the 4th call on
        failure(sm, now)
    for now in (6.0, 7.0, 8.0):  # F S S S: 25%, below
        succeed(sm, now)
    failure(sm, 9.0)  # S S S F -> 25%
    failure(sm, 10.0)  # S S F F -> 50% again
    exceeded = [e for e in published if isinstance(e, FailureRateExceeded)]
    assert exceeded == [
        FailureRateExceeded("core", 1.0, 0.5, 4, CircuitState.METRICS_ONLY, 4.0),
        FailureRateExceeded("core", 0.5, 0.5, 4, CircuitState.METRICS_ONLY, 10.0)]
    assert sm.current_state(10.0) is CircuitState.METRICS_ONLY


def test_forced_open_rejects_until_moved_out_of() -> None:
    """FORCED_OPEN rejects every call with retry_after inf, never turns HALF_OPEN however
    long it waits, and leaves only by a transition."""
    sm, published = machine(failure_threshold=1, recovery_timeout=1.0)
    sm.transition("forced-open", 0.0, "test")
    assert sm.try_acquire(1e9) == CallRejected("core", CircuitState.FORCED_OPEN, math.inf)
    assert sm.current_state(1e12) is CircuitState.FORCED_OPEN
    assert sm.seconds_until_probe(1e12) == 0.0
    assert sm.counts()["rejected"] == 1
    sm.transition("CLOSED", 2e12, "test")
    assert isinstance(sm.try_acquire(2e12), int)
    assert transitions(published) == [("CLOSED", "FORCED_OPEN"), ("FORCED_OPEN", "CLOSED")]


def test_a_probe_in_flight_when_forced_open_does_not_close_it() -> None:
    """A HALF_OPEN probe that ends after the machine was forced open is stale: FORCED_OPEN
    stays (the permit belongs to the HALF_OPEN period)."""
    sm, _ = machine(failure_threshold=1, recovery_timeout=1.0)
    failure(sm, 0.0)
    probe = sm.try_acquire(1.0)
    assert isinstance(probe, int)
    sm.transition("FORCED_OPEN", 1.5, "test")
    sm.on_success(probe, 2.0, 1.0)
    assert sm.current_state(2.0) is CircuitState.FORCED_OPEN


@pytest.mark.parametrize("state", list(CircuitState))
def test_every_state_can_be_entered_and_left(state: CircuitState) -> None:
    """transition() reaches each of the six states from CLOSED and comes back; moving to the
    current state changes nothing."""
    sm, published = machine()
    changed = sm.transition(state, 0.0, "test")
    assert changed is (state is not CircuitState.CLOSED)
    assert sm.transition(state, 0.0, "test") is False
    sm.reset(1.0)
    assert sm.current_state(1.0) is CircuitState.CLOSED
    expected = [] if state is CircuitState.CLOSED else [("CLOSED", state.value),
                                                         (state.value, "CLOSED")]
    assert transitions(published) == expected


# --- rates ------------------------------------------------------------------------------------


def test_the_rate_event_comes_just_before_the_transition_it_causes() -> None:
    """Reaching the failure rate in CLOSED publishes FailureRateExceeded (rate, threshold,
    calls, CLOSED), then CLOSED -> OPEN with the rate in its reason."""
    sm, published = machine(**RATE)
    succeed(sm, 1.0)
    succeed(sm, 2.0)
    failure(sm, 3.0)
    failure(sm, 4.0)
    assert published == [
        FailureRateExceeded("core", 0.5, 0.5, 4, CircuitState.CLOSED, 4.0),
        StateTransition("core", CircuitState.CLOSED, CircuitState.OPEN, 4.0,
                        "failure rate 50% over the last 4 calls")]


def test_slow_calls_count_toward_the_slow_rate_not_as_failures() -> None:
    """With slow_call_rate_threshold, a slow success resets failures in a row and the
    failure rate stays 0 (Resilience4j); the slow rate reaching 50% opens the breaker."""
    sm, published = machine(failure_threshold=3, slow_call_duration=1.0,
                            slow_call_rate_threshold=0.5, minimum_calls=4,
                            sliding_window_size=4)
    failure(sm, 0.0)
    assert succeed(sm, 1.0, duration=2.0) == "slow"
    assert sm.failure_count == 0  # the slow success broke the run of failures
    succeed(sm, 4.0)
    assert sm.current_state(5.0) is CircuitState.CLOSED
    succeed(sm, 5.0, duration=1.5)
    assert sm.current_state(7.0) is CircuitState.OPEN
    assert [type(e) for e in published] == [SlowCallRateExceeded, StateTransition]
    slow_event = published[0]
    assert isinstance(slow_event, SlowCallRateExceeded)
    assert (slow_event.rate, slow_event.threshold, slow_event.calls) == (0.5, 0.5, 4)
    assert published[1].reason == "slow call rate 50% over the last 4 calls"  # type: ignore[union-attr]
    assert sm.counts() == {"success": 1, "slow": 2, "failure": 1, "ignored": 0, "rejected": 0}


def test_without_a_slow_rate_slow_calls_are_failures() -> None:
    """No slow_call_rate_threshold: slow successes count as failures (in a row and in the
    failure rate), as before."""
    sm, _ = machine(failure_threshold=None, failure_rate_threshold=0.5, minimum_calls=2,
                    sliding_window_size=2, slow_call_duration=1.0)
    succeed(sm, 0.0)
    succeed(sm, 1.0, duration=5.0)
    assert sm.current_state(6.0) is CircuitState.OPEN


def test_a_slow_failure_counts_toward_both_rates() -> None:
    """A failure slower than slow_call_duration adds to the failure and the slow rate; both
    events are published and the reason names both."""
    sm, published = machine(failure_threshold=None, failure_rate_threshold=1.0,
                            slow_call_duration=1.0, slow_call_rate_threshold=1.0,
                            minimum_calls=2, sliding_window_size=2)
    failure(sm, 0.0, duration=2.0)
    failure(sm, 3.0, duration=2.0)
    assert [type(e) for e in published] == [FailureRateExceeded, SlowCallRateExceeded,
                                            StateTransition]
    assert published[2].reason == (  # type: ignore[union-attr]
        "failure rate 100% over the last 2 calls; slow call rate 100% over the last 2 calls")


def test_failures_in_a_row_still_open_beside_a_slow_rate() -> None:
    """The slow rate adds a rule; failure_threshold in a row still opens."""
    sm, _ = machine(failure_threshold=2, slow_call_duration=1.0, slow_call_rate_threshold=0.9)
    failure(sm, 0.0)
    failure(sm, 1.0)
    assert sm.current_state(1.0) is CircuitState.OPEN


def test_a_slow_probe_reopens_in_slow_rate_mode_too() -> None:
    """In HALF_OPEN a slow probe is a failed probe, whether or not slow calls are failures."""
    sm, _ = machine(failure_threshold=1, recovery_timeout=5.0, slow_call_duration=1.0,
                    slow_call_rate_threshold=0.5)
    failure(sm, 0.0)
    succeed(sm, 5.0, duration=2.0)
    assert sm.current_state(7.0) is CircuitState.OPEN


def test_a_time_window_judges_the_calls_of_the_last_seconds() -> None:
    """A 10 s time window with minimum_calls 3: old failures age out (no trip), the minimum
    counts only calls inside the window, and 3 recent failures of 4 open it."""
    sm, published = machine(failure_threshold=None, failure_rate_threshold=0.75,
                            sliding_window_type="time", sliding_window_size=10,
                            minimum_calls=3)
    failure(sm, 100.0)
    failure(sm, 101.0)
    succeed(sm, 115.0)  # the failures are more than 10 s old: 1 call in the window
    assert sm.snapshot(115.0)["window_calls"] == 1
    failure(sm, 116.0)
    failure(sm, 117.0)  # S F F: 67%
    assert sm.current_state(117.0) is CircuitState.CLOSED
    failure(sm, 118.0)  # S F F F: 75%
    assert sm.current_state(118.0) is CircuitState.OPEN
    assert published[-1].reason == (  # type: ignore[union-attr]
        "failure rate 75% over 4 calls in the last 10 s")


def test_snapshot_rates_follow_the_clock_for_a_time_window() -> None:
    """snapshot(now) reads the window at now: a 5 s window at 15.0 holds seconds 11..15, so
    the call of second 10 is out and the rates come from the two still inside."""
    sm, _ = machine(failure_threshold=None, failure_rate_threshold=1.0, slow_call_duration=1.0,
                    slow_call_rate_threshold=1.0, sliding_window_type="time",
                    sliding_window_size=5, minimum_calls=10)
    failure(sm, 10.0)
    failure(sm, 11.0)
    succeed(sm, 13.0, duration=2.0)
    snap = sm.snapshot(15.0)
    assert (snap["window_calls"], snap["failure_rate"], snap["slow_call_rate"]) == (2, 0.5, 0.5)
    snap = sm.snapshot(30.0)
    assert (snap["window_calls"], snap["failure_rate"], snap["slow_call_rate"]) == (0, None, None)


# --- counting ---------------------------------------------------------------------------------


def test_success_counts_are_exact_while_others_read_them() -> None:
    """8 threads x 2,000 lock-free successes while a reader calls counts() in a loop: every
    read is monotonic and the total is exact (each read takes a number from the counter)."""
    sm, _ = machine()
    threads_n, rounds = 8, 2000
    start = threading.Barrier(threads_n + 1)
    done = threading.Event()
    seen: list[int] = []

    def worker() -> None:
        start.wait(WAIT)
        for _ in range(rounds):
            succeed(sm, 0.0)

    def reader() -> None:
        start.wait(WAIT)
        while not done.is_set():
            seen.append(sm.counts()["success"])

    workers = [threading.Thread(target=worker) for _ in range(threads_n)]
    watcher = threading.Thread(target=reader)
    for thread in [*workers, watcher]:
        thread.start()
    for thread in workers:
        thread.join(WAIT * 4)
    done.set()
    watcher.join(WAIT)
    assert seen == sorted(seen)
    assert sm.counts()["success"] == threads_n * rounds
    assert sm.snapshot(0.0)["calls"]["success"] == threads_n * rounds
