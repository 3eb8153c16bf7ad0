"""vigil.error_handling.retry.policy: results, max_time and wait strategies in the pure decision."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from vigil.config import ConfigError
from vigil.error_handling.retry import RetryPolicy, wait_fixed, wait_random


def _policy(**kwargs: Any) -> RetryPolicy:
    options: dict[str, Any] = {"max_attempts": 3, "initial_delay": 1.0, "max_delay": 10.0,
                               "multiplier": 2.0, "jitter": False}
    options.update(kwargs)
    return RetryPolicy(**options)


def test_results_are_accepted_unless_retry_if_result_rejects_them() -> None:
    """decide_result: None (success) without a predicate or when it is false; else a decision."""
    assert _policy().decide_result(1, None) is None
    policy = _policy(retry_if_result=lambda r: r is None)
    assert policy.decide_result(1, "value") is None
    first = policy.decide_result(1, None)
    assert first is not None
    assert (first.retry, first.delay, first.reason) == (True, 1.0, None)
    last = policy.decide_result(3, None)
    assert last is not None
    assert (last.retry, last.reason) == (False, "attempts_exhausted")
    with pytest.raises(ValueError, match="start at 1"):
        policy.decide_result(0, None)


def test_the_result_predicate_is_asked_after_the_last_attempt_too() -> None:
    """Whether the call gave up depends on it, so retry_if_result runs even with no attempt left."""
    asked: list[object] = []

    def rejects(result: object) -> bool:
        asked.append(result)
        return False

    assert _policy(max_attempts=1, retry_if_result=rejects).decide_result(1, "r") is None
    assert asked == ["r"]


def test_max_time_gives_up_when_the_next_attempt_would_start_after_it() -> None:
    """elapsed + delay > max_time is a give-up (reason max_time); landing exactly on it is not."""
    policy = _policy(max_attempts=10, wait=wait_fixed(2), max_time=5)
    assert policy.decide(1, OSError(), elapsed=3.0).retry  # next attempt at 5: allowed
    late = policy.decide(2, OSError(), elapsed=3.5)
    assert (late.retry, late.reason) == (False, "max_time")
    result = policy.decide_result(1, None, elapsed=4.0)
    assert result is None  # no retry_if_result: accepted whatever the time
    timed = dataclasses.replace(policy, retry_if_result=lambda r: True)
    rejected = timed.decide_result(1, None, elapsed=4.0)
    assert rejected is not None
    assert rejected.reason == "max_time"


def test_max_time_does_not_outrank_the_other_reasons() -> None:
    """Not retryable or out of attempts wins over max_time (checked before the wait)."""
    policy = _policy(retry_on=(OSError,), max_time=1)
    assert policy.decide(1, ValueError(), elapsed=99).reason == "not_retryable"
    assert policy.decide(3, OSError(), elapsed=99).reason == "attempts_exhausted"


def test_a_wait_strategy_replaces_the_backoff_formula() -> None:
    """delay(n) is wait(n); without wait it follows initial_delay/multiplier/max_delay."""
    assert [_policy(wait=lambda n: 0.25 * n).delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 0.75]
    assert [_policy().delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]


def test_replace_rebuilds_the_default_strategy() -> None:
    """dataclasses.replace(policy, initial_delay=...) waits by the new numbers, not stale ones."""
    assert dataclasses.replace(_policy(), initial_delay=3.0).delay(1) == 3.0


def test_integer_waits_are_accepted_as_floats() -> None:
    """A strategy returning an int is fine; the delay is a float."""
    delay = _policy(wait=lambda n: 2).delay(1)
    assert (delay, type(delay)) == (2.0, float)


@pytest.mark.parametrize("bad", [float("nan"), -0.5, float("inf"), "1", None, True])
def test_a_bad_wait_value_is_a_config_error_never_a_sleep(bad: object) -> None:
    """NaN, negative, infinite or non-number waits raise ConfigError naming wait and the retry."""
    policy = _policy(wait=lambda n: bad)
    with pytest.raises(ConfigError) as info:
        policy.decide(2, OSError())
    assert info.value.key == "wait"
    assert "for retry 2" in str(info.value)


def test_a_raising_wait_strategy_propagates() -> None:
    """An exception from the strategy is not swallowed or replaced."""

    def broken(n: int) -> float:
        raise ZeroDivisionError("strategy bug")

    with pytest.raises(ZeroDivisionError, match="strategy bug"):
        _policy(wait=broken).decide(1, OSError())


def test_the_explanation_names_each_reason() -> None:
    """explain() gives the note's tail for every reason ('' when attempts ran out)."""
    policy = _policy(max_time=2.5)
    assert policy.explain("attempts_exhausted", OSError()) == ""
    assert policy.explain("not_retryable", ValueError()) == "ValueError is not in retry_on"
    assert policy.explain("max_time", None) == (
        "the next attempt would start after max_time (2.5s)")
    assert policy.explain("rejected_by_retry_if", OSError()) == "retry_if returned False"


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"max_time": 0}, "max_time"),
    ({"max_time": -1}, "max_time"),
    ({"max_time": float("nan")}, "max_time"),
    ({"max_time": float("inf")}, "max_time"),
    ({"max_time": True}, "max_time"),
    ({"max_time": "5"}, "max_time"),
    ({"retry_if_result": 3}, "retry_if_result"),
    ({"wait": 2.0}, "wait"),
])
def test_new_arguments_are_validated(kwargs: dict[str, Any], key: str) -> None:
    """Each invalid new argument raises ConfigError naming it and the value received."""
    with pytest.raises(ConfigError) as info:
        _policy(**kwargs)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: got {kwargs[key]!r}; ")


@pytest.mark.parametrize("clash", ["initial_delay", "max_delay", "multiplier", "jitter", "rng"])
def test_wait_with_backoff_arguments_is_refused(clash: str) -> None:
    """from_config(wait=..., <backoff argument>=...) names the clash: one would be ignored."""
    values: dict[str, Any] = {"initial_delay": 1, "max_delay": 5, "multiplier": 2,
                              "jitter": True, "rng": random.Random(1)}
    with pytest.raises(ConfigError, match=f"either wait or {clash}, not both") as info:
        RetryPolicy.from_config(wait=wait_random(0, 1), **{clash: values[clash]})
    assert info.value.key == "wait"


def test_from_config_passes_the_new_arguments_through() -> None:
    """from_config keeps retry_if_result, max_time and wait."""
    pred, wait = (lambda r: False), wait_fixed(1)
    policy = RetryPolicy.from_config(retry_if_result=pred, max_time=3, wait=wait)
    assert (policy.retry_if_result, policy.max_time, policy.wait) == (pred, 3.0, wait)


def test_retry_options_are_the_policy_fields_beyond_the_two_positional_ones() -> None:
    """RetryOptions declares every RetryPolicy field except max_attempts and retry_on."""
    from vigil.error_handling.retry.policy import RetryOptions

    fields = {f.name for f in dataclasses.fields(RetryPolicy) if f.init}
    assert set(RetryOptions.__annotations__) == fields - {"max_attempts", "retry_on"}


def test_an_unknown_retry_keyword_is_refused_by_name() -> None:
    """A misspelt setting raises TypeError naming it (with_retry, retrying, from_config)."""
    from vigil.error_handling.retry import retrying, with_retry

    with pytest.raises(TypeError, match="'max_delays'"):
        with_retry(3, max_delays=1.0)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="'jiter'"):
        retrying(3, operation="op", jiter=False)  # type: ignore[call-arg]
