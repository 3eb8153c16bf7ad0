"""The thin driver: :class:`CircuitBreaker` runs calls through its state machine.

``call``, ``call_async``, the decorator and :meth:`CircuitBreaker.protect` differ only in how
they run the protected code; they all take a permit with ``try_acquire`` and report through
the same two settle methods (:meth:`CircuitBreaker._settle_result`,
:meth:`CircuitBreaker._settle_error`). The breaker's lock is never held while the protected
code runs, so calls through one breaker run concurrently.

``call()`` takes its permit itself instead of entering a :class:`Protection` block: the
``with`` costs a per-call object and two method calls, about 0.2 µs or 1.3x on the benchmarked
success path (``bench/breaker_options.py``; it would put ``call()`` above pybreaker's). This is
the one place that does so; ``tests/unit/error_handling/test_breaker_driver.py`` pins that every
way in (call, decorator, block, generator, sync and async) counts alike.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, ClassVar, ParamSpec, TypeVar, Unpack, cast

from prometheus_client import CollectorRegistry

from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import ConfigError
from vigil.error_handling.breaker import registry as _live
from vigil.error_handling.breaker.classify import ExpectedException, FailureRule, describe
from vigil.error_handling.breaker.events import (
    BreakerEvent,
    CallOutcome,
    CallRejected,
    NamedBreaker,
    PredicateFailed,
)
from vigil.error_handling.breaker.machine import BreakerStateMachine
from vigil.error_handling.breaker.policy import BreakerOptions, BreakerPolicy, check_positive
from vigil.error_handling.breaker.protection import (
    NO_RESULT,
    Protection,
    guard_async_generator,
    guard_generator,
)
from vigil.error_handling.breaker.states import OUTCOMES, CircuitState, Outcome
from vigil.error_handling.errors import CircuitOpenError
from vigil.events import EventPublisher, Hook, ReportTo
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.text import safe_text

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")


def _uncounted() -> None:
    """An outcome nobody counts (before a reporter sets ``NamedBreaker.count_calls``)."""


class CircuitBreaker:
    """The seed's circuit breaker; see the package documentation for the whole contract.

    ``failure_threshold`` failures in a row open it for ``recovery_timeout`` seconds; then up to
    ``half_open_max_calls`` probes at once test the service, and ``success_threshold`` probe
    successes close it. ``None`` arguments take vigil's configured defaults
    (:meth:`BreakerPolicy.from_config`); the options beyond the seed (``**settings``, declared
    once in :class:`~vigil.error_handling.breaker.policy.BreakerOptions`) are off by default;
    an unknown keyword raises ``TypeError`` naming it.
    """

    __slots__ = ("__weakref__", "_bind_lock", "_call_events", "_clock", "_core", "_counters",
                 "_events", "_fallback", "_forked", "_name", "_now", "_registry",
                 "_rule", "policy", "report_to")

    named: ClassVar[Hook[NamedBreaker]] = Hook("circuit_breaker")
    """Announces every breaker when it is named (:class:`NamedBreaker`); vigil.reporting
    attaches its metrics, log lines and alert here."""

    _call_events: EventPublisher[CallOutcome]
    _counters: dict[Outcome, Callable[[], object]]
    _events: EventPublisher[BreakerEvent]
    _forked: EventPublisher[CircuitState]

    def __init__(self, failure_threshold: int | None = None,
                 recovery_timeout: float | None = None,
                 expected_exception: ExpectedException = Exception,
                 name: str | None = None, *,
                 fallback: Callable[..., Any] | None = None,
                 failure_on_result: Callable[[Any], object] | None = None,
                 clock: Clock | None = None,
                 registry: CollectorRegistry | None = None,
                 alert_manager: Any = None,
                 logger: Logger | None = None,
                 **settings: Unpack[BreakerOptions]) -> None:
        self.policy = BreakerPolicy.from_config(
            failure_threshold=failure_threshold, recovery_timeout=recovery_timeout, **settings)
        self._rule = FailureRule(expected_exception, failure_on_result, self._predicate_failed)
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
        self._registry = registry if registry is not None else instruments.default_registry()
        # Carried for the reporting (vigil.reporting.breakers), never used here.
        self.report_to = ReportTo(registry, logger, alert_manager)
        self._bind_lock = threading.Lock()
        self._core: BreakerStateMachine | None = None
        self._name = name
        if name is not None:
            self._bind()

    def _bind(self, default_name: str | None = None) -> BreakerStateMachine:
        """Name the breaker (if unnamed), build its state machine and announce it."""
        with self._bind_lock:
            core = self._core
            if core is not None:
                return core
            name = safe_text(self._name or default_name or _live.unnamed_name())
            self._name = name
            self._events = EventPublisher(name, self._registry)
            self._call_events = EventPublisher(name, self._registry)
            self._forked = EventPublisher(name, self._registry)
            self._counters = dict.fromkeys(OUTCOMES, _uncounted)
            core = BreakerStateMachine(name, self.policy, self._events.publish)
            # Before the fast path can see the machine: no call goes uncounted, no event
            # unreported. The reporters get the name and publishers, not this breaker.
            self.named.announce(NamedBreaker(name, self._registry, self.report_to, self._events,
                                             self._call_events, self._counters, self._forked))
            self._core = core  # last: the fast path's "is it bound?" check reads this
        _live.add(self)
        return core

    def _after_fork_in_child(self) -> None:
        """Fresh locks in a forked child; the state published for its own metric files."""
        self._bind_lock = threading.Lock()
        core = self._core
        if core is not None:
            self._forked.publish(core.after_fork())

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
            return cast(R, self._substitute(permit)(*args, **kwargs))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_error(core, permit, start, exc)
            raise
        self._settle_result(core, permit, start, result)
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
            substitute = self._substitute(permit)(*args, **kwargs)
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
        self._settle_result(core, permit, start, result)
        return cast(R, result)

    def protect(self) -> Protection:
        """A context manager protecting a block: ``with cb.protect():`` or
        ``async with cb.protect():``.

        Entering raises :class:`CircuitOpenError` when the breaker rejects (no fallback for
        blocks); an exception in the block counts per ``expected_exception`` and propagates;
        a block that finishes normally is a success (or ``slow``). ``failure_on_result`` does
        not apply: a block has no result.
        """
        return Protection(self)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` so every call goes through this breaker: a plain function, an
        ``async def``, a generator function or an async generator function.

        The wrapper keeps ``fn``'s name, docstring and signature (``functools.wraps``) and has
        ``circuit_breaker`` set to this breaker. An unnamed breaker takes ``fn.__qualname__``
        as its name if it has not been used yet. A generator is protected from its first
        ``next()`` to its end (see :mod:`~vigil.error_handling.breaker.protection`): a
        rejection raises on the first ``next()``, and the fallback does not apply.
        """
        if self._core is None:
            self._bind(getattr(fn, "__qualname__", None))
        wrapper: Callable[..., Any]
        if inspect.isgeneratorfunction(fn):
            wrapper = guard_generator(self, fn)
        elif inspect.isasyncgenfunction(fn):
            wrapper = guard_async_generator(self, fn)
        elif inspect.iscoroutinefunction(fn):
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

    # -- settling (every way of calling reports through these two) -------------------------

    def _settle_result(self, core: BreakerStateMachine, permit: int, start: float,
                       result: object) -> None:
        """The protected code returned ``result`` (``NO_RESULT`` for a block)."""
        end = self._now()
        if self._rule.on_result is not None and result is not NO_RESULT:
            try:
                refused = self._rule.is_bad_result(result, core.name)
            except BaseException:  # an interrupt inside the predicate: frees a probe slot
                self._count(core, core.on_ignored(permit), end - start)
                raise
            if refused:
                self._count(core, core.on_failure(permit, end, end - start), end - start)
                return
        outcome = core.on_success(permit, end, end - start)
        # _count inlined: the success path is the benchmarked one (a frame is ~7% of it).
        self._counters[outcome]()
        if self._call_events.has_subscribers:
            self._call_events.publish(CallOutcome(core.name, outcome, end - start))

    def _settle_error(self, core: BreakerStateMachine, permit: int, start: float,
                      exc: BaseException) -> None:
        """The protected code raised ``exc`` (about to propagate unchanged)."""
        end = self._now()
        if isinstance(exc, GeneratorExit):  # a generator closed early: see protection.py
            outcome = core.on_success(permit, end, end - start)
        else:
            try:
                failed = self._rule.is_failure(exc, core.name)
            except BaseException:  # an interrupt inside the predicate
                self._count(core, core.on_ignored(permit), end - start)
                raise
            outcome = core.on_failure(permit, end, end - start) if failed \
                else core.on_ignored(permit)
        self._count(core, outcome, end - start)

    def _count(self, core: BreakerStateMachine, outcome: Outcome, duration: float) -> None:
        """Count the outcome (``NamedBreaker.count_calls``); publish it to call_events."""
        self._counters[outcome]()
        if self._call_events.has_subscribers:
            self._call_events.publish(CallOutcome(core.name, outcome, duration))

    def _predicate_failed(self, event: PredicateFailed) -> None:
        """A predicate of the failure rule raised (the breaker is bound: a call is running)."""
        self._events.publish(event)

    def _substitute(self, rejection: CallRejected) -> Callable[..., Any]:
        """The fallback to call instead, or raise CircuitOpenError when there is none."""
        if self._fallback is None:
            raise self._open_error(rejection)
        return self._fallback

    @staticmethod
    def _open_error(rejection: CallRejected) -> CircuitOpenError:
        return CircuitOpenError(rejection.breaker, rejection.state.value, rejection.retry_after)

    # -- state -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name (the ``breaker`` label); names an unnamed breaker on first read."""
        return (self._core or self._bind()).name

    @property
    def registry(self) -> CollectorRegistry:
        """The registry its metrics are recorded on."""
        return self._registry

    @property
    def state(self) -> CircuitState:
        """The current state; an OPEN breaker whose timeout has passed reads HALF_OPEN.

        Assigning (``cb.state = "CLOSED"``, the seed's manual reset) is
        :meth:`transition_to`: the transition is published, logged and counted like any other.
        """
        return (self._core or self._bind()).current_state(self._now())

    @state.setter
    def state(self, value: CircuitState | str) -> None:
        self.transition_to(value)

    def transition_to(self, state: CircuitState | str) -> None:
        """Move the breaker to ``state`` (a :class:`CircuitState` or its name in any case).

        Entering ``CLOSED``, ``DISABLED`` or ``METRICS_ONLY`` starts counting afresh;
        ``OPEN`` opens for the current recovery timeout, then probes as usual; ``FORCED_OPEN``
        rejects until moved out of (no timeout). A move to the current state changes nothing.
        An unknown name raises ``ValueError`` naming the six states.
        """
        target = CircuitState.parse(state)
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
        """Close the breaker (from any state) and clear its counts and open-duration growth."""
        (self._core or self._bind()).reset(self._now())

    def force_open(self, duration: float | None = None) -> None:
        """Open the breaker now for ``duration`` seconds (default: its current recovery
        timeout); then it probes as usual. Already OPEN: the timer restarts. (To reject until
        told otherwise, ``transition_to("FORCED_OPEN")``.)"""
        if duration is not None:
            check_positive("duration", duration)
        core = self._core or self._bind()
        core.transition(CircuitState.OPEN, self._now(), "forced open",
                        open_for=duration if duration is not None else core.recovery_timeout)

    # -- events and introspection ----------------------------------------------------------

    @property
    def events(self) -> EventPublisher[BreakerEvent]:
        """Publishes :class:`StateTransition`, :class:`CallRejected`,
        :class:`FailureRateExceeded` and :class:`SlowCallRateExceeded` events."""
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

    @property
    def failure_on_result(self) -> Callable[[Any], object] | None:
        """The predicate refusing returned values (``None``: every return is a success)."""
        return self._rule.on_result

    def snapshot(self) -> dict[str, Any]:
        """State, counts and settings as JSON-ready values (the exporter's ``/api/breakers``)."""
        core = self._core or self._bind()
        data = core.snapshot(self._now())
        config: dict[str, Any] = asdict(self.policy)
        config.update(self._rule.describe())
        config["fallback"] = describe(self._fallback) if self._fallback is not None else None
        data["config"] = config
        return data

    def __repr__(self) -> str:
        core = self._core
        if core is None:
            return "CircuitBreaker(unnamed, not used yet)"
        return f"CircuitBreaker(name={core.name!r}, state={core.current_state(self._now())})"
