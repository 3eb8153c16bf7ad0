"""vigil.error_handling.breaker.policy: BreakerPolicy's validation and from_config's defaults."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import ConfigError
from vigil.error_handling.breaker import BreakerPolicy, CircuitBreaker


@pytest.mark.parametrize(("key", "value"), [
    ("failure_threshold", 0),
    ("failure_threshold", -3),
    ("failure_threshold", 2.5),
    ("failure_threshold", True),
    ("recovery_timeout", 0),
    ("recovery_timeout", -1.0),
    ("recovery_timeout", math.nan),
    ("recovery_timeout", math.inf),
    ("half_open_max_calls", 0),
    ("success_threshold", 0),
    ("failure_rate_threshold", 0),
    ("failure_rate_threshold", 1.5),
    ("minimum_calls", 0),
    ("sliding_window_size", -1),
    ("slow_call_duration", 0),
    ("open_duration_multiplier", 0.5),
    ("max_recovery_timeout", -1.0),
    ("sliding_window_type", "sliding"),
    ("sliding_window_type", 3),
    ("slow_call_rate_threshold", 0),
    ("slow_call_rate_threshold", -0.5),
    ("slow_call_rate_threshold", 1.01),
    ("slow_call_rate_threshold", math.nan),
    ("slow_call_rate_threshold", math.inf),
    ("slow_call_rate_threshold", True),
    ("failure_on_result", "not callable"),
])
def test_bad_settings_raise_config_error_naming_them(key: str, value: object) -> None:
    """Zero, negative or ill-typed settings raise ConfigError naming the argument and the
    value; nothing is silently replaced (``circuitbreaker`` turns 0 into 5)."""
    options: dict[str, Any] = {key: value}
    if key == "slow_call_rate_threshold":
        options["slow_call_duration"] = 1.0
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(**options, registry=CollectorRegistry())
    assert info.value.key == key
    assert repr(value) in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"failure_threshold": 3, "failure_rate_threshold": 0.5}, "failure_threshold"),
    ({"minimum_calls": 30, "sliding_window_size": 20}, "minimum_calls"),
    ({"recovery_timeout": 10.0, "max_recovery_timeout": 5.0}, "max_recovery_timeout"),
    ({"expected_exception": KeyboardInterrupt}, "expected_exception"),
    ({"expected_exception": ()}, "expected_exception"),
    ({"expected_exception": "ValueError"}, "expected_exception"),
    ({"name": ""}, "name"),
    ({"fallback": "cached"}, "fallback"),
    ({"slow_call_rate_threshold": 0.5}, "slow_call_rate_threshold"),
    ({"sliding_window_type": "time"}, "sliding_window_type"),
    ({"sliding_window_type": "time", "failure_rate_threshold": 0.5,
      "sliding_window_size": 3601}, "sliding_window_size"),
])
def test_inconsistent_settings_raise_config_error(kwargs: dict[str, Any], key: str) -> None:
    """Combinations that cannot work are refused with the offending argument named: a slow
    rate without slow_call_duration, a time window no rule would read, a time window past an
    hour of buckets."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(**kwargs, registry=CollectorRegistry())
    assert info.value.key == key


def test_the_error_says_what_is_allowed() -> None:
    """The window-type error lists the two types; the slow rate's names slow_call_duration."""
    with pytest.raises(ConfigError, match=r"'count'.*'time'"):
        BreakerPolicy(sliding_window_type="hopping")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs slow_call_duration"):
        BreakerPolicy(slow_call_rate_threshold=0.5)


def test_a_time_window_may_need_more_calls_than_its_seconds() -> None:
    """minimum_calls above sliding_window_size is fine for a time window (many calls a
    second), refused for a count window (it could never be reached)."""
    policy = BreakerPolicy(failure_threshold=None, failure_rate_threshold=0.5,
                           sliding_window_type="time", sliding_window_size=5,
                           minimum_calls=100)
    assert (policy.sliding_window_size, policy.minimum_calls) == (5, 100)
    with pytest.raises(ConfigError) as info:
        BreakerPolicy(failure_threshold=None, failure_rate_threshold=0.5,
                      sliding_window_size=5, minimum_calls=100)
    assert info.value.key == "minimum_calls"


@pytest.mark.parametrize(("given", "stored"), [
    ("count", "count"), ("TIME", "time"), (" time_based ", "time"), ("COUNT_BASED", "count")])
def test_window_types_take_resilience4j_names_in_any_case(given: str, stored: str) -> None:
    """sliding_window_type accepts count/time and COUNT_BASED/TIME_BASED in any case, and
    stores the short lower-case name."""
    policy = BreakerPolicy(failure_threshold=None, failure_rate_threshold=0.5,
                           sliding_window_type=given)  # type: ignore[arg-type]
    assert policy.sliding_window_type == stored


def test_the_slow_rate_works_beside_either_failure_rule() -> None:
    """slow_call_rate_threshold goes with failures in a row or with the failure rate; both
    keep a window then (has_window), the plain failures-in-a-row policy does not."""
    beside_count = BreakerPolicy(failure_threshold=3, slow_call_duration=1.0,
                                 slow_call_rate_threshold=0.5)
    beside_rate = BreakerPolicy(failure_threshold=None, failure_rate_threshold=0.5,
                                slow_call_duration=1.0, slow_call_rate_threshold=0.5)
    assert beside_count.has_window
    assert beside_rate.has_window
    assert not BreakerPolicy().has_window


def test_defaults_come_from_configuration() -> None:
    """Arguments left out take error_handling.circuit_breaker.* from vigil.configure."""
    vigil.configure({"error_handling": {"circuit_breaker": {
        "default_failure_threshold": 2, "default_recovery_timeout": 7.5,
        "default_half_open_max_calls": 4}}})
    policy = CircuitBreaker(registry=CollectorRegistry()).policy
    assert (policy.failure_threshold, policy.recovery_timeout,
            policy.half_open_max_calls) == (2, 7.5, 4)


def test_from_config_fills_only_what_was_not_given() -> None:
    """from_config: None takes the configured default or the field's own; given values win;
    failure-rate mode leaves failure_threshold out instead of taking the default."""
    vigil.configure({"error_handling": {"circuit_breaker": {"default_failure_threshold": 9}}})
    assert BreakerPolicy.from_config() == dataclasses.replace(BreakerPolicy(),
                                                              failure_threshold=9)
    given = BreakerPolicy.from_config(failure_threshold=3, recovery_timeout=2.0,
                                      success_threshold=2, sliding_window_size=7,
                                      minimum_calls=7)
    assert (given.failure_threshold, given.recovery_timeout, given.success_threshold,
            given.sliding_window_size, given.minimum_calls) == (3, 2.0, 2, 7, 7)
    rate = BreakerPolicy.from_config(failure_rate_threshold=0.25)
    assert (rate.failure_threshold, rate.failure_rate_threshold) == (None, 0.25)


def test_the_policy_is_frozen() -> None:
    """A policy cannot be changed after it was validated."""
    policy = BreakerPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.failure_threshold = 0  # type: ignore[misc]


def test_breaker_options_are_the_policy_fields_beyond_the_seeds_two() -> None:
    """BreakerOptions declares every BreakerPolicy field except the two positional ones."""
    from vigil.error_handling.breaker import BreakerOptions

    assert set(BreakerOptions.__annotations__) == \
        {f.name for f in dataclasses.fields(BreakerPolicy)} - {"failure_threshold",
                                                               "recovery_timeout"}


def test_an_unknown_breaker_keyword_is_refused_by_name() -> None:
    """A misspelt setting raises TypeError naming it, not silently ignored."""
    with pytest.raises(TypeError, match="'half_open_max_call'"):
        CircuitBreaker(name="typo", half_open_max_call=2)  # type: ignore[call-arg]
