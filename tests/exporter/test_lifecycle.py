"""vigil_exporter.lifecycle.StoreLifecycle on its own: what start and stop leave on the app's
state, whose store is closed, two apps on one registry, and a delivery loop that fails to stop.
(Through create_app's lifespan and a mounted app: tests/exporter/test_app.py.)"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.datastructures import State

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.testing import FakeClock
from vigil_exporter.lifecycle import StoreLifecycle
from vigil_exporter.store.sqlite import SQLiteStore

WAIT = 5.0  # real seconds a delivery loop gets to stop (joined, never slept)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry for each test."""
    return CollectorRegistry()


@pytest.fixture
def manager(registry: CollectorRegistry) -> Iterator[AlertManager]:
    """An AlertManager on a fake clock, closed after the test."""
    manager = AlertManager(registry=registry, clock=FakeClock())
    yield manager
    manager.close()


def lifecycle(state: State, registry: CollectorRegistry, manager: AlertManager,
              stream: io.StringIO, **kwargs: object) -> StoreLifecycle:
    """A StoreLifecycle on ``state`` logging to ``stream``."""
    logger = StructuredLogger("test-lifecycle", stream=stream, registry=registry)
    return StoreLifecycle(state, settings=ExporterSettings(shutdown_timeout=WAIT),
                          registry=registry, manager=manager, logger=logger,
                          **kwargs)  # type: ignore[arg-type]


def pending(registry: CollectorRegistry) -> float | None:
    """The store's pending-alerts gauge, None when no store is reported."""
    return registry.get_sample_value("vigil_webhook_store_alerts", {"state": "pending"})


def test_state_starts_closed() -> None:
    """Before start the webhook and /readyz see no store, no loop and nothing accepted."""
    state = State()
    registry = CollectorRegistry()
    with AlertManager(registry=registry, clock=FakeClock()) as manager:
        lifecycle(state, registry, manager, io.StringIO())
    assert (state.store, state.delivery, state.accepting, state.collector) == \
        (None, None, False, None)


def test_start_opens_and_stop_closes_its_own_store(registry: CollectorRegistry,
                                                   manager: AlertManager,
                                                   tmp_path: Path) -> None:
    """start opens the store in state_dir, reports it and runs the loop; stop ends the loop,
    unregisters the gauges and closes the store it opened."""
    state = State()
    life = lifecycle(state, registry, manager, io.StringIO(), state_dir=str(tmp_path))
    life.start()
    store, delivery = state.store, state.delivery
    assert state.accepting
    assert delivery.alive
    assert (tmp_path / "alerts.sqlite3").exists()
    assert pending(registry) == 0
    life.stop()
    assert not state.accepting
    assert not delivery.alive
    assert pending(registry) is None
    assert state.collector is None
    with pytest.raises(sqlite3.ProgrammingError):
        store.stats()


def test_a_callers_store_stays_open(registry: CollectorRegistry, manager: AlertManager,
                                    tmp_path: Path) -> None:
    """A store passed in is used, and still usable after stop."""
    own = SQLiteStore(tmp_path, ExporterSettings())
    try:
        state = State()
        life = lifecycle(state, registry, manager, io.StringIO(), store=own)
        life.start()
        assert state.store is own
        life.stop()
        assert own.stats().pending_alerts == 0
    finally:
        own.close()


def test_a_second_app_on_one_registry_warns_and_still_accepts(
        registry: CollectorRegistry, manager: AlertManager, tmp_path: Path) -> None:
    """Two lifecycles on one registry: the second's gauges are not registered (a warning, not
    an error), it accepts all the same, and stopping it leaves the first's gauges."""
    first, second = State(), State()
    log = io.StringIO()
    one = lifecycle(first, registry, manager, io.StringIO(), state_dir=str(tmp_path / "1"))
    two = lifecycle(second, registry, manager, log, state_dir=str(tmp_path / "2"))
    one.start()
    try:
        two.start()
        assert "already registered on this registry" in log.getvalue()
        assert second.accepting
        assert second.collector is None
        assert second.delivery.alive
        two.stop()
        assert pending(registry) == 0  # the first's, still reported
    finally:
        one.stop()
    assert pending(registry) is None


def test_stop_before_start_does_nothing(registry: CollectorRegistry,
                                        manager: AlertManager) -> None:
    """stop with nothing started (a lifespan that failed to start) raises nothing."""
    state = State()
    lifecycle(state, registry, manager, io.StringIO()).stop()
    assert state.accepting is False
    assert state.store is None


class FailingStop:
    """A delivery loop whose stop raises."""

    def stop(self) -> None:
        raise RuntimeError("stop failed")


def test_a_failing_delivery_stop_still_releases_the_store(
        registry: CollectorRegistry, manager: AlertManager, tmp_path: Path) -> None:
    """When the delivery loop's stop raises, the error propagates and the gauges are still
    unregistered and the store it opened still closed."""
    state = State()
    life = lifecycle(state, registry, manager, io.StringIO(), state_dir=str(tmp_path))
    life.start()
    real, store = state.delivery, state.store
    state.delivery = FailingStop()
    try:
        with pytest.raises(RuntimeError, match="stop failed"):
            life.stop()
        assert pending(registry) is None
        with pytest.raises(sqlite3.ProgrammingError):
            store.stats()
    finally:
        real.stop(WAIT)
