"""Circuit breakers: the seed's ``CircuitBreaker``, thread-safe, shared by sync and async code.

::

    cb = CircuitBreaker(failure_threshold=5, recovery_timeout=60.0, expected_exception=Exception)
    result = cb.call(risky_function, arg1, arg2)            # sync
    result = await cb.call_async(external_service_call, p)  # async

    @CircuitBreaker(failure_threshold=3)                    # decorator, sync or async
    async def fetch(url: str) -> bytes: ...

**Shape** (tenacity's and Resilience4j's). :class:`BreakerStateMachine` is the whole decision:
states, counting, half-open permits and the open-duration growth, with no I/O, no clock and no
calling of user code. It answers ``try_acquire(now)`` with a *permit* (an ``int``) or a
:class:`CallRejected`, and is told how the call went with ``on_success``/``on_failure``/
``on_ignored``. Every state change goes through one method (``_transition_locked``), which
queues a :class:`StateTransition` that is published, in order, once the lock is released.
:class:`CircuitBreaker` is the thin driver: ``call``, ``call_async`` and the decorator differ only
in the line that calls or awaits. The breaker's lock is never held while the protected function
runs, so calls through one breaker run concurrently.

**States.** ``CLOSED``: calls run. ``failure_threshold`` failures in a row open it (a success
resets the count). ``OPEN``: calls are rejected without running the function. Once the recovery
timeout has passed it is ``HALF_OPEN`` (visible on reading :attr:`CircuitBreaker.state`, no call
needed), which admits at most ``half_open_max_calls`` probe calls at once and rejects the rest;
``success_threshold`` probe successes close it, one probe failure opens it again with a fresh
timer. :class:`CircuitState` is a ``str`` enum: ``cb.state == "OPEN"`` works.

**Outcomes** (the ``outcome`` label of ``vigil_circuit_breaker_calls_total``):

* ``success``: returned normally (within ``slow_call_duration``, when set).
* ``slow``: returned normally but took longer than ``slow_call_duration`` seconds. Its result is
  returned to the caller, but for opening it counts as a failure (in a row, in the failure-rate
  window, and as a failed probe in ``HALF_OPEN``).
* ``failure``: raised an exception matching ``expected_exception`` (a class, a tuple of classes,
  or a predicate ``Callable[[BaseException], bool]``; a predicate that raises is logged and the
  call counts as a failure). The exception propagates unchanged.
* ``ignored``: raised an exception that does not match, or a ``BaseException`` that is not an
  ``Exception`` (``KeyboardInterrupt``, ``asyncio.CancelledError``). It propagates unchanged, is
  neither success nor failure, and frees the half-open probe slot it held.
* ``rejected``: not run, because the breaker was ``OPEN`` or had no free probe slot.

**Rejections** raise :class:`~vigil.error_handling.errors.CircuitOpenError` (name, state, seconds
until the next probe), or, when ``fallback`` is given, return ``fallback(*args, **kwargs)``
(same arguments as the protected call; ``call_async`` awaits it if it returns an awaitable).
The fallback is for rejections only: failures of the protected call propagate.

**A call's result belongs to the state it was admitted in.** A permit names the state period it
was issued in; a call that finishes after the breaker has changed state (say it began in
``CLOSED`` and the breaker opened meanwhile) is counted in the metrics but does not move the
state machine.

**Beyond the seed** (all off by default; Resilience4j's meanings):

* Failure-rate mode, when ``failure_rate_threshold`` (0..1] is given: the last
  ``sliding_window_size`` calls are kept; once at least ``minimum_calls`` are recorded, a
  failure rate at or above the threshold opens the breaker. It *replaces* the failures-in-a-row
  rule, so ``failure_threshold`` must not be given with it (``failure_count`` still reports
  failures in a row).
* ``slow_call_duration``: see ``slow`` above.
* Growing open duration: each consecutive trip (a failed probe re-opening the breaker)
  multiplies the open duration by ``open_duration_multiplier``, capped at
  ``max_recovery_timeout``; closing resets it to ``recovery_timeout``.

**Defaults** (``None``) are read at construction: ``error_handling.circuit_breaker.default_*``
(:func:`vigil.configure`), :data:`vigil.clock.SYSTEM_CLOCK`, ``performance_monitor.registry``,
``vigil.monitoring.alerts.alert_manager`` and a shared
``StructuredLogger("vigil.circuit_breaker")``.
A later :func:`vigil.configure` does not change existing breakers. Invalid values (zero or
negative thresholds and timeouts, a rate outside (0, 1], ...) raise
:class:`~vigil.config.ConfigError` naming the argument; nothing is silently replaced.

**Names.** A breaker given ``name`` is named at construction. An unnamed breaker takes its name
on first use: the decorated function's ``__qualname__`` if that first use is decorating a
function (``@CircuitBreaker(...)``), otherwise ``breaker-N``. Its metric series, events and its
entry in :func:`all_breakers` appear at that moment. The name is the ``breaker`` label, so it
follows :mod:`vigil.text`'s rule: a lone surrogate in it (a name built from an ``os.fsdecode``-d
path) is U+FFFD in :attr:`CircuitBreaker.name`, the metrics, the log lines and the alert alike.

**Events.** :attr:`CircuitBreaker.events` publishes :class:`StateTransition` and
:class:`CallRejected`; :attr:`CircuitBreaker.call_events` publishes one :class:`CallOutcome` per
call that ran, built only while someone subscribes (the success path stays cheap). The breaker
subscribes its metrics, a JSON log line per transition (WARNING when opening, INFO otherwise)
and an alert through ``alert_manager`` when it opens (severity ``high``, component and label
``breaker`` = the name). A subscriber that raises is logged and counted, never breaks the call.

**Metrics** (on the breaker's registry; label children bound once per breaker):

* ``vigil_circuit_breaker_state{breaker,state}`` gauge: 1 for the current state, 0 for the other
  two; all three series exist from the moment the breaker is named.
* ``vigil_circuit_breaker_transitions_total{breaker,from_state,to_state}`` counter.
* ``vigil_circuit_breaker_calls_total{breaker,outcome}`` counter, outcomes as above.

Two breakers with the same name on one registry share these series (the recovery manager's
``get_circuit_breaker(name)`` keeps one breaker per name).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final, Literal, ParamSpec, Protocol, TypeAlias, TypeVar, cast

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import ConfigError, get_config
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.events import EventPublisher
from vigil.forks import at_fork
from vigil.monitoring import alerts as _alerts
from vigil.monitoring import instruments
from vigil.monitoring import metrics as _metrics
from vigil.monitoring.logs import shared_logger
from vigil.text import safe_text

__all__ = [
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerStateMachine",
    "CallOutcome",
    "CallRejected",
    "CircuitBreaker",
    "CircuitState",
    "ExpectedException",
    "Outcome",
    "StateTransition",
    "all_breakers",
]

P = ParamSpec("P")
R = TypeVar("R")

STATE_METRIC: Final = "vigil_circuit_breaker_state"
TRANSITIONS_METRIC: Final = "vigil_circuit_breaker_transitions_total"
CALLS_METRIC: Final = "vigil_circuit_breaker_calls_total"

Outcome: TypeAlias = Literal["success", "slow", "failure", "ignored", "rejected"]
SUCCESS: Final = "success"
SLOW: Final = "slow"
FAILURE: Final = "failure"
IGNORED: Final = "ignored"
REJECTED: Final = "rejected"
OUTCOMES: Final[tuple[Outcome, ...]] = (SUCCESS, SLOW, FAILURE, IGNORED, REJECTED)

ExpectedException: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


class CircuitState(StrEnum):
    """A breaker's state. A ``str``: ``cb.state == "OPEN"``; lookup ignores case."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"

    @classmethod
    def _missing_(cls, value: object) -> CircuitState | None:
        if isinstance(value, str):
            wanted = value.strip().upper().replace("-", "_")
            for member in cls:
                if member.value == wanted:
                    return member
        return None

    @classmethod
    def parse(cls, value: object) -> CircuitState:
        """The state named by ``value``, or a ``ValueError`` naming the allowed ones."""
        try:
            return cls(cast(str, value))
        except ValueError:
            raise ValueError(f"invalid circuit state {value!r}; expected one of: "
                             f"{', '.join(member.value for member in cls)}") from None


_CLOSED: Final = CircuitState.CLOSED
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateTransition:
    """The breaker ``breaker`` went ``from_state`` -> ``to_state`` at ``at`` (its clock's
    monotonic seconds) because of ``reason`` (human-readable: ``"5 failures in a row"``)."""

    breaker: str
    from_state: CircuitState
    to_state: CircuitState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class CallRejected:
    """A call was rejected without running: the breaker was ``state``; ``retry_after`` is the
    seconds until it lets a probe through (0 in ``HALF_OPEN``, where all slots were taken)."""

    breaker: str
    state: CircuitState
    retry_after: float


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A call that ran ended as ``outcome`` (success, slow, failure, ignored) after
    ``duration`` seconds. Published on ``call_events`` only while it has subscribers."""

    breaker: str
    outcome: Outcome
    duration: float


BreakerEvent: TypeAlias = StateTransition | CallRejected | CallOutcome


# --- the policy ---------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _check_int(key: str, value: object, minimum: int) -> None:
    if not _is_int(value) or cast(int, value) < minimum:
        raise ConfigError(key, value, f"must be an integer >= {minimum}")


def _check_positive(key: str, value: object) -> None:
    if not _is_number(value) or cast(float, value) <= 0:
        raise ConfigError(key, value, "must be a finite number of seconds > 0")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """The numbers a :class:`BreakerStateMachine` decides by; validated on construction.

    Exactly one opening rule is active: failures in a row (``failure_threshold``) or, when
    ``failure_rate_threshold`` is given, the failure rate (then ``failure_threshold`` must be
    ``None``). See the module documentation for each field's meaning.
    """

    failure_threshold: int | None = 5
    recovery_timeout: float = 60.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    failure_rate_threshold: float | None = None
    minimum_calls: int = 10
    sliding_window_size: int = 20
    slow_call_duration: float | None = None
    open_duration_multiplier: float = 1.0
    max_recovery_timeout: float | None = None

    def __post_init__(self) -> None:
        rate = self.failure_rate_threshold
        if rate is None:
            _check_int("failure_threshold", self.failure_threshold, 1)
        else:
            if not _is_number(rate) or not 0 < rate <= 1:
                raise ConfigError("failure_rate_threshold", rate,
                                  "must be a ratio in (0, 1], e.g. 0.5 for 50%")
            if self.failure_threshold is not None:
                raise ConfigError(
                    "failure_threshold", self.failure_threshold,
                    "must be left out when failure_rate_threshold is given (the failure-rate "
                    "mode replaces the failures-in-a-row rule)")
        _check_positive("recovery_timeout", self.recovery_timeout)
        _check_int("half_open_max_calls", self.half_open_max_calls, 1)
        _check_int("success_threshold", self.success_threshold, 1)
        _check_int("sliding_window_size", self.sliding_window_size, 1)
        _check_int("minimum_calls", self.minimum_calls, 1)
        if self.minimum_calls > self.sliding_window_size:
            raise ConfigError("minimum_calls", self.minimum_calls,
                              f"must be <= sliding_window_size ({self.sliding_window_size}), "
                              "or the failure rate could never be judged")
        if self.slow_call_duration is not None:
            _check_positive("slow_call_duration", self.slow_call_duration)
        multiplier = self.open_duration_multiplier
        if not _is_number(multiplier) or multiplier < 1:
            raise ConfigError("open_duration_multiplier", multiplier,
                              "must be a finite number >= 1 (1 keeps the open duration fixed)")
        cap = self.max_recovery_timeout
        if cap is not None:
            _check_positive("max_recovery_timeout", cap)
            if cap < self.recovery_timeout:
                raise ConfigError("max_recovery_timeout", cap,
                                  f"must be >= recovery_timeout ({self.recovery_timeout})")


# --- the state machine (no I/O) -----------------------------------------------------------


def _count_of(counter: itertools.count[int]) -> int:
    """The next value of an ``itertools.count`` (i.e. how many were taken), without taking one.

    ``repr`` is the only public read (``count(7)``); the pickle hooks are deprecated.
    """
    return int(repr(counter)[6:-1])


def _discard(event: BreakerEvent) -> None:
    """The default publisher of a state machine used on its own."""


class BreakerStateMachine:
    """The breaker's decisions, without I/O, clock or user code: the caller passes ``now``.

    Protocol for one call: ``permit = sm.try_acquire(now)``; if it is a :class:`CallRejected`
    do not run the call; otherwise run it and report exactly one of
    ``on_success(permit, now, duration)``, ``on_failure(permit, now, duration)`` or
    ``on_ignored(permit)``. Thread-safe; the lock is held only inside these methods.

    ``publish`` receives every :class:`StateTransition` (in the order they happened, never
    while the lock is held, never re-entrantly on one thread) and every :class:`CallRejected`.
    It must not raise (an :class:`EventPublisher`'s ``publish`` never does).
    """

    __slots__ = ("_closed_permit", "_consecutive", "_epoch", "_lock", "_max_probes",
                 "_min_calls", "_n_failure", "_n_ignored", "_n_rejected", "_n_slow",
                 "_open_until", "_pending", "_probe_successes", "_probes", "_publish",
                 "_publish_lock", "_publishing", "_rate", "_slow_after", "_state", "_successes",
                 "_threshold", "_timeout", "_trips", "_window", "_window_failures", "name",
                 "policy")

    def __init__(self, name: str, policy: BreakerPolicy,
                 publish: Callable[[BreakerEvent], object] = _discard) -> None:
        self.name = name
        self.policy = policy
        self._publish = publish
        self._lock = threading.Lock()
        # Transitions wait here until the lock is released; _flush publishes them in order.
        self._pending: deque[StateTransition] = deque()
        self._publish_lock = threading.Lock()
        self._publishing: int | None = None  # thread id of the thread running _flush
        # Policy numbers copied to slots: the hot path reads them without a second lookup.
        self._threshold = policy.failure_threshold or 0
        self._rate = policy.failure_rate_threshold
        self._min_calls = policy.minimum_calls
        self._max_probes = policy.half_open_max_calls
        self._slow_after = policy.slow_call_duration if policy.slow_call_duration is not None \
            else math.inf
        self._window: deque[bool] | None = \
            deque(maxlen=policy.sliding_window_size) if self._rate is not None else None
        self._window_failures = 0
        self._state = _CLOSED
        # The epoch numbers state periods; a permit is the epoch it was issued in.
        self._epoch = 0
        # The epoch while CLOSED, else -1: one attribute read admits a call lock-free, and a
        # single read cannot pair a CLOSED state with a later epoch (which a HALF_OPEN
        # probe count would then miscount).
        self._closed_permit = 0
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        self._open_until = 0.0
        self._timeout = policy.recovery_timeout
        self._trips = 0
        self._successes = itertools.count()  # read by _count_of; see on_success
        self._n_slow = self._n_failure = self._n_ignored = self._n_rejected = 0

    # -- one call ------------------------------------------------------------------------

    def try_acquire(self, now: float) -> int | CallRejected:
        """A permit to run one call, or the rejection (also published) if it may not run."""
        permit = self._closed_permit
        if permit >= 0:
            return permit
        result: int | CallRejected
        with self._lock:
            state = self._state
            if state is _OPEN and now >= self._open_until:
                self._transition_locked(_HALF_OPEN, now, "recovery timeout elapsed")
                state = _HALF_OPEN
            if state is _CLOSED:
                result = self._epoch
            elif state is _HALF_OPEN and self._probes < self._max_probes:
                self._probes += 1
                result = self._epoch
            else:
                self._n_rejected += 1
                result = CallRejected(self.name, state,
                                      self._open_until - now if state is _OPEN else 0.0)
        if self._pending:
            self._flush()
        if isinstance(result, CallRejected):
            self._publish(result)
        return result

    def on_success(self, permit: int, now: float, duration: float) -> Outcome:
        """The call returned after ``duration`` seconds; answers ``success`` or ``slow``."""
        slow = duration > self._slow_after
        if not slow:
            # next() on itertools.count is one C call, atomic under the GIL: exact without the
            # lock. (A free-threaded build would need the lock here.)
            next(self._successes)
            # The hot path takes no lock when a success has nothing to record: in count mode
            # with no failures in a row, recording it would set the count to 0, which it is.
            # Reading the two fields separately is safe: if the permit is still this CLOSED
            # period's and the count reads 0, recording now changes nothing; if the period
            # has ended, the permit is stale and recording would be skipped anyway. A probe's
            # permit never equals _closed_permit, so probes always take the lock.
            if permit == self._closed_permit and not self._consecutive and \
                    self._window is None:
                return SUCCESS
        with self._lock:
            if slow:
                self._n_slow += 1
            if permit == self._epoch:
                state = self._state
                if state is _CLOSED:
                    self._record_locked(slow, now)
                elif state is _HALF_OPEN:
                    self._probe_done_locked(not slow, now)
        if self._pending:
            self._flush()
        return SLOW if slow else SUCCESS

    def on_failure(self, permit: int, now: float, duration: float) -> Outcome:
        """The call raised an expected exception after ``duration`` seconds."""
        with self._lock:
            self._n_failure += 1
            if permit == self._epoch:
                state = self._state
                if state is _CLOSED:
                    self._record_locked(True, now)
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
        """Failures (including slow calls) in a row, counted since the last success or close."""
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
        return {SUCCESS: _count_of(self._successes), SLOW: self._n_slow,
                FAILURE: self._n_failure, IGNORED: self._n_ignored, REJECTED: self._n_rejected}

    def snapshot(self, now: float) -> dict[str, Any]:
        """State and counts as plain JSON-ready values."""
        state = self.current_state(now)
        with self._lock:
            window = self._window
            rate = (self._window_failures / len(window)) if window else None
            return {
                "name": self.name,
                "state": state.value,
                "failure_count": self._consecutive,
                "calls": self._counts_locked(),
                "seconds_until_probe": max(0.0, self._open_until - now)
                if self._state is _OPEN else 0.0,
                "recovery_timeout": self._timeout,
                "half_open_calls_in_flight": self._probes if self._state is _HALF_OPEN else 0,
                "failure_rate": rate,
                "window_calls": len(window) if window is not None else None,
            }

    # -- changing it from outside ----------------------------------------------------------

    def transition(self, to: CircuitState | str, now: float, reason: str, *,
                   open_for: float | None = None) -> bool:
        """Move to ``to`` (``open_for`` seconds when opening; default: the current recovery
        timeout). Returns whether the state changed; a same-state move changes nothing, except
        that an OPEN breaker moved to OPEN with ``open_for`` restarts its timer."""
        target = CircuitState.parse(to)
        if open_for is not None:
            _check_positive("open_for", open_for)
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
        """Set the failures-in-a-row count (0 also empties the failure-rate window). In CLOSED
        count mode, a count at or above ``failure_threshold`` opens the breaker."""
        if not _is_int(count) or count < 0:
            raise ValueError(f"failure_count must be an integer >= 0, got {count!r}")
        with self._lock:
            self._consecutive = count
            if count == 0 and self._window is not None:
                self._window.clear()
                self._window_failures = 0
            if self._state is _CLOSED and self._window is None and count >= self._threshold:
                self._trip_locked(now, f"failure_count set to {count}")
        if self._pending:
            self._flush()

    # -- inside the lock -------------------------------------------------------------------

    def _record_locked(self, failed: bool, now: float) -> None:
        """Record a CLOSED-state result (a slow success counts as failed) and maybe trip."""
        if failed:
            self._consecutive += 1
        else:
            self._consecutive = 0
        window = self._window
        if window is None:
            if failed and self._consecutive >= self._threshold:
                self._trip_locked(now, f"{self._consecutive} failures in a row")
            return
        if len(window) == window.maxlen:
            self._window_failures -= window[0]  # about to be pushed out by append
        window.append(failed)
        self._window_failures += failed
        calls = len(window)
        # Checked on every call, as Resilience4j does: the minimum may be reached by a success.
        if calls >= self._min_calls and self._window_failures / calls >= cast(float, self._rate):
            self._trip_locked(now, f"failure rate {self._window_failures / calls:.0%} over the "
                                   f"last {calls} calls")

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
            self._window_failures = 0

    def _transition_locked(self, to: CircuitState, now: float, reason: str,
                           open_for: float | None = None) -> bool:
        """THE place where the state changes; queues the event for :meth:`_flush`."""
        current = self._state
        if to is current:
            if to is _OPEN and open_for is not None:
                self._open_until = now + open_for
            return False
        self._closed_permit = -1  # first: stop lock-free admissions before anything else
        self._state = to
        self._epoch += 1
        if to is _OPEN:
            self._open_until = now + (open_for if open_for is not None else self._timeout)
        elif to is _HALF_OPEN:
            self._probes = 0
            self._probe_successes = 0
        else:
            self._clear_counts_locked()
            self._trips = 0
            self._timeout = self.policy.recovery_timeout
            self._closed_permit = self._epoch  # last: admissions resume in the new period
        self._pending.append(StateTransition(self.name, current, to, now, reason))
        return True

    def after_fork(self) -> CircuitState:
        """In a forked child: fresh locks, the parent's unpublished transitions dropped (the
        parent publishes them); returns the state, for the child to show."""
        self._lock, self._publish_lock = threading.Lock(), threading.Lock()
        self._publishing = None
        self._pending.clear()
        return self._state

    # -- publishing ------------------------------------------------------------------------

    def _flush(self) -> None:
        """Publish queued transitions in order, outside the state lock.

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


# --- subscribers the breaker installs -----------------------------------------------------


class _Logger(Protocol):
    def info(self, message: str, metadata: Mapping[str, Any] | None = ...) -> None: ...

    def warning(self, message: str, metadata: Mapping[str, Any] | None = ...) -> None: ...

    def error(self, message: str, metadata: Mapping[str, Any] | None = ...) -> None: ...


class _AlertSender(Protocol):
    def send_alert(self, severity: Any, component: str, message: str,
                   metadata: Mapping[str, Any] | None = ..., *,
                   labels: Mapping[str, str] | None = ...) -> object: ...


class _Reporter:
    """Metrics, the transition log line and the open alert of one named breaker.

    Holds no reference to the breaker, so a breaker nobody uses can be collected (and leave
    :func:`all_breakers`) without waiting for the cycle collector.
    """

    __slots__ = ("_alerts", "_logger", "_name", "_state", "_transitions", "calls")

    def __init__(self, name: str, registry: CollectorRegistry, logger: _Logger,
                 alert_sender: _AlertSender) -> None:
        self._name = name
        self._logger = logger
        self._alerts = alert_sender
        # Per worker under multiprocess mode ("liveall", vigil.monitoring.multiprocess).
        state = instruments.gauge(
            registry, STATE_METRIC,
            "Circuit breaker state: 1 for the current state, 0 for the other two.",
            ["breaker", "state"])
        self._state = {member: state.labels(name, member.value) for member in CircuitState}
        self.show(_CLOSED)
        self._transitions = instruments.counter(
            registry, TRANSITIONS_METRIC, "Circuit breaker state changes.",
            ["breaker", "from_state", "to_state"])
        calls = instruments.counter(
            registry, CALLS_METRIC,
            "Calls through a circuit breaker, by outcome: success, slow (succeeded but slower "
            "than slow_call_duration), failure, ignored (an exception that is not a failure) "
            "or rejected (not run).", ["breaker", "outcome"])
        self.calls = {outcome: calls.labels(name, outcome) for outcome in OUTCOMES}

    def show(self, current: CircuitState) -> None:
        """Set the state gauge: 1 for ``current``, 0 for the other two."""
        for member, child in self._state.items():
            child.set(1 if member is current else 0)

    def count(self, event: BreakerEvent) -> None:
        """Metrics subscriber: state gauge and transitions; rejected calls."""
        if isinstance(event, StateTransition):
            self._state[event.from_state].set(0)
            self._state[event.to_state].set(1)
            self._transitions.labels(self._name, event.from_state.value,
                                     event.to_state.value).inc()
        elif isinstance(event, CallRejected):
            self.calls[REJECTED].inc()

    def log(self, event: BreakerEvent) -> None:
        """Log subscriber: one line per transition, WARNING when opening."""
        if not isinstance(event, StateTransition):
            return
        write = self._logger.warning if event.to_state is _OPEN else self._logger.info
        write(f"circuit breaker '{event.breaker}' {event.from_state.value} -> "
              f"{event.to_state.value}: {event.reason}",
              metadata={"breaker": event.breaker, "from_state": event.from_state.value,
                        "to_state": event.to_state.value, "reason": event.reason})

    def alert(self, event: BreakerEvent) -> None:
        """Alert subscriber: a ``high`` alert each time the breaker opens."""
        if isinstance(event, StateTransition) and event.to_state is _OPEN:
            # The message is fixed per breaker so that a flapping breaker's repeats fold into
            # one alert within the alert manager's de-duplication window.
            self._alerts.send_alert(
                "high", self._name, f"circuit breaker '{self._name}' is OPEN",
                metadata={"breaker": self._name, "from_state": event.from_state.value,
                          "reason": event.reason},
                labels={"breaker": self._name})




# --- the live-breaker registry ------------------------------------------------------------

_registry_lock = threading.Lock()
_live: weakref.WeakValueDictionary[int, CircuitBreaker] = weakref.WeakValueDictionary()
_live_keys = itertools.count()
_unnamed_serials = itertools.count(1)


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload) shows each breaker's state in its own files.

    prometheus_client gives a child fresh per-pid files, where the state gauge would read 0
    for all three states until the breaker's next transition (and an alert on it could never
    fire); the child publishes its current state at once instead.
    """
    global _registry_lock
    _registry_lock = threading.Lock()
    for breaker in list(_live.values()):
        breaker._bind_lock = threading.Lock()
        core = breaker._core
        if core is not None:
            breaker._reporter.show(core.after_fork())


at_fork(after_in_child=_after_fork_in_child)


def all_breakers() -> list[CircuitBreaker]:
    """Every named breaker still alive, oldest first (for the exporter's ``/api/breakers``).

    Held weakly: a breaker nobody references drops out. Names need not be unique here.
    """
    with _registry_lock:
        return list(_live.values())


# --- the driver ---------------------------------------------------------------------------


def _expected_rule(expected: object) -> tuple[tuple[type[Exception], ...] | None,
                                               Callable[[BaseException], bool] | None]:
    """``expected_exception`` as (classes, None) or (None, predicate); ConfigError otherwise."""
    allowed = ("must be an Exception subclass, a non-empty tuple of them, or a predicate "
               "taking the exception and returning a bool")
    if isinstance(expected, type):
        if not issubclass(expected, Exception):
            raise ConfigError("expected_exception", expected,
                              allowed + " (KeyboardInterrupt, CancelledError and other "
                              "non-Exception errors are always ignored)")
        return (expected,), None
    if isinstance(expected, tuple):
        if not expected or not all(isinstance(t, type) and issubclass(t, Exception)
                                   for t in expected):
            raise ConfigError("expected_exception", expected, allowed)
        return expected, None
    if callable(expected):
        return None, cast(Callable[[BaseException], bool], expected)
    raise ConfigError("expected_exception", expected, allowed)


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(_describe(v) for v in value)
    return str(getattr(value, "__qualname__", None) or repr(value))


class CircuitBreaker:
    """The seed's circuit breaker; see the module documentation for the whole contract.

    ``failure_threshold`` failures in a row open it for ``recovery_timeout`` seconds; then up to
    ``half_open_max_calls`` probes at once test the service, and ``success_threshold`` probe
    successes close it. ``None`` arguments take vigil's configured defaults.
    """

    __slots__ = ("__weakref__", "_alert_sender", "_bind_lock", "_call_events", "_clock",
                 "_core", "_counters", "_events", "_expected_predicate", "_expected_types",
                 "_fallback", "_logger", "_name", "_now", "_registry", "_reporter", "policy")

    _call_events: EventPublisher[CallOutcome]
    _counters: dict[Outcome, Any]
    _events: EventPublisher[BreakerEvent]
    _reporter: _Reporter

    def __init__(self, failure_threshold: int | None = None,
                 recovery_timeout: float | None = None,
                 expected_exception: ExpectedException = Exception,
                 name: str | None = None, *,
                 fallback: Callable[..., Any] | None = None,
                 half_open_max_calls: int | None = None,
                 success_threshold: int = 1,
                 failure_rate_threshold: float | None = None,
                 minimum_calls: int = 10,
                 sliding_window_size: int = 20,
                 slow_call_duration: float | None = None,
                 open_duration_multiplier: float = 1.0,
                 max_recovery_timeout: float | None = None,
                 clock: Clock | None = None,
                 registry: CollectorRegistry | None = None,
                 alert_manager: _AlertSender | None = None,
                 logger: _Logger | None = None) -> None:
        defaults = get_config().error_handling.circuit_breaker
        rate_mode = failure_rate_threshold is not None
        self.policy = BreakerPolicy(
            failure_threshold=failure_threshold if failure_threshold is not None or rate_mode
            else defaults.default_failure_threshold,
            recovery_timeout=recovery_timeout if recovery_timeout is not None
            else defaults.default_recovery_timeout,
            half_open_max_calls=half_open_max_calls if half_open_max_calls is not None
            else defaults.default_half_open_max_calls,
            success_threshold=success_threshold,
            failure_rate_threshold=failure_rate_threshold,
            minimum_calls=minimum_calls,
            sliding_window_size=sliding_window_size,
            slow_call_duration=slow_call_duration,
            open_duration_multiplier=open_duration_multiplier,
            max_recovery_timeout=max_recovery_timeout)
        self._expected_types, self._expected_predicate = _expected_rule(expected_exception)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError("name", name, "must be a non-empty string (or None)")
        if fallback is not None and not callable(fallback):
            raise ConfigError("fallback", fallback, "must be callable (or None)")
        self._fallback = fallback
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        # The system clock's monotonic is time.monotonic; calling it directly saves a frame
        # on each of the two reads per call.
        self._now: Callable[[], float] = time.monotonic if isinstance(self._clock, SystemClock) \
            else self._clock.monotonic
        self._registry = registry if registry is not None else \
            _metrics.performance_monitor.registry
        self._alert_sender: _AlertSender = alert_manager if alert_manager is not None \
            else _alerts.alert_manager
        self._logger: _Logger = logger if logger is not None \
            else shared_logger("vigil.circuit_breaker")
        self._bind_lock = threading.Lock()
        self._core: BreakerStateMachine | None = None
        self._name = name
        if name is not None:
            self._bind()

    def _bind(self, default_name: str | None = None) -> BreakerStateMachine:
        """Name the breaker (if unnamed) and build its state machine, metrics and events."""
        with self._bind_lock:
            core = self._core
            if core is not None:
                return core
            name = safe_text(self._name or default_name or f"breaker-{next(_unnamed_serials)}")
            self._name = name
            reporter = _Reporter(name, self._registry, self._logger, self._alert_sender)
            self._reporter = reporter
            self._counters = reporter.calls
            self._events = EventPublisher(name, self._registry)
            self._call_events = EventPublisher(name, self._registry)
            self._events.subscribe(reporter.count)
            self._events.subscribe(reporter.log)
            self._events.subscribe(reporter.alert)
            core = BreakerStateMachine(name, self.policy, self._events.publish)
            self._core = core  # last: the fast path's "is it bound?" check reads this
        with _registry_lock:
            twins = [other for other in _live.values()
                     if other._name == name and other._registry is self._registry]
            _live[next(_live_keys)] = self
        if twins:
            # Allowed (a breaker per worker object, re-created in tests), but never silently:
            # their states and counts land in one set of series.
            self._logger.warning(
                "another live circuit breaker has this name on the same registry; both "
                "report into the same vigil_circuit_breaker_* series (give each its own name, "
                "or share one breaker: error_recovery_manager.get_circuit_breaker(name))",
                {"breaker": name, "live_with_this_name": len(twins) + 1})
        return core

    # -- calling ---------------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` through the breaker (the seed's ``cb.call``).

        Rejected: raises :class:`CircuitOpenError` without calling ``fn``, or returns
        ``fallback(*args, **kwargs)``. Otherwise returns or raises what ``fn`` does.
        """
        core = self._core or self._bind()
        start = self._now()
        permit = core.try_acquire(start)
        if isinstance(permit, CallRejected):
            return cast(R, self._on_rejected(permit)(*args, **kwargs))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_error(core, permit, start, exc)
            raise
        # _settle_success inlined: this is the benchmarked hot path.
        end = self._now()
        outcome = core.on_success(permit, end, end - start)
        self._counters[outcome].inc()
        if self._call_events.has_subscribers:
            self._call_events.publish(CallOutcome(core.name, outcome, end - start))
        return result

    async def call_async(self, fn: Callable[P, Awaitable[R]], /, *args: P.args,
                         **kwargs: P.kwargs) -> R:
        """``await fn(*args, **kwargs)`` through the breaker (the seed's ``cb.call_async``).

        A failure of the awaited coroutine counts like any other (pybreaker misses these).
        ``fn`` may also be a plain function: a non-awaitable result is returned as is. A
        fallback's awaitable result is awaited.
        """
        core = self._core or self._bind()
        start = self._now()
        permit = core.try_acquire(start)
        if isinstance(permit, CallRejected):
            substitute = self._on_rejected(permit)(*args, **kwargs)
            if inspect.isawaitable(substitute):
                substitute = await substitute
            return cast(R, substitute)
        try:
            result: Any = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            self._settle_error(core, permit, start, exc)
            raise
        self._settle_success(core, permit, start)
        return cast(R, result)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or ``async def``) so every call goes through this breaker.

        The wrapper keeps ``fn``'s name, docstring and signature (``functools.wraps``) and has
        ``circuit_breaker`` set to this breaker. An unnamed breaker takes ``fn.__qualname__``
        as its name if it has not been used yet. Generator functions are refused: the breaker
        would see only the creation of the generator, not the work done while iterating it.
        """
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"CircuitBreaker cannot protect the generator function "
                            f"{_describe(fn)}: decorate the function doing the I/O instead")
        if self._core is None:
            self._bind(getattr(fn, "__qualname__", None))
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[P, Awaitable[Any]], fn)
            call_async = self.call_async

            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await call_async(async_fn, *args, **kwargs)

            wrapper = async_wrapper
        else:
            call = self.call  # bound once: one attribute lookup less per call

            def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                return call(fn, *args, **kwargs)

            wrapper = sync_wrapper
        functools.update_wrapper(wrapper, fn)
        wrapper.__dict__["circuit_breaker"] = self
        return cast(Callable[P, R], wrapper)

    def _on_rejected(self, rejection: CallRejected) -> Callable[..., Any]:
        """The fallback to call instead, or raise CircuitOpenError when there is none."""
        fallback = self._fallback
        if fallback is None:
            raise CircuitOpenError(rejection.breaker, rejection.state.value,
                                   rejection.retry_after)
        return fallback

    def _settle_success(self, core: BreakerStateMachine, permit: int, start: float) -> None:
        end = self._now()
        outcome = core.on_success(permit, end, end - start)
        self._counters[outcome].inc()
        if self._call_events.has_subscribers:
            self._call_events.publish(CallOutcome(core.name, outcome, end - start))

    def _settle_error(self, core: BreakerStateMachine, permit: int, start: float,
                      exc: BaseException) -> None:
        end = self._now()
        if self._is_failure(exc):
            outcome = core.on_failure(permit, end, end - start)
        else:
            outcome = core.on_ignored(permit)
        self._counters[outcome].inc()
        if self._call_events.has_subscribers:
            self._call_events.publish(CallOutcome(core.name, outcome, end - start))

    def _is_failure(self, exc: BaseException) -> bool:
        if not isinstance(exc, Exception):
            return False  # interrupts and cancellations say nothing about the service
        types = self._expected_types
        if types is not None:
            return isinstance(exc, types)
        try:
            return bool(cast(Callable[[BaseException], bool], self._expected_predicate)(exc))
        except Exception:
            # A broken predicate must not hide the call's own exception; counting the call as
            # a failure errs on the side of protecting the service.
            self._logger.error(
                "circuit breaker expected_exception predicate raised; counting a failure",
                metadata={"breaker": self._name, "exception": type(exc).__qualname__})
            return True

    # -- state -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name (the ``breaker`` label); names an unnamed breaker on first read."""
        return (self._core or self._bind()).name

    @property
    def state(self) -> CircuitState:
        """The current state; an OPEN breaker whose timeout has passed reads HALF_OPEN.

        Assigning (``cb.state = "CLOSED"``, the seed's manual reset) moves the breaker through
        its state machine: the transition is published, logged and counted like any other.
        """
        return (self._core or self._bind()).current_state(self._now())

    @state.setter
    def state(self, value: CircuitState | str) -> None:
        target = CircuitState.parse(value)
        (self._core or self._bind()).transition(target, self._now(), "set manually")

    @property
    def failure_count(self) -> int:
        """Failures in a row; assigning 0 (the seed's manual reset) clears the counts."""
        return (self._core or self._bind()).failure_count

    @failure_count.setter
    def failure_count(self, value: int) -> None:
        (self._core or self._bind()).set_failure_count(value, self._now())

    # The constructor's settings, read back (they live in the frozen ``policy``).

    @property
    def failure_threshold(self) -> int | None:
        """Failures in a row that open the breaker (``None`` in failure-rate mode)."""
        return self.policy.failure_threshold

    @property
    def recovery_timeout(self) -> float:
        """The configured seconds OPEN before the first probe (the base of any growth by
        ``open_duration_multiplier``; :attr:`seconds_until_probe` is the current wait)."""
        return self.policy.recovery_timeout

    @property
    def half_open_max_calls(self) -> int:
        """Probes let through at once while HALF_OPEN."""
        return self.policy.half_open_max_calls

    @property
    def success_threshold(self) -> int:
        """Probe successes that close the breaker."""
        return self.policy.success_threshold

    @property
    def seconds_until_probe(self) -> float:
        """Seconds until an OPEN breaker lets a probe through; 0 in any other state."""
        return (self._core or self._bind()).seconds_until_probe(self._now())

    def reset(self) -> None:
        """Close the breaker and clear its counts and open-duration growth."""
        (self._core or self._bind()).reset(self._now())

    def force_open(self, duration: float | None = None) -> None:
        """Open the breaker now for ``duration`` seconds (default: its current recovery
        timeout); then it probes as usual. Already OPEN: the timer restarts."""
        if duration is not None:
            _check_positive("duration", duration)
        core = self._core or self._bind()
        core.transition(_OPEN, self._now(), "forced open",
                        open_for=duration if duration is not None else core.recovery_timeout)

    # -- events and introspection ----------------------------------------------------------

    @property
    def events(self) -> EventPublisher[BreakerEvent]:
        """Publishes :class:`StateTransition` and :class:`CallRejected` events."""
        if self._core is None:
            self._bind()
        return self._events

    @property
    def call_events(self) -> EventPublisher[CallOutcome]:
        """Publishes a :class:`CallOutcome` per call that ran, while subscribed to."""
        if self._core is None:
            self._bind()
        return self._call_events

    @property
    def fallback(self) -> Callable[..., Any] | None:
        """What rejected calls return instead of raising CircuitOpenError."""
        return self._fallback

    def snapshot(self) -> dict[str, Any]:
        """State, counts and settings as JSON-ready values (the exporter's ``/api/breakers``)."""
        core = self._core or self._bind()
        data = core.snapshot(self._now())
        config: dict[str, Any] = asdict(self.policy)
        config["expected_exception"] = _describe(self._expected_types or
                                                 self._expected_predicate)
        config["fallback"] = _describe(self._fallback) if self._fallback is not None else None
        data["config"] = config
        return data

    def __repr__(self) -> str:
        core = self._core
        if core is None:
            return "CircuitBreaker(unnamed, not used yet)"
        return f"CircuitBreaker(name={core.name!r}, state={core.current_state(self._now())})"
