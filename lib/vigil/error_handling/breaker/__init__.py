"""Circuit breakers: the seed's ``CircuitBreaker``, thread-safe, shared by sync and async code.

::

    cb = CircuitBreaker(failure_threshold=5, recovery_timeout=60.0, expected_exception=Exception)
    result = cb.call(risky_function, arg1, arg2)            # sync
    result = await cb.call_async(external_service_call, p)  # async

    @CircuitBreaker(failure_threshold=3)                    # decorator: sync, async, generators
    async def fetch(url: str) -> bytes: ...

    with cb.protect():                                      # a block (async with, too)
        rows = db.query(sql)

**Shape** (tenacity's and Resilience4j's), one module per job:

* :mod:`.states` the six :class:`CircuitState` and the call outcomes;
  :mod:`.events` the event records;
* :mod:`.policy` :class:`BreakerPolicy`, the frozen, validated numbers (and
  ``BreakerPolicy.from_config`` for the configured defaults); :mod:`.window` the count and
  time sliding windows;
* :mod:`.machine` :class:`BreakerStateMachine`, the whole decision: states, counting,
  windows, half-open permits and the open-duration growth, with no I/O, no clock and no calling
  of user code. It answers ``try_acquire(now)`` with a *permit* (an ``int``) or a
  :class:`CallRejected`, and is told how the call went with ``on_success``/``on_failure``/
  ``on_ignored``. Every state change goes through one method, which queues a
  :class:`StateTransition` published, in order, once the lock is released;
* :mod:`.classify` what counts as a failure (``expected_exception``, ``failure_on_result``);
* :mod:`.protection` one protected run as a context manager (``cb.protect()``) and the
  generator guards; :mod:`.driver` :class:`CircuitBreaker`, the thin driver: ``call``,
  ``call_async``, the decorator and ``protect()`` differ only in how they run the protected
  code and all report through the same settle methods;
* :mod:`.registry` :func:`all_breakers` and the re-arming after a fork. The metrics, log
  lines and alert are not here: :mod:`vigil.reporting.breakers` subscribes them to each breaker
  announced on ``CircuitBreaker.named`` (a :class:`vigil.events.Hook`), and so can you.

The breaker's lock is never held while the protected function runs, so calls through one
breaker run concurrently.

**States.** ``CLOSED``: calls run. ``failure_threshold`` failures in a row open it (a success
resets the count). ``OPEN``: calls are rejected without running the function. Once the recovery
timeout has passed it is ``HALF_OPEN`` (visible on reading :attr:`CircuitBreaker.state`, no call
needed), which admits at most ``half_open_max_calls`` probe calls at once and rejects the rest;
``success_threshold`` probe successes close it, one probe failure (or slow probe) opens it again
with a fresh timer. Three more states (Resilience4j's) are entered and left only by
``cb.transition_to(state)`` (or ``cb.state = ...``): ``DISABLED`` lets every call through and
records nothing in the state machine (the calls are still counted in the metrics and
``snapshot()["calls"]``); ``METRICS_ONLY`` lets every call through and records it (counts,
windows, the rate-exceeded events and their metrics and log lines) but never changes state by
itself; ``FORCED_OPEN`` rejects every call (``retry_after`` ``math.inf``: no probe is scheduled)
until moved out of, with no recovery timeout. ``reset()`` returns to ``CLOSED`` from any state;
``force_open(duration)`` opens (``OPEN``) for a while and then probes, as before. Entering
``CLOSED``, ``DISABLED`` or ``METRICS_ONLY`` starts counting afresh. :class:`CircuitState` is a
``str`` enum: ``cb.state == "OPEN"`` works.

**Outcomes** (the ``outcome`` label of ``vigil_circuit_breaker_calls_total``):

* ``success``: returned normally (within ``slow_call_duration``, when set).
* ``slow``: returned normally but took longer than ``slow_call_duration`` seconds. Its result is
  returned to the caller. Without ``slow_call_rate_threshold`` it counts as a failure for
  opening (in a row, and in the failure-rate window); with it, as in Resilience4j, it counts
  toward the slow-call rate only and is not a failure. In ``HALF_OPEN`` a slow probe is a
  failed probe either way.
* ``failure``: raised an exception matching ``expected_exception`` (a class, a tuple of classes,
  or a predicate ``Callable[[BaseException], bool]``; a predicate that raises is logged and the
  call counts as a failure), or returned a value for which ``failure_on_result(value)`` is true
  (the value is still returned; a predicate that raises is logged and counts as a failure). The
  exception propagates unchanged.
* ``ignored``: raised an exception that does not match, or a ``BaseException`` that is not an
  ``Exception`` (``KeyboardInterrupt``, ``asyncio.CancelledError``). It propagates unchanged, is
  neither success nor failure, and frees the half-open probe slot it held. ``GeneratorExit`` (a
  generator closed early) is a success instead: see :mod:`.protection`.
* ``rejected``: not run, because the breaker was ``OPEN`` or ``FORCED_OPEN`` or had no free
  probe slot.

**Rejections** raise :class:`~vigil.error_handling.errors.CircuitOpenError` (name, state, seconds
until the next probe), or, for ``call``/``call_async``/decorated functions when ``fallback`` is
given, return ``fallback(*args, **kwargs)`` (same arguments as the protected call;
``call_async`` awaits it if it returns an awaitable). The fallback is for rejections only:
failures of the protected call propagate. ``protect()`` blocks and generators always raise.

**A call's result belongs to the state it was admitted in.** A permit names the state period it
was issued in; a call that finishes after the breaker has changed state (say it began in
``CLOSED`` and the breaker opened meanwhile) is counted in the metrics but does not move the
state machine.

**Beyond the seed** (all off by default; Resilience4j's meanings):

* Failure-rate mode, when ``failure_rate_threshold`` (0..1] is given: once at least
  ``minimum_calls`` calls are in the sliding window, a failure rate at or above the threshold
  opens the breaker. It *replaces* the failures-in-a-row rule, so ``failure_threshold`` must not
  be given with it (``failure_count`` still reports failures in a row).
* The sliding window: ``sliding_window_type="count"`` (default) keeps the last
  ``sliding_window_size`` calls; ``"time"`` (Resilience4j's TIME_BASED; ``"time_based"`` is
  accepted too) keeps the calls that ended in the last ``sliding_window_size`` seconds of the
  breaker's clock, as one bucket per second (at most ``sliding_window_size`` buckets, up to
  3,600). ``minimum_calls`` is the calls the window must hold before a rate is judged (for a
  count window it must not exceed the window's size). A time window needs a rate rule.
* ``slow_call_duration``: see ``slow`` above. ``slow_call_rate_threshold`` (0..1], which needs
  it: the breaker also opens when the share of slow calls in the window (slow successes and slow
  failures, as Resilience4j counts them) reaches the threshold, beside either failure rule.
* ``failure_on_result``: see ``failure`` above (``call``, ``call_async`` and decorated plain and
  ``async`` functions; blocks and generators have no result to judge).
* Growing open duration: each consecutive trip (a failed probe re-opening the breaker)
  multiplies the open duration by ``open_duration_multiplier``, capped at
  ``max_recovery_timeout``; closing resets it to ``recovery_timeout``.

**Defaults** (``None``) are read at construction: ``error_handling.circuit_breaker.default_*``
(:func:`vigil.configure`, through :meth:`BreakerPolicy.from_config`),
:data:`vigil.clock.SYSTEM_CLOCK`, prometheus_client's default registry
(``instruments.default_registry()``) and a shared ``StructuredLogger("vigil.circuit_breaker")``;
the default alert manager,
``vigil.monitoring.alerts.alert_manager``, is reached when an alert is sent. A later
:func:`vigil.configure` does not change existing breakers. Invalid values (zero or negative
thresholds and timeouts, a rate outside (0, 1], an unknown window type, ...) raise
:class:`~vigil.config.ConfigError` naming the argument; nothing is silently replaced.

**Names.** A breaker given ``name`` is named at construction. An unnamed breaker takes its name
on first use: the decorated function's ``__qualname__`` if that first use is decorating a
function (``@CircuitBreaker(...)``), otherwise ``breaker-N``. Its metric series, events and its
entry in :func:`all_breakers` appear at that moment. The name is the ``breaker`` label, so it
follows :mod:`vigil.text`'s rule: a lone surrogate in it (a name built from an ``os.fsdecode``-d
path) is U+FFFD in :attr:`CircuitBreaker.name`, the metrics, the log lines and the alert alike.

**Events.** :attr:`CircuitBreaker.events` publishes :class:`StateTransition`,
:class:`CallRejected`, :class:`FailureRateExceeded` and :class:`SlowCallRateExceeded` (the
rate, the threshold and the calls judged; published just before the transition they cause, or
in ``METRICS_ONLY`` once each time the rate reaches its threshold) and :class:`PredicateFailed`
(a predicate of ``expected_exception`` or ``failure_on_result`` raised);
:attr:`CircuitBreaker.call_events` publishes one :class:`CallOutcome` per call that ran, built
only while someone subscribes (the success path stays cheap). vigil.reporting subscribes the
metrics, a JSON log line per transition (WARNING when it starts rejecting: OPEN or FORCED_OPEN;
INFO otherwise) and per exceeded rate (WARNING), and an alert through the alert manager when it
opens (severity ``high``, component and label ``breaker`` = the name; not for FORCED_OPEN, an
operator's choice). A subscriber that raises is logged and counted, never breaks the call.

**Metrics**: see :mod:`vigil.reporting.breakers`. Two breakers with the same name on one
registry share their series (the recovery manager's ``get_circuit_breaker(name)`` keeps one
breaker per name); the second is warned about.
"""

from vigil.error_handling.breaker.classify import ExpectedException
from vigil.error_handling.breaker.driver import CircuitBreaker
from vigil.error_handling.breaker.events import (
    BreakerEvent,
    CallOutcome,
    CallRejected,
    FailureRateExceeded,
    NamedBreaker,
    PredicateFailed,
    SlowCallRateExceeded,
    StateTransition,
)
from vigil.error_handling.breaker.machine import BreakerStateMachine
from vigil.error_handling.breaker.policy import BreakerOptions, BreakerPolicy, SlidingWindowType
from vigil.error_handling.breaker.protection import Protection
from vigil.error_handling.breaker.registry import all_breakers
from vigil.error_handling.breaker.states import OUTCOMES, CircuitState, Outcome

__all__ = [
    "BreakerEvent",
    "BreakerOptions",
    "BreakerPolicy",
    "BreakerStateMachine",
    "CallOutcome",
    "CallRejected",
    "CircuitBreaker",
    "CircuitState",
    "ExpectedException",
    "FailureRateExceeded",
    "NamedBreaker",
    "OUTCOMES",
    "Outcome",
    "PredicateFailed",
    "Protection",
    "SlidingWindowType",
    "SlowCallRateExceeded",
    "StateTransition",
    "all_breakers",
]
