"""Wait strategies: how long to wait before retry *n*, as ``fn(n) -> seconds``.

A strategy is any callable taking the retry number (1 for the wait before the second attempt)
and returning seconds; ``with_retry(wait=...)`` accepts a plain function. The built-in ones are
:class:`Wait` objects (frozen dataclasses, so they compare and print by value)::

    wait_fixed(2)                              # 2, 2, 2, ...
    wait_random(1, 3)                          # uniform in [1, 3] each time
    wait_incrementing(1, 2, max_delay=6)       # 1, 3, 5, 6, 6, ...
    wait_exponential(0.5, 2, max_delay=30)     # 0.5, 1, 2, 4, ... capped at 30
    wait_chain(wait_fixed(1), wait_fixed(5))   # retry 1 waits 1, every later one 5
    with_jitter(wait_exponential(1, 2, 60))    # each value v becomes uniform in [v/2, v]
    wait_fixed(1) + wait_random(0, 0.5)        # strategies add: 1 plus up to 0.5

**One shape for jitter**: :func:`with_jitter` wraps a strategy and draws each wait from the
top of its value, ``[v * (1 - spread), v]`` (``spread=0.5``: "equal jitter", ``spread=1``:
"full jitter"), optionally never below ``floor``. It is relative, so it spreads clients by the
same share at every retry, and it never waits more than the wrapped strategy says (its caps
hold). ``+`` adds strategies (a fixed or random offset, tenacity's ``wait_a + wait_b``);
``sum()`` of strategies works too.

:func:`default_wait` is what ``with_retry`` uses when ``wait`` is not given, built from these
pieces out of ``initial_delay``, ``multiplier``, ``max_delay`` and ``jitter``.

Randomness comes from ``rng`` (a ``random.Random``; inject a seeded one in tests), else one
shared generator. A zero wait draws nothing. Values are checked by the policy, not here: a
user function returning NaN, a negative number or infinity makes the retry raise
:class:`~vigil.config.ConfigError` (see :mod:`vigil.error_handling.retry.policy`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil import validate
from vigil.config import ConfigError

__all__ = [
    "Wait",
    "WaitFn",
    "default_wait",
    "wait_chain",
    "wait_exponential",
    "wait_fixed",
    "wait_incrementing",
    "wait_random",
    "with_jitter",
]

WaitFn = Callable[[int], float]
"""A wait strategy: retry number (1-based) -> seconds to wait before that retry."""

_RNG = random.Random()  # shared default; random() on one Random is atomic under the GIL


class Wait:
    """Base of the built-in strategies: callable as ``wait(n)``, added with ``+``."""

    __slots__ = ()

    def __call__(self, retry: int) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitFn) -> Wait:
        if not callable(other):
            return NotImplemented
        return _Sum((*_parts(self), *_parts(other)))

    def __radd__(self, other: object) -> Wait:
        if other == 0:  # sum([...]) starts from 0
            return self
        if not callable(other):
            return NotImplemented
        return _Sum((*_parts(other), *_parts(self)))


def _parts(strategy: WaitFn) -> tuple[WaitFn, ...]:
    return strategy.parts if isinstance(strategy, _Sum) else (strategy,)


@dataclass(frozen=True, slots=True)
class _Sum(Wait):
    """The sum of several strategies' values (built by ``+``)."""

    parts: tuple[WaitFn, ...]

    def __call__(self, retry: int) -> float:
        return sum(part(retry) for part in self.parts)


@dataclass(frozen=True, slots=True)
class _Fixed(Wait):
    seconds: float

    def __call__(self, retry: int) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class _Random(Wait):
    low: float
    high: float
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __call__(self, retry: int) -> float:
        rng = self.rng if self.rng is not None else _RNG
        return self.low + (self.high - self.low) * rng.random()


@dataclass(frozen=True, slots=True)
class _Incrementing(Wait):
    start: float
    increment: float
    max_delay: float

    def __call__(self, retry: int) -> float:
        return max(0.0, min(self.start + self.increment * (retry - 1), self.max_delay))


@dataclass(frozen=True, slots=True)
class _Exponential(Wait):
    initial_delay: float
    multiplier: float
    max_delay: float

    def __call__(self, retry: int) -> float:
        if self.initial_delay == 0:  # 0 * inf would be NaN once the power overflows
            return 0.0
        try:
            base = self.initial_delay * self.multiplier ** (retry - 1)
        except OverflowError:  # thousands of retries: the cap applies long before
            base = math.inf
        return min(base, self.max_delay)


@dataclass(frozen=True, slots=True)
class _Chain(Wait):
    strategies: tuple[WaitFn, ...]

    def __call__(self, retry: int) -> float:
        index = min(max(retry, 1), len(self.strategies)) - 1
        return self.strategies[index](retry)


@dataclass(frozen=True, slots=True)
class _Jitter(Wait):
    strategy: WaitFn
    spread: float
    floor: float
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __call__(self, retry: int) -> float:
        high = self.strategy(retry)
        if high == 0:
            return 0.0
        # Drawn even when the window is a point (floor == v), so a seeded rng gives the same
        # sequence as before strategies existed.
        low = min(max(high * (1.0 - self.spread), self.floor), high)
        rng = self.rng if self.rng is not None else _RNG
        value = low + (high - low) * rng.random()
        return value if value <= high else high  # rounding never lifts it past the cap


# --- the constructors (validated: a bad argument is a ConfigError naming it) -------------


def wait_fixed(seconds: float) -> Wait:
    """``seconds`` before every retry."""
    return _Fixed(_seconds("seconds", seconds))


def wait_random(low: float = 0.0, high: float = 1.0, *, rng: random.Random | None = None) -> Wait:
    """Uniform in ``[low, high]`` before every retry."""
    low_s, high_s = _seconds("low", low), _seconds("high", high)
    if high_s < low_s:
        raise ConfigError("high", high, f"must be >= low ({low!r})")
    return _Random(low_s, high_s, _rng(rng))


def wait_incrementing(start: float = 0.0, increment: float = 1.0, *,
                      max_delay: float = math.inf) -> Wait:
    """``start + increment * (n - 1)`` before retry *n*, within ``[0, max_delay]``.

    ``increment`` may be negative (waits that shrink to 0).
    """
    return _Incrementing(_seconds("start", start), _finite("increment", increment),
                         _cap("max_delay", max_delay))


def wait_exponential(initial_delay: float = 1.0, multiplier: float = 2.0, *,
                     max_delay: float = math.inf) -> Wait:
    """``initial_delay * multiplier ** (n - 1)`` before retry *n*, at most ``max_delay``."""
    initial_delay = _seconds("initial_delay", initial_delay)
    multiplier = _finite("multiplier", multiplier)
    if multiplier < 1:
        raise ConfigError("multiplier", multiplier, "expected a finite number >= 1")
    return _Exponential(initial_delay, multiplier, _cap("max_delay", max_delay))


def wait_chain(*strategies: WaitFn) -> Wait:
    """Retry *n* uses the *n*-th strategy; past the last one, the last one again.

    Each strategy is called with the call's retry number (as tenacity's ``wait_chain``), so
    ``wait_chain(wait_fixed(1), wait_exponential(1, 2))`` waits 1, then 2, 4, 8, ...
    """
    if not strategies:
        raise ConfigError("strategies", strategies,
                          "expected one or more wait strategies (callables n -> seconds)")
    for strategy in strategies:
        if not callable(strategy):
            raise ConfigError("strategies", strategy,
                              "expected wait strategies (callables n -> seconds)")
    return _Chain(tuple(strategies))


def with_jitter(strategy: WaitFn, *, spread: float = 0.5, floor: float = 0.0,
                rng: random.Random | None = None) -> Wait:
    """``strategy``'s value ``v`` jittered: uniform in ``[max(v * (1 - spread), floor), v]``.

    ``spread`` in ``[0, 1]``: the share of ``v`` that is random (0.5 equal jitter, 1 full
    jitter). ``floor`` keeps the low end from dropping under a minimum (never above ``v``).
    """
    if not callable(strategy):
        raise ConfigError("strategy", strategy, "expected a wait strategy (callable n -> seconds)")
    spread = _finite("spread", spread)
    if not 0 <= spread <= 1:
        raise ConfigError("spread", spread, "expected a number between 0 and 1")
    return _Jitter(strategy, spread, _seconds("floor", floor), _rng(rng))


def default_wait(initial_delay: float, multiplier: float, max_delay: float, jitter: bool,
                 rng: random.Random | None = None) -> Wait:
    """``with_retry``'s strategy from its backoff arguments (the module docstring's formula).

    Let ``b = initial_delay * multiplier ** (n - 1)``. Without jitter retry *n* waits
    ``min(b, max_delay)``. With jitter the window's top is ``hi = min(2 * b, max_delay)`` and
    the wait is uniform in ``[max(hi / 2, initial_delay), hi]``: ``[b, 2b]`` while ``2b <=
    max_delay``, then ``[max_delay / 2, max_delay]`` (never below ``initial_delay``).
    """
    if not jitter:
        return wait_exponential(initial_delay, multiplier, max_delay=max_delay)
    return with_jitter(wait_exponential(2.0 * initial_delay, multiplier, max_delay=max_delay),
                       spread=0.5, floor=initial_delay, rng=rng)


def _finite(name: str, value: object) -> float:
    return validate.number(name, value)


def _seconds(name: str, value: object) -> float:
    return validate.number(name, value, minimum=0)


def _cap(name: str, value: object) -> float:
    return validate.number(name, value, minimum=0, infinite=True)  # inf: no cap


def _rng(rng: object) -> random.Random | None:
    if rng is not None and not isinstance(rng, random.Random):
        raise ConfigError("rng", rng, "expected None or a random.Random")
    return rng
