"""The ``error_handling.*`` settings: circuit breaker and retry defaults, and the recovery
manager's policy (names follow the seed's YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.config.errors import ConfigError
from vigil.config.fields import Settings, positive, setting
from vigil.config.recovery_entries import (
    CATEGORY_ENTRIES,
    ERROR_SEVERITIES,
    parse_category_entry,
    parse_policy_override,
)

__all__ = [
    "CircuitBreakerSettings",
    "ErrorHandlingSettings",
    "RecoverySettings",
    "RetrySettings",
]


@dataclass(frozen=True)
class CircuitBreakerSettings(Settings):
    default_failure_threshold: int = setting(
        5, minimum=1, doc="failures in a row that open a breaker")
    default_recovery_timeout: float = positive(
        60.0, "seconds a breaker stays OPEN before it lets a probe through")
    default_half_open_max_calls: int = setting(
        1, minimum=1, doc="probe calls a HALF_OPEN breaker admits at once")


@dataclass(frozen=True)
class RetrySettings(Settings):
    default_max_attempts: int = setting(3, minimum=1, doc="attempts, the first one included")
    default_initial_delay: float = setting(
        1.0, minimum=0, doc="seconds before the first retry (before jitter)")
    default_max_delay: float = setting(
        60.0, minimum=0, doc="cap on the seconds between two attempts")
    default_multiplier: float = setting(
        2.0, minimum=1, doc="growth of the delay from one retry to the next")
    default_jitter: bool = setting(
        True, doc="spread each delay randomly over the upper half of its window")


@dataclass(frozen=True)
class RecoverySettings(Settings):
    alert_min_severity: str = setting(
        "HIGH", choices=ERROR_SEVERITIES,
        doc="handled errors at this severity or above raise an alert")
    history_size: int = setting(1000, minimum=1, doc="handled errors kept for get_error_stats()")
    policy_overrides: tuple[str, ...] = setting(
        [], doc="CATEGORY.SEVERITY=action entries replacing the default policy table "
                "(CATEGORY or SEVERITY may be *)")
    max_tool_retries: int = setting(
        3, minimum=0, doc="retries handle_tool_failure allows per agent and tool")
    max_embedding_retries: int = setting(
        3, minimum=0, doc="retries handle_embedding_api_failure allows")
    categories: tuple[str, ...] = setting(
        [], doc="NAME=LOW/MEDIUM/HIGH/CRITICAL entries adding error categories beside the "
                "built-in seven, with their policy row (actions retry, fallback, skip, abort), "
                "e.g. PAYMENTS=retry/retry/fallback/abort")

    def __post_init__(self) -> None:
        if isinstance(self.alert_min_severity, str):
            object.__setattr__(self, "alert_min_severity", self.alert_min_severity.upper())
        super().__post_init__()
        names: list[str] = []
        for entry in self.categories:
            name, _row = parse_category_entry(entry)
            if name in names:
                raise ConfigError("categories", entry, CATEGORY_ENTRIES,
                                  hint=f"{name} is given twice")
            names.append(name)
        for entry in self.policy_overrides:
            parse_policy_override(entry, categories=tuple(names))


@dataclass(frozen=True)
class ErrorHandlingSettings(Settings):
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
