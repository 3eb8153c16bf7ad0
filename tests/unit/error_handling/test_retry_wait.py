"""vigil.error_handling.retry.wait: the wait strategies, their composition and the default one."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.config import ConfigError
from vigil.error_handling.retry import (
    default_wait,
    wait_chain,
    wait_exponential,
    wait_fixed,
    wait_incrementing,
    wait_random,
    with_jitter,
)


def _old_delay(retry: int, initial: float, multiplier: float, maximum: float, jitter: bool,
               rng: random.Random) -> float:
    """RetryPolicy.delay as it was before strategies (vigil 6efce1c), kept as the reference."""
    if initial == 0:
        return 0.0
    try:
        base = initial * multiplier ** (retry - 1)
    except OverflowError:
        base = math.inf
    if not jitter:
        return min(base, maximum)
    high = min(2.0 * base, maximum)
    low = max(high / 2.0, initial)
    return low + (high - low) * rng.random()


@given(initial=st.floats(0, 100), extra=st.floats(0, 1000), multiplier=st.floats(1, 10),
       seed=st.integers(0, 2**32), jitter=st.booleans(),
       retries=st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_default_wait_gives_the_old_formulas_waits_for_the_same_rng(
        initial: float, extra: float, multiplier: float, seed: int, jitter: bool,
        retries: list[int]) -> None:
    """default_wait, built from the pieces, returns exactly the pre-strategy waits, draw by draw."""
    if 0 < initial < 1e-300:  # subnormal bases round differently once doubled; not a real delay
        initial = 0.0
    strategy = default_wait(initial, multiplier, initial + extra, jitter, random.Random(seed))
    reference = random.Random(seed)
    for retry in retries:
        assert strategy(retry) == _old_delay(retry, initial, multiplier, initial + extra,
                                             jitter, reference)


def test_default_wait_draws_even_when_the_window_is_a_point() -> None:
    """max_delay == initial_delay still consumes one draw per wait, as before (same sequence)."""
    rng, reference = random.Random(3), random.Random(3)
    strategy = default_wait(2.0, 2.0, 2.0, True, rng)
    assert [strategy(n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]
    for _ in range(3):
        reference.random()
    assert rng.random() == reference.random()


def test_fixed_incrementing_and_exponential_shapes() -> None:
    """The deterministic strategies give their textbook sequences, capped where asked."""
    assert [wait_fixed(2)(n) for n in (1, 2, 9)] == [2.0, 2.0, 2.0]
    assert [wait_incrementing(1, 2, max_delay=6)(n) for n in range(1, 6)] == [1, 3, 5, 6, 6]
    assert [wait_incrementing(3, -2)(n) for n in range(1, 5)] == [3, 1, 0, 0]
    assert [wait_exponential(0.5, 2, max_delay=3)(n) for n in range(1, 6)] == [
        0.5, 1, 2, 3, 3]


def test_exponential_survives_overflow_and_zero() -> None:
    """A huge retry number hits the cap (no OverflowError); initial 0 stays 0 (never NaN)."""
    assert wait_exponential(1, 10, max_delay=60)(5000) == 60
    assert wait_exponential(1, 10)(5000) == math.inf  # uncapped: the policy refuses it later
    assert wait_exponential(0, 10)(5000) == 0.0


def test_random_stays_in_its_window_and_follows_the_rng() -> None:
    """wait_random draws uniformly in [low, high] from the injected rng."""
    draws = [wait_random(1, 3, rng=random.Random(5))(n) for n in range(1, 50)]
    assert all(1 <= d <= 3 for d in draws)
    again = wait_random(1, 3, rng=random.Random(5))
    assert again(1) == draws[0]
    assert wait_random(2, 2)(1) == 2.0


def test_chain_uses_the_nth_strategy_then_repeats_the_last() -> None:
    """wait_chain: retry n uses strategy n, past the end the last one, with the call's number."""
    chain = wait_chain(wait_fixed(1), wait_fixed(2), wait_exponential(1, 2))
    assert [chain(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert chain(0) == 1  # defensive: numbers below 1 use the first


@given(v=st.floats(0, 1e6), spread=st.floats(0, 1), floor=st.floats(0, 1e6),
       seed=st.integers(0, 2**32))
def test_jitter_stays_within_its_window_and_never_above_the_value(
        v: float, spread: float, floor: float, seed: int) -> None:
    """with_jitter's wait is in [min(max(v(1-spread), floor), v), v] for any inputs."""
    wait = with_jitter(wait_fixed(v), spread=spread, floor=floor, rng=random.Random(seed))(1)
    low = min(max(v * (1 - spread), floor), v)
    assert low <= wait <= v


def test_jitter_spreads_and_full_jitter_reaches_down_to_zero() -> None:
    """spread=0 keeps the value; spread=1 spreads over [0, v]."""
    assert with_jitter(wait_fixed(4), spread=0)(1) == 4.0
    full = with_jitter(wait_fixed(4), spread=1, rng=random.Random(1))
    draws = [full(n) for n in range(200)]
    assert min(draws) < 0.5
    assert max(draws) > 3.5


def test_strategies_add_and_sum() -> None:
    """+ adds values (flattened); sum() works; a plain function can be either operand."""
    combined = wait_fixed(1) + wait_fixed(2) + (lambda n: 0.5 * n)
    assert combined(2) == 4.0
    assert len(combined.parts) == 3  # type: ignore[attr-defined]
    assert ((lambda n: 10.0) + wait_fixed(1))(1) == 11.0
    assert sum([wait_fixed(1), wait_fixed(2)])(1) == 3.0  # type: ignore[operator]
    jittered = wait_exponential(1, 2) + wait_random(0, 1, rng=random.Random(2))
    assert all(2 ** (n - 1) <= jittered(n) <= 2 ** (n - 1) + 1 for n in range(1, 8))
    with pytest.raises(TypeError):
        wait_fixed(1) + 2  # type: ignore[operator]


def test_strategies_compare_and_print_by_value() -> None:
    """Built-ins are frozen dataclasses: equal arguments are equal strategies (rng aside)."""
    assert wait_exponential(1, 2, max_delay=9) == wait_exponential(1.0, 2.0, max_delay=9.0)
    assert wait_random(0, 1, rng=random.Random(1)) == wait_random(0, 1)
    assert "max_delay=9.0" in repr(wait_exponential(1, 2, max_delay=9))


@pytest.mark.parametrize(("build", "key", "value"), [
    (lambda v: wait_fixed(v), "seconds", -1),
    (lambda v: wait_fixed(v), "seconds", float("nan")),
    (lambda v: wait_fixed(v), "seconds", float("inf")),
    (lambda v: wait_fixed(v), "seconds", True),
    (lambda v: wait_random(v, 1), "low", -0.1),
    (lambda v: wait_random(2, v), "high", 1),
    (lambda v: wait_incrementing(v), "start", float("nan")),
    (lambda v: wait_incrementing(0, v), "increment", float("inf")),
    (lambda v: wait_incrementing(0, 1, max_delay=v), "max_delay", float("nan")),
    (lambda v: wait_exponential(v), "initial_delay", -1),
    (lambda v: wait_exponential(1, v), "multiplier", 0.5),
    (lambda v: wait_exponential(1, 2, max_delay=v), "max_delay", -5),
    (lambda v: wait_chain(v), "strategies", 3),
    (lambda v: with_jitter(v), "strategy", "fast"),
    (lambda v: with_jitter(wait_fixed(1), spread=v), "spread", 1.5),
    (lambda v: with_jitter(wait_fixed(1), floor=v), "floor", -1),
    (lambda v: wait_random(0, 1, rng=v), "rng", 42),
])
def test_bad_arguments_are_config_errors_naming_them(build: Any, key: str, value: Any) -> None:
    """Each invalid argument raises ConfigError naming the argument and the value."""
    with pytest.raises(ConfigError) as info:
        build(value)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: got {value!r}; ")


def test_an_empty_chain_is_refused() -> None:
    """wait_chain() needs at least one strategy."""
    with pytest.raises(ConfigError, match="one or more"):
        wait_chain()
