"""The numbers a breaker decides by: :class:`BreakerPolicy`, frozen and validated.

``BreakerPolicy(...)`` takes explicit values (every field has the default documented in the
package); :meth:`BreakerPolicy.from_config` is what ``CircuitBreaker(...)`` uses: arguments left
as ``None`` take ``error_handling.circuit_breaker.default_*`` from the active configuration
(failure threshold, recovery timeout, half-open probes) or the field's default, the way
``RetryPolicy.from_config`` does for retries. A bad value raises
:class:`~vigil.config.ConfigError` naming the argument, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, TypedDict, Unpack

from vigil import validate
from vigil.config import ConfigError, get_config

__all__ = [
    "BreakerOptions",
    "BreakerPolicy",
    "MAX_TIME_WINDOW_SECONDS",
    "SlidingWindowType",
    "check_positive",
    "is_int",
]

SlidingWindowType: TypeAlias = Literal["count", "time"]

# A time window keeps one bucket per second that saw a call: an hour bounds it at 3,600.
MAX_TIME_WINDOW_SECONDS: Final = 3600

# Resilience4j's names (COUNT_BASED, TIME_BASED) are accepted beside vigil's.
_WINDOW_TYPES: Final[dict[str, SlidingWindowType]] = {
    "count": "count", "count_based": "count", "time": "time", "time_based": "time"}


def is_int(value: object) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive(key: str, value: object) -> None:
    """A finite number of seconds > 0, else ConfigError naming ``key``."""
    validate.number(key, value, minimum=0, exclusive=True)


class BreakerOptions(TypedDict, total=False):
    """The breaker's settings beyond the seed's two, as keyword arguments of
    :class:`~vigil.error_handling.breaker.CircuitBreaker` and :meth:`BreakerPolicy.from_config`
    (declared once, here; each is the :class:`BreakerPolicy` field of the same name). Left out
    or ``None``: the configured or the field's default."""

    half_open_max_calls: int | None
    success_threshold: int | None
    failure_rate_threshold: float | None
    minimum_calls: int | None
    sliding_window_size: int | None
    sliding_window_type: SlidingWindowType | None
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    open_duration_multiplier: float | None
    max_recovery_timeout: float | None


_SETTINGS: Final = frozenset(BreakerOptions.__annotations__)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """The numbers a :class:`~vigil.error_handling.breaker.BreakerStateMachine` decides by.

    Opening rules: failures in a row (``failure_threshold``) or, when
    ``failure_rate_threshold`` is given, the failure rate over the sliding window (then
    ``failure_threshold`` must be ``None``); and, beside either, the slow-call rate when
    ``slow_call_rate_threshold`` is given. The window is the last ``sliding_window_size``
    calls (``sliding_window_type="count"``) or the calls of the last ``sliding_window_size``
    seconds (``"time"``). See the package documentation for each field's meaning.
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
    sliding_window_type: SlidingWindowType = "count"
    slow_call_rate_threshold: float | None = None

    def __post_init__(self) -> None:
        rate = self.failure_rate_threshold
        if rate is None:
            validate.integer("failure_threshold", self.failure_threshold, minimum=1)
        else:
            validate.ratio("failure_rate_threshold", rate)
            if self.failure_threshold is not None:
                raise ConfigError(
                    "failure_threshold", self.failure_threshold,
                    "must be left out when failure_rate_threshold is given (the failure-rate "
                    "mode replaces the failures-in-a-row rule)")
        check_positive("recovery_timeout", self.recovery_timeout)
        validate.integer("half_open_max_calls", self.half_open_max_calls, minimum=1)
        validate.integer("success_threshold", self.success_threshold, minimum=1)
        window_type = _window_type(self.sliding_window_type)
        object.__setattr__(self, "sliding_window_type", window_type)
        validate.integer("sliding_window_size", self.sliding_window_size, minimum=1)
        validate.integer("minimum_calls", self.minimum_calls, minimum=1)
        if window_type == "count" and self.minimum_calls > self.sliding_window_size:
            raise ConfigError("minimum_calls", self.minimum_calls,
                              f"must be <= sliding_window_size ({self.sliding_window_size}), "
                              "or the failure rate could never be judged")
        if window_type == "time" and self.sliding_window_size > MAX_TIME_WINDOW_SECONDS:
            raise ConfigError("sliding_window_size", self.sliding_window_size,
                              f"must be <= {MAX_TIME_WINDOW_SECONDS} seconds for a time window "
                              "(one bucket per second is kept)")
        if self.slow_call_duration is not None:
            check_positive("slow_call_duration", self.slow_call_duration)
        slow_rate = self.slow_call_rate_threshold
        if slow_rate is not None:
            validate.ratio("slow_call_rate_threshold", slow_rate)
            if self.slow_call_duration is None:
                raise ConfigError("slow_call_rate_threshold", slow_rate,
                                  "needs slow_call_duration (the seconds after which a call "
                                  "is slow)")
        if window_type == "time" and not self.has_window:
            raise ConfigError("sliding_window_type", window_type,
                              "applies only with failure_rate_threshold or "
                              "slow_call_rate_threshold (no other rule uses a window)")
        validate.number("open_duration_multiplier", self.open_duration_multiplier, minimum=1)
        cap = self.max_recovery_timeout
        if cap is not None:
            check_positive("max_recovery_timeout", cap)
            if cap < self.recovery_timeout:
                raise ConfigError("max_recovery_timeout", cap,
                                  f"must be >= recovery_timeout ({self.recovery_timeout})")

    @property
    def has_window(self) -> bool:
        """Whether a rate rule is on, so calls are kept in a sliding window."""
        return self.failure_rate_threshold is not None or \
            self.slow_call_rate_threshold is not None

    @classmethod
    def from_config(cls, *, failure_threshold: int | None = None,
                    recovery_timeout: float | None = None,
                    **settings: Unpack[BreakerOptions]) -> BreakerPolicy:
        """A policy whose ``None`` values come from ``error_handling.circuit_breaker`` (the
        three ``default_*`` keys) or else the field's default (``None`` means "off" for the
        optional rules). ``failure_threshold`` takes no default in failure-rate mode.

        ``settings`` are :class:`BreakerOptions`; any other keyword raises ``TypeError``
        naming it (as a declared parameter list would).
        """
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}; the breaker's "
                            f"settings are failure_threshold, recovery_timeout, "
                            f"{', '.join(sorted(_SETTINGS))}")
        defaults = get_config().error_handling.circuit_breaker
        if failure_threshold is None and settings.get("failure_rate_threshold") is None:
            failure_threshold = defaults.default_failure_threshold
        given: dict[str, Any] = {
            **settings,
            "recovery_timeout": defaults.default_recovery_timeout if recovery_timeout is None
            else recovery_timeout}
        if settings.get("half_open_max_calls") is None:
            given["half_open_max_calls"] = defaults.default_half_open_max_calls
        # None is "not given": the dataclass's own default applies (one place declares it).
        # failure_threshold is passed as it is: None is its value in failure-rate mode.
        return cls(failure_threshold=failure_threshold,
                   **{key: value for key, value in given.items() if value is not None})


def _window_type(value: object) -> SlidingWindowType:
    found = _WINDOW_TYPES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ConfigError("sliding_window_type", value,
                          "must be 'count' (the last sliding_window_size calls) or 'time' "
                          "(the calls of the last sliding_window_size seconds)")
    return found
