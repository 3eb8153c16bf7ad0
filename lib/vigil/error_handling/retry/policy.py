"""The retry decision, written once and without I/O: :class:`RetryPolicy` and its answers.

Given the attempt that just ended (its number, its exception or its result, and the seconds
since the call's first attempt began) the policy answers a :class:`RetryDecision`: retry after
``delay`` seconds, or give up and why. It reads no clock, sleeps nothing and publishes nothing;
:mod:`~vigil.error_handling.retry.attempts` carries its answers out (tenacity's ``iter()``).

**After an exception** (:meth:`RetryPolicy.decide`), in order: not an ``Exception``
(``KeyboardInterrupt``, ``SystemExit``, ``asyncio.CancelledError``), ``CircuitOpenError`` (the
breaker decides when to try again), not in ``retry_on``, no attempts left, ``retry_if(exc)``
false (asked only when a retry is otherwise possible), then the wait and ``max_time``.

**After a result** (:meth:`RetryPolicy.decide_result`): accepted unless ``retry_if_result``
is set and true for it (asked after every attempt, the last included, as backoff's
``on_predicate``: whether the call gave up depends on it); then attempts left, the wait and
``max_time``.

**max_time**: no attempt starts more than ``max_time`` seconds after the first one began; a
wait that would end past it is not taken, the call gives up (reason ``"max_time"``) at once.

**The wait** before retry *n* is ``wait(n)`` when ``wait`` is given, else
:func:`~vigil.error_handling.retry.wait.default_wait` built from ``initial_delay``,
``multiplier``, ``max_delay``, ``jitter`` and ``rng``. Whatever a strategy returns is checked:
anything but a finite number ``>= 0`` (NaN, a negative number, infinity, a string) raises
:class:`~vigil.config.ConfigError` with key ``wait``, naming the value and the retry number,
so nothing ever sleeps NaN or forever. A strategy (or ``retry_if``/``retry_if_result``) that
raises lets its exception propagate; the drivers call the policy while the judged exception is
being handled, so it is the new exception's ``__context__``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict, Unpack, cast

from vigil import validate
from vigil.config import ConfigError, get_config
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.retry.wait import WaitFn, default_wait

__all__ = [
    "ExceptionTypes",
    "GiveUpReason",
    "OUTCOMES",
    "RetryDecision",
    "RetryOptions",
    "RetryOutcome",
    "RetryPolicy",
]

RetryOutcome = Literal["success_first_try", "success_after_retry", "failure_after_retry",
                       "failure_without_retry"]
OUTCOMES: tuple[RetryOutcome, ...] = ("success_first_try", "success_after_retry",
                                      "failure_after_retry", "failure_without_retry")
GiveUpReason = Literal["attempts_exhausted", "not_retryable", "circuit_open",
                       "rejected_by_retry_if", "not_an_exception", "max_time"]
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


class RetryOptions(TypedDict, total=False):
    """A retry's settings beyond ``max_attempts`` and ``retry_on``, as keyword arguments of
    ``with_retry``, ``retrying`` and :meth:`RetryPolicy.from_config` (declared once, here;
    each is the :class:`RetryPolicy` field of the same name). Left out or ``None``: the
    configured ``error_handling.retry.default_*`` or the field's default."""

    initial_delay: float | None
    max_delay: float | None
    multiplier: float | None
    jitter: bool | None
    retry_if: Callable[[Exception], bool] | None
    rng: random.Random | None
    retry_if_result: Callable[[Any], bool] | None
    max_time: float | None
    wait: WaitFn | None


_SETTINGS: Final = frozenset(RetryOptions.__annotations__)
_BACKOFF: Final = ("initial_delay", "max_delay", "multiplier", "jitter", "rng")


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after an attempt: retry after ``delay`` seconds, or give up (``reason``)."""

    retry: bool
    delay: float = 0.0
    reason: GiveUpReason | None = None  # None when retrying


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry and how long to wait; validated on construction, immutable, no I/O.

    Build it from explicit values, or with :meth:`from_config` to fill the unset ones from
    ``error_handling.retry.default_*``. See the module docstring for the decision.
    Bad values raise :class:`~vigil.config.ConfigError` naming the argument. With ``wait``
    the backoff fields (``initial_delay`` ... ``jitter``, ``rng``) are still validated but
    unused: the strategy alone gives the waits.
    """

    max_attempts: int
    initial_delay: float
    max_delay: float
    multiplier: float
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    jitter: bool = True
    retry_if: Callable[[Exception], bool] | None = None
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    retry_if_result: Callable[[Any], bool] | None = None
    max_time: float | None = None
    wait: WaitFn | None = None
    _strategy: WaitFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate.integer("max_attempts", self.max_attempts, minimum=1)
        numbers = {"initial_delay": 0.0, "max_delay": 0.0, "multiplier": 1.0}
        for name, minimum in numbers.items():
            validate.number(name, getattr(self, name), minimum=minimum)
        if self.max_delay < self.initial_delay:
            raise ConfigError("max_delay", self.max_delay,
                              f"must be >= initial_delay ({self.initial_delay!r})")
        for name in numbers:  # as floats, so multiplier ** n never becomes a huge (slow) int
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on))
        if not isinstance(self.jitter, bool):
            raise ConfigError("jitter", self.jitter, "expected true or false")
        for name, takes in (("retry_if", "the exception"), ("retry_if_result", "the result"),
                            ("wait", "the retry number")):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(name, value, f"expected None or a callable taking {takes}")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise ConfigError("rng", self.rng, "expected None or a random.Random")
        if self.max_time is not None:
            ok = (isinstance(self.max_time, int | float) and not isinstance(self.max_time, bool)
                  and math.isfinite(self.max_time) and self.max_time > 0)
            if not ok:
                raise ConfigError("max_time", self.max_time,
                                  "expected None or a finite number of seconds > 0")
            object.__setattr__(self, "max_time", float(self.max_time))
        strategy = self.wait if self.wait is not None else default_wait(
            self.initial_delay, self.multiplier, self.max_delay, self.jitter, self.rng)
        object.__setattr__(self, "_strategy", strategy)

    @classmethod
    def from_config(cls, max_attempts: int | None = None,
                    retry_on: ExceptionTypes = (Exception,),
                    **settings: Unpack[RetryOptions]) -> RetryPolicy:
        """A policy whose ``None`` values come from the active ``error_handling.retry``.

        ``settings`` are :class:`RetryOptions`; any other keyword raises ``TypeError`` naming
        it. ``wait`` replaces the backoff arguments: giving it with any of ``initial_delay``,
        ``max_delay``, ``multiplier``, ``jitter`` or ``rng`` is a ConfigError (one of them
        would be ignored; a ``wait_random``/``with_jitter`` takes its own ``rng``).
        """
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}; a retry's settings "
                            f"are max_attempts, retry_on, {', '.join(sorted(_SETTINGS))}")
        if callable(max_attempts):
            raise ConfigError("max_attempts", max_attempts, "expected an integer >= 1",
                              hint="@with_retry without parentheses takes no other argument")
        given: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        wait = given.get("wait")
        if wait is not None:
            clash = [name for name in _BACKOFF if name in given]
            if clash:
                raise ConfigError("wait", wait, f"expected either wait or {', '.join(clash)}, "
                                                "not both")
        defaults = get_config().error_handling.retry
        configured = {"initial_delay": defaults.default_initial_delay,
                      "max_delay": defaults.default_max_delay,
                      "multiplier": defaults.default_multiplier,
                      "jitter": defaults.default_jitter}
        return cls(
            max_attempts=defaults.default_max_attempts if max_attempts is None else max_attempts,
            retry_on=cast(tuple[type[BaseException], ...], retry_on),
            **{**configured, **given})

    def decide(self, attempt: int, error: BaseException, *, elapsed: float = 0.0
               ) -> RetryDecision:
        """After attempt ``attempt`` (1-based) raised ``error``, ``elapsed`` seconds after the
        first attempt began (read only with ``max_time``): retry or give up."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt!r}")
        if not isinstance(error, Exception):
            return _GIVE_UP["not_an_exception"]
        if isinstance(error, CircuitOpenError):
            return _GIVE_UP["circuit_open"]
        if not isinstance(error, self.retry_on):
            return _GIVE_UP["not_retryable"]
        if attempt >= self.max_attempts:
            return _GIVE_UP["attempts_exhausted"]
        if self.retry_if is not None and not self.retry_if(error):
            return _GIVE_UP["rejected_by_retry_if"]
        return self._schedule(attempt, elapsed)

    def decide_result(self, attempt: int, result: object, *, elapsed: float = 0.0
                      ) -> RetryDecision | None:
        """After attempt ``attempt`` returned ``result``: ``None`` if it is accepted (the call
        succeeded), else retry or give up (the caller then gets this last result)."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt!r}")
        if not self.rejects(result):
            return None
        return self.decide_rejected(attempt, elapsed=elapsed)

    def rejects(self, result: object) -> bool:
        """Whether ``retry_if_result`` asks for another attempt after ``result``."""
        return self.retry_if_result is not None and bool(self.retry_if_result(result))

    def decide_rejected(self, attempt: int, *, elapsed: float = 0.0) -> RetryDecision:
        """After attempt ``attempt`` returned a result :meth:`rejects` refused: retry or give
        up (the second half of :meth:`decide_result`, for drivers that asked already)."""
        if attempt >= self.max_attempts:
            return _GIVE_UP["attempts_exhausted"]
        return self._schedule(attempt, elapsed)

    def _schedule(self, attempt: int, elapsed: float) -> RetryDecision:
        delay = self.delay(attempt)
        if self.max_time is not None and elapsed + delay > self.max_time:
            return _GIVE_UP["max_time"]
        return RetryDecision(True, delay=delay)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), jitter included; checked."""
        value = self._strategy(retry)
        if type(value) is float and 0.0 <= value < math.inf:  # NaN fails both comparisons
            return value
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value) and value >= 0)
        if not ok:
            raise ConfigError("wait", value, "expected a finite number of seconds >= 0",
                              hint=f"returned by the wait strategy for retry {retry}")
        return float(value)

    def explain(self, reason: GiveUpReason, error: BaseException | None) -> str:
        """Why a call gave up, for the exception's note ("" when attempts ran out)."""
        name = type(error).__name__
        if reason == "not_retryable":
            return f"{name} is not in retry_on"
        if reason == "circuit_open":
            return f"{name} is never retried"
        if reason == "rejected_by_retry_if":
            return "retry_if returned False"
        if reason == "not_an_exception":
            return f"{name} is not an Exception"
        if reason == "max_time":
            return f"the next attempt would start after max_time ({self.max_time:g}s)"
        return ""


_GIVE_UP: dict[GiveUpReason, RetryDecision] = {  # immutable, so shared
    reason: RetryDecision(False, reason=reason)
    for reason in ("attempts_exhausted", "not_retryable", "circuit_open",
                   "rejected_by_retry_if", "not_an_exception", "max_time")}


def _exception_types(value: object) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple of exception classes (a single class or a list is accepted)."""
    types = (value,) if isinstance(value, type) else value
    if (not isinstance(types, tuple | list) or not types
            or not all(isinstance(t, type) and issubclass(t, BaseException) for t in types)):
        raise ConfigError("retry_on", value,
                          "expected an exception class or a non-empty tuple of them")
    return tuple(types)
