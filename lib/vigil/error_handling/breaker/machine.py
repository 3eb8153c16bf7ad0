"""The breaker's decisions: :class:`BreakerStateMachine`, with no I/O, clock or user code.

The caller passes ``now`` (monotonic seconds) and tells it how each call went; it answers with
permits, rejections and outcomes, and queues the events it causes. Every state change goes
through one method (``_transition_locked``); events are published in order once the lock is
released, by one thread at a time.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

from vigil.error_handling.breaker.events import (
    BreakerEvent,
    CallRejected,
    FailureRateExceeded,
    SlowCallRateExceeded,
    StateTransition,
)
from vigil.error_handling.breaker.policy import BreakerPolicy, check_positive, is_int
from vigil.error_handling.breaker.states import (
    ADMITTING,
    FAILURE,
    IGNORED,
    REJECTED,
    SLOW,
    SUCCESS,
    CircuitState,
    Outcome,
)
from vigil.error_handling.breaker.window import Window, make_window

__all__ = ["BreakerStateMachine"]

_CLOSED: Final = CircuitState.CLOSED
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN
_METRICS_ONLY: Final = CircuitState.METRICS_ONLY
_FORCED_OPEN: Final = CircuitState.FORCED_OPEN


def _discard(event: BreakerEvent) -> None:
    """The default publisher of a state machine used on its own."""


class BreakerStateMachine:
    """The breaker's decisions, without I/O, clock or user code: the caller passes ``now``.

    Protocol for one call: ``permit = sm.try_acquire(now)``; if it is a :class:`CallRejected`
    do not run the call; otherwise run it and report exactly one of
    ``on_success(permit, now, duration)``, ``on_failure(permit, now, duration)`` or
    ``on_ignored(permit)``. Thread-safe; the lock is held only inside these methods.

    ``publish`` receives every :class:`StateTransition`, :class:`FailureRateExceeded` and
    :class:`SlowCallRateExceeded` (in the order they happened, never while the lock is held,
    never re-entrantly on one thread) and every :class:`CallRejected`. It must not raise (an
    :class:`~vigil.error_handling.events.EventPublisher`'s ``publish`` never does).
    """

    __slots__ = ("_consecutive", "_epoch", "_free_permit", "_lock", "_max_probes",
                 "_min_calls", "_n_failure", "_n_ignored", "_n_rejected", "_n_slow",
                 "_open_until", "_pending", "_probe_successes", "_probes",
                 "_publish", "_publish_lock", "_publishing", "_rate", "_rate_over",
                 "_slow_after", "_slow_is_failure", "_slow_over", "_slow_rate", "_state",
                 "_success_reads", "_successes", "_threshold", "_timeout", "_trips", "_window",
                 "name", "policy")

    def __init__(self, name: str, policy: BreakerPolicy,
                 publish: Callable[[BreakerEvent], object] = _discard) -> None:
        self.name = name
        self.policy = policy
        self._publish = publish
        self._lock = threading.Lock()
        # Events wait here until the lock is released; _flush publishes them in order.
        self._pending: deque[BreakerEvent] = deque()
        self._publish_lock = threading.Lock()
        self._publishing: int | None = None  # thread id of the thread running _flush
        # Policy numbers copied to slots: the hot path reads them without a second lookup.
        self._threshold = policy.failure_threshold or 0  # 0: no failures-in-a-row rule
        self._rate = policy.failure_rate_threshold
        self._slow_rate = policy.slow_call_rate_threshold
        # Without a slow-call rate to count them toward, slow calls count as failures.
        self._slow_is_failure = self._slow_rate is None
        self._min_calls = policy.minimum_calls
        self._max_probes = policy.half_open_max_calls
        self._slow_after = policy.slow_call_duration if policy.slow_call_duration is not None \
            else math.inf
        self._window = make_window(policy.sliding_window_type, policy.sliding_window_size) \
            if policy.has_window else None
        self._state = _CLOSED
        # The epoch numbers state periods; a permit is the epoch it was issued in.
        self._epoch = 0
        # The epoch while the state admits every call (CLOSED, DISABLED, METRICS_ONLY), else
        # -1: one attribute read admits a call lock-free, and a single read cannot pair an
        # admitting state with a later epoch (which a HALF_OPEN probe count would miscount).
        self._free_permit = 0
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        self._open_until = 0.0
        self._timeout = policy.recovery_timeout
        self._trips = 0
        # Whether each rate is at/above its threshold: its event is published on the way up.
        self._rate_over = self._slow_over = False
        # Successes are counted without the lock: next() on an itertools.count is one C call,
        # atomic under the GIL (a free-threaded build would need the lock). Taking the lock for
        # them costs about a quarter of the success path (bench/breaker_options.py). A read
        # takes a number too, so the count is the numbers taken minus the reads (made under
        # the lock, so they are counted exactly): see _successes_locked.
        self._successes = itertools.count()
        self._success_reads = 0
        self._n_slow = self._n_failure = self._n_ignored = self._n_rejected = 0

    # -- one call ------------------------------------------------------------------------

    def try_acquire(self, now: float) -> int | CallRejected:
        """A permit to run one call, or the rejection (also published) if it may not run."""
        permit = self._free_permit
        if permit >= 0:
            return permit
        result: int | CallRejected
        with self._lock:
            state = self._state
            if state is _OPEN and now >= self._open_until:
                self._transition_locked(_HALF_OPEN, now, "recovery timeout elapsed")
                state = _HALF_OPEN
            if state in ADMITTING:
                result = self._epoch
            elif state is _HALF_OPEN and self._probes < self._max_probes:
                self._probes += 1
                result = self._epoch
            else:
                self._n_rejected += 1
                retry_after = self._open_until - now if state is _OPEN else \
                    math.inf if state is _FORCED_OPEN else 0.0
                result = CallRejected(self.name, state, retry_after)
        if self._pending:
            self._flush()
        if isinstance(result, CallRejected):
            self._publish(result)
        return result

    def on_success(self, permit: int, now: float, duration: float) -> Outcome:
        """The call returned after ``duration`` seconds; answers ``success`` or ``slow``."""
        slow = duration > self._slow_after
        if not slow:
            next(self._successes)
            # The hot path takes no lock when a success has nothing to record: with no window
            # and no failures in a row, recording it would set the count to 0, which it is.
            # Reading the fields separately is safe: if the permit is still this admitting
            # period's and the count reads 0, recording now changes nothing; if the period has
            # ended, the permit is stale and recording would be skipped anyway. A probe's
            # permit never equals _free_permit, so probes always take the lock.
            if permit == self._free_permit and not self._consecutive and \
                    self._window is None:
                return SUCCESS
        with self._lock:
            if slow:
                self._n_slow += 1
            if permit == self._epoch:
                state = self._state
                if state is _CLOSED or state is _METRICS_ONLY:
                    self._record_locked(slow and self._slow_is_failure, slow, now)
                elif state is _HALF_OPEN:
                    self._probe_done_locked(not slow, now)
        if self._pending:
            self._flush()
        return SLOW if slow else SUCCESS

    def on_failure(self, permit: int, now: float, duration: float) -> Outcome:
        """The call failed (an expected exception, or a result ``failure_on_result`` refused)
        after ``duration`` seconds."""
        slow = duration > self._slow_after
        with self._lock:
            self._n_failure += 1
            if permit == self._epoch:
                state = self._state
                if state is _CLOSED or state is _METRICS_ONLY:
                    self._record_locked(True, slow, now)
                elif state is _HALF_OPEN:
                    self._probe_done_locked(False, now)
        if self._pending:
            self._flush()
        return FAILURE

    def on_ignored(self, permit: int) -> Outcome:
        """The call ended in a way that says nothing about the service; frees its probe slot."""
        with self._lock:
            self._n_ignored += 1
            if permit == self._epoch and self._state is _HALF_OPEN:
                self._probes -= 1
        return IGNORED

    # -- reading -------------------------------------------------------------------------

    def current_state(self, now: float) -> CircuitState:
        """The state at ``now``; an OPEN breaker whose timeout has passed turns HALF_OPEN."""
        state = self._state
        if state is not _OPEN or now < self._open_until:
            return state
        with self._lock:
            if self._state is _OPEN and now >= self._open_until:
                self._transition_locked(_HALF_OPEN, now, "recovery timeout elapsed")
            state = self._state
        self._flush()
        return state

    def seconds_until_probe(self, now: float) -> float:
        """Seconds until an OPEN breaker admits a probe; 0 in any other state."""
        if self.current_state(now) is not _OPEN:
            return 0.0
        return max(0.0, self._open_until - now)

    @property
    def failure_count(self) -> int:
        """Failures in a row (slow calls included unless a slow-call rate is set), counted
        since the last success or (re)start of counting."""
        return self._consecutive

    @property
    def recovery_timeout(self) -> float:
        """The open duration the next trip would use (grows with consecutive trips)."""
        return self._timeout

    def counts(self) -> dict[str, int]:
        """Calls by outcome since the machine was made."""
        with self._lock:
            return self._counts_locked()

    def _counts_locked(self) -> dict[str, int]:
        return {SUCCESS: self._successes_locked(), SLOW: self._n_slow, FAILURE: self._n_failure,
                IGNORED: self._n_ignored, REJECTED: self._n_rejected}

    def _successes_locked(self) -> int:
        """The successes so far: the numbers taken from the counter minus those reads took."""
        count = next(self._successes) - self._success_reads
        self._success_reads += 1
        return count

    def snapshot(self, now: float) -> dict[str, Any]:
        """State and counts as plain JSON-ready values."""
        state = self.current_state(now)
        with self._lock:
            window = self._window
            calls = failures = slows = 0
            if window is not None:
                window.advance(now)
                calls, failures, slows = window.calls, window.failures, window.slows
            return {
                "name": self.name,
                "state": state.value,
                "failure_count": self._consecutive,
                "calls": self._counts_locked(),
                "seconds_until_probe": max(0.0, self._open_until - now)
                if self._state is _OPEN else 0.0,
                "recovery_timeout": self._timeout,
                "half_open_calls_in_flight": self._probes if self._state is _HALF_OPEN else 0,
                "failure_rate": failures / calls if calls else None,
                "slow_call_rate": slows / calls if calls and self._slow_rate is not None
                else None,
                "window_calls": calls if window is not None else None,
            }

    # -- changing it from outside ----------------------------------------------------------

    def transition(self, to: CircuitState | str, now: float, reason: str, *,
                   open_for: float | None = None) -> bool:
        """Move to ``to`` (``open_for`` seconds when opening; default: the current recovery
        timeout). Returns whether the state changed; a same-state move changes nothing, except
        that an OPEN breaker moved to OPEN with ``open_for`` restarts its timer."""
        target = CircuitState.parse(to)
        if open_for is not None:
            check_positive("open_for", open_for)
        with self._lock:
            changed = self._transition_locked(target, now, reason, open_for)
        if self._pending:
            self._flush()
        return changed

    def reset(self, now: float, reason: str = "reset") -> None:
        """Back to CLOSED with every count and the open-duration growth cleared."""
        with self._lock:
            self._clear_counts_locked()
            self._transition_locked(_CLOSED, now, reason)
        if self._pending:
            self._flush()

    def set_failure_count(self, count: int, now: float) -> None:
        """Set the failures-in-a-row count (0 also empties the sliding window). In CLOSED
        with the failures-in-a-row rule, a count at or above ``failure_threshold`` opens."""
        if not is_int(count) or count < 0:
            raise ValueError(f"failure_count must be an integer >= 0, got {count!r}")
        with self._lock:
            self._consecutive = count
            if count == 0 and self._window is not None:
                self._window.clear()
            if self._state is _CLOSED and self._threshold and count >= self._threshold:
                self._trip_locked(now, f"failure_count set to {count}")
        if self._pending:
            self._flush()

    # -- inside the lock -------------------------------------------------------------------

    def _record_locked(self, failed: bool, slow: bool, now: float) -> None:
        """Record a CLOSED or METRICS_ONLY result and apply the opening rules (CLOSED opens;
        METRICS_ONLY only publishes the rate events)."""
        if failed:
            self._consecutive += 1
            threshold = self._threshold
            if threshold and self._consecutive >= threshold and self._state is _CLOSED:
                self._trip_locked(now, f"{self._consecutive} failures in a row")
                return
        else:
            self._consecutive = 0
        window = self._window
        if window is None:
            return
        window.record(failed, slow, now)
        calls = window.calls
        # Checked on every call, as Resilience4j does: the minimum may be reached by a success.
        if calls < self._min_calls:
            self._rate_over = self._slow_over = False
            return
        rate, slow_rate = self._rate, self._slow_rate
        failing = rate is not None and window.failures / calls >= rate
        slowing = slow_rate is not None and window.slows / calls >= slow_rate
        if failing or slowing or self._rate_over or self._slow_over:
            self._judge_rates_locked(failing, slowing, calls, now)

    def _judge_rates_locked(self, failing: bool, slowing: bool, calls: int,
                            now: float) -> None:
        """A rate is at/above its threshold (or was until this call): publish the exceeded
        events on the way up, and open when CLOSED."""
        window = cast(Window, self._window)
        reasons = []
        if failing:
            value, threshold = window.failures / calls, cast(float, self._rate)
            reasons.append(f"failure rate {value:.0%} over {self._span(calls)}")
            if not self._rate_over:
                self._pending.append(FailureRateExceeded(
                    self.name, value, threshold, calls, self._state, now))
        if slowing:
            value, threshold = window.slows / calls, cast(float, self._slow_rate)
            reasons.append(f"slow call rate {value:.0%} over {self._span(calls)}")
            if not self._slow_over:
                self._pending.append(SlowCallRateExceeded(
                    self.name, value, threshold, calls, self._state, now))
        self._rate_over, self._slow_over = failing, slowing
        if reasons and self._state is _CLOSED:
            self._trip_locked(now, "; ".join(reasons))

    def _span(self, calls: int) -> str:
        """The window, in words, for a transition's reason."""
        if self.policy.sliding_window_type == "time":
            return f"{calls} calls in the last {self.policy.sliding_window_size} s"
        return f"the last {calls} calls"

    def _probe_done_locked(self, ok: bool, now: float) -> None:
        self._probes -= 1
        if not ok:
            self._consecutive += 1
            self._trip_locked(now, "probe call failed")
            return
        self._consecutive = 0
        self._probe_successes += 1
        if self._probe_successes >= self.policy.success_threshold:
            self._transition_locked(_CLOSED, now,
                                    f"{self._probe_successes} probe call(s) succeeded")

    def _trip_locked(self, now: float, reason: str) -> None:
        """Open because calls failed; each consecutive trip may lengthen the open duration."""
        self._trips += 1
        if self._trips > 1:
            cap = self.policy.max_recovery_timeout
            grown = self._timeout * self.policy.open_duration_multiplier
            self._timeout = grown if cap is None else min(grown, cap)
        self._transition_locked(_OPEN, now, reason)

    def _clear_counts_locked(self) -> None:
        self._consecutive = 0
        if self._window is not None:
            self._window.clear()

    def _transition_locked(self, to: CircuitState, now: float, reason: str,
                           open_for: float | None = None) -> bool:
        """THE place where the state changes; queues the event for :meth:`_flush`."""
        current = self._state
        if to is current:
            if to is _OPEN and open_for is not None:
                self._open_until = now + open_for
            return False
        self._free_permit = -1  # first: stop lock-free admissions before anything else
        self._state = to
        self._epoch += 1
        self._rate_over = self._slow_over = False
        if to is _OPEN:
            self._open_until = now + (open_for if open_for is not None else self._timeout)
        elif to is _HALF_OPEN:
            self._probes = 0
            self._probe_successes = 0
        elif to in ADMITTING:
            # CLOSED, DISABLED, METRICS_ONLY: counting starts afresh, growth is forgotten.
            self._clear_counts_locked()
            self._trips = 0
            self._timeout = self.policy.recovery_timeout
            self._free_permit = self._epoch  # last: admissions resume in the new period
        # FORCED_OPEN needs nothing: it rejects until it is moved out of.
        self._pending.append(StateTransition(self.name, current, to, now, reason))
        return True

    def after_fork(self) -> CircuitState:
        """In a forked child: fresh locks, the parent's unpublished events dropped (the
        parent publishes them); returns the state, for the child to show."""
        self._lock, self._publish_lock = threading.Lock(), threading.Lock()
        self._publishing = None
        self._pending.clear()
        return self._state

    # -- publishing ------------------------------------------------------------------------

    def _flush(self) -> None:
        """Publish queued events in order, outside the state lock.

        One thread publishes at a time, so subscribers (the state gauge) see transitions in
        the order they happened even when several threads caused them. A subscriber that
        causes another transition on this thread leaves it queued: the loop below publishes it
        after the current event has reached every subscriber.
        """
        if self._publishing == threading.get_ident():
            return
        with self._publish_lock:
            self._publishing = threading.get_ident()
            try:
                pending = self._pending
                while pending:
                    try:
                        event = pending.popleft()
                    except IndexError:  # another thread's flush took it
                        break
                    self._publish(event)
            finally:
                self._publishing = None
