"""What the breaker tests share: a breaker wired to its own registry, fake clock, alert manager
and log capture (vigil.testing's FakeClock, LogCapture, MetricReader), and the little functions
they call through it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vigil.error_handling.breaker import CircuitBreaker
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.testing import FakeClock, LogCapture, MetricReader

WAIT = 5.0  # real seconds a test waits for other threads before failing (never slept)
STATES = ("CLOSED", "OPEN", "HALF_OPEN", "DISABLED", "METRICS_ONLY", "FORCED_OPEN")
OUTCOMES = ("success", "slow", "failure", "ignored", "rejected")


@dataclasses.dataclass
class Rig:
    """A breaker wired to its own registry, fake clock, alert manager and log buffer."""

    breaker: CircuitBreaker
    registry: CollectorRegistry
    clock: FakeClock
    alerts: AlertManager
    logger: StructuredLogger
    stream: io.StringIO

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def calls(self, outcome: str) -> float:
        return MetricReader(self.registry).value("vigil_circuit_breaker_calls_total",
                                                 breaker=self.breaker.name, outcome=outcome)

    def all_calls(self) -> dict[str, float]:
        """Every outcome's count (the metrics' view, to compare with snapshot()["calls"])."""
        return {outcome: self.calls(outcome) for outcome in OUTCOMES}

    def gauge(self, state: str) -> float | None:
        return self.sample("vigil_circuit_breaker_state", breaker=self.breaker.name, state=state)

    def gauges(self) -> list[float | None]:
        """The state gauge's six series, in STATES order."""
        return [self.gauge(state) for state in STATES]

    def transitions(self, from_state: str, to_state: str) -> float:
        return MetricReader(self.registry).value(
            "vigil_circuit_breaker_transitions_total", breaker=self.breaker.name,
            from_state=from_state, to_state=to_state)

    def exceeded(self, rate: str) -> float | None:
        return self.sample("vigil_circuit_breaker_rate_exceeded_total",
                           breaker=self.breaker.name, rate=rate)

    def logs(self) -> list[dict[str, Any]]:
        return self.logger.get_recent_logs(count=1000)


@contextlib.contextmanager
def rigs() -> Iterator[Callable[..., Rig]]:
    """A builder of rigs (named ``svc`` unless told otherwise); closes their alert managers."""
    managers: list[AlertManager] = []

    def build(**kwargs: Any) -> Rig:
        registry, clock = CollectorRegistry(), FakeClock()
        alerts = AlertManager(registry=registry, clock=clock)
        managers.append(alerts)
        capture = LogCapture()
        stream = capture.stream
        logger = capture.logger("vigil.circuit_breaker", registry=registry)
        kwargs.setdefault("name", "svc")
        breaker = CircuitBreaker(clock=clock, registry=registry, alert_manager=alerts,
                                 logger=logger, **kwargs)
        return Rig(breaker, registry, clock, alerts, logger, stream)

    try:
        yield build
    finally:
        for manager in managers:
            manager.close()


def raise_(exc: BaseException) -> Any:
    raise exc


def ok(value: Any = "ok") -> Any:
    return value


def fail(cb: CircuitBreaker, times: int = 1, exc_type: type[Exception] = ValueError) -> None:
    for _ in range(times):
        with pytest.raises(exc_type):
            cb.call(raise_, exc_type("boom"))


def trip(rig: Rig) -> None:
    """Fail the rig's breaker until it opens."""
    for _ in range(100):
        if rig.breaker.state == "OPEN":
            return
        fail(rig.breaker)
    raise AssertionError("breaker did not open")
