"""vigil.monitoring.alerts as a package: its names, the lazy shared manager, and its parts.

The package re-exports its modules' public names; ``alert_manager`` is built on first use and
lives as the package's global (patchable); the bounded container, the de-duplication index and
the failure reporting are checked on their own, and the pool's lock is made again in a fork.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.test_forks import in_child

import vigil
import vigil.monitoring
from vigil import testing
from vigil.monitoring import alerts
from vigil.monitoring.alerts import building, manager, model, runner
from vigil.monitoring.alerts.budget import BudgetedLog
from vigil.monitoring.alerts.dedup import RepeatIndex
from vigil.testing import FakeClock
from vigil.vocabulary import SEVERITY_NAMES

WAIT = 5.0  # real seconds a test waits for worker threads before failing (never slept)

# The module each public name of the package comes from.
OWNERS = {"FIRING": model, "RESOLVED": model, "Alert": model, "AlertHandler": model,
          "AlertSeverity": model, "AlertManager": manager, "HandlerRunner": runner}


def test_every_public_name_is_the_owning_modules_object() -> None:
    """Each name of __all__ is its module's own object, and the names in use before the split
    (SEVERITY_NAMES, alert_manager, HandlerRunner) are all still there."""
    assert sorted(alerts.__all__) == sorted([*OWNERS, "SEVERITY_NAMES", "alert_manager"])
    for name, module in OWNERS.items():
        assert getattr(alerts, name) is getattr(module, name), name
    assert alerts.SEVERITY_NAMES is SEVERITY_NAMES
    assert vigil.monitoring.AlertManager is alerts.AlertManager


def test_importing_the_package_builds_no_shared_manager() -> None:
    """``import vigil`` and the package leave alert_manager unbuilt (no metric families on the
    default registry) until it is first read; then it is the package's plain global."""
    script = (
        "import vigil, vigil.monitoring.alerts as alerts\n"
        "from prometheus_client import REGISTRY\n"
        "names = lambda: {m.name for m in REGISTRY.collect()}\n"
        "assert 'alert_manager' not in vars(alerts)\n"
        "assert 'vigil_alerts' not in names()\n"
        "built = vigil.alert_manager\n"
        "assert vars(alerts)['alert_manager'] is built is alerts.alert_manager\n"
        "assert 'vigil_alerts' in names()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_patching_the_package_global_is_seen_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """monkeypatch.setattr on the package's alert_manager is what vigil, vigil.monitoring and
    capture_alerts() answer."""
    replacement = alerts.AlertManager(registry=CollectorRegistry(), clock=FakeClock())
    try:
        monkeypatch.setattr(alerts, "alert_manager", replacement)
        assert vigil.alert_manager is vigil.monitoring.alert_manager is replacement
        with testing.capture_alerts() as captured:
            replacement.send_alert("low", "patched", "m")
        assert [a.component for a in captured.alerts(WAIT)] == ["patched"]
    finally:
        replacement.close()


# --- the bounded container ----------------------------------------------------------------


def test_budgeted_log_trims_oldest_first_by_count_and_bytes() -> None:
    """Past the count or the byte budget the oldest entries go; bytes follow every change."""
    log: BudgetedLog[str] = BudgetedLog()
    for name, size in (("a", 10), ("b", 20), ("c", 30)):
        log.add(name, size)
    log.trim(limit=2, budget=1000)
    assert (log.values(), log.bytes) == (["b", "c"], 50)
    log.trim(limit=10, budget=35)
    assert (log.values(), log.bytes) == (["c"], 30)


def test_budgeted_log_keeps_the_newest_entry_however_large() -> None:
    """A single entry larger than the budget stays; the next one replaces it."""
    log: BudgetedLog[str] = BudgetedLog()
    log.add("huge", 1_000)
    log.trim(limit=5, budget=10)
    assert log.values() == ["huge"]
    log.add("small", 1)
    log.trim(limit=5, budget=10)
    assert (log.values(), log.bytes, len(log)) == (["small"], 1, 1)


def test_budgeted_log_replaces_a_keyed_entry_and_moves_it_to_the_newest_end() -> None:
    """add(key=) drops that key's entry (and its bytes) and appends the new one; unkeyed
    entries never collide, even holding equal values."""
    log: BudgetedLog[str] = BudgetedLog()
    log.add("one", 5, key="k")
    log.add("other", 7, key="j")
    log.add("two", 3, key="k")
    assert (log.values(), log.bytes, log.get("k"), log.oldest()) == (["other", "two"], 10,
                                                                      "two", "other")
    same: BudgetedLog[str] = BudgetedLog()
    same.add("x", 1)
    same.add("x", 1)
    assert same.values() == ["x", "x"]
    empty: BudgetedLog[str] = BudgetedLog()
    assert (empty.oldest(), empty.get("k")) == (None, None)


def _alert(fingerprint: str = "f", status: str = "firing") -> alerts.Alert:
    return building.build_alert("high", "c", "m", timestamp=0.0, fingerprint=fingerprint,
                                status=status)


def test_repeat_index_window_is_fixed_from_the_dispatch() -> None:
    """A repeat is found until exactly window seconds after the dispatch, then forgotten (and
    its bytes freed); a different status is never a repeat."""
    index = RepeatIndex()
    first = _alert()
    index.remember(first, now=100.0, size=50)
    assert index.repeat_of(_alert(), now=159.999, window=60.0) is first
    assert index.repeat_of(_alert(status="resolved"), now=101.0, window=60.0) is None
    assert index.repeat_of(_alert(), now=160.0, window=60.0) is None
    assert index._dispatched.bytes == 0
    index.remember(first, now=200.0, size=50)
    assert index.repeat_of(_alert(), now=200.0, window=0.0) is None  # window 0: off


# --- failures and the fork ----------------------------------------------------------------


class BrokenLogger:
    """A logger whose every call raises: the manager must carry on."""

    calls = 0

    def debug(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        raise OSError("log sink down")

    def info(self, message: str, metadata: Mapping[str, Any] | None = None, *,
             exc_info: Any = None) -> None:
        raise OSError("log sink down")

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None, *,
                exc_info: Any = None) -> None:
        BrokenLogger.calls += 1
        raise OSError("log sink down")

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        BrokenLogger.calls += 1
        raise OSError("log sink down")


def test_a_broken_logger_breaks_neither_send_alert_nor_the_worker() -> None:
    """A raising handler, a dropped alert and a hung call all log through a logger that raises:
    send_alert still returns, each failure is still counted, the worker keeps working."""
    registry, clock = CollectorRegistry(), FakeClock()
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def handler(alert: alerts.Alert) -> None:
        calls.append(alert.message)
        if alert.message == "raise":
            raise RuntimeError("handler bug")
        if alert.message == "block":
            started.set()
            release.wait(30)

    BrokenLogger.calls = 0
    with alerts.AlertManager(registry=registry, clock=clock, logger=BrokenLogger(),
                             queue_size=1, handler_timeout=1.0, dedup_window=0) as alerting:
        alerting.register_handler(handler)
        alerting.send_alert("low", "c", "raise")
        assert alerting.flush(WAIT)
        alerting.send_alert("low", "c", "block")
        assert started.wait(WAIT)
        alerting.send_alert("low", "c", "queued")
        alerting.send_alert("low", "c", "dropped")  # queue full
        clock.advance(2.0)
        alerting.send_alert("low", "c", "dropped too")  # notices the hung call
        release.set()
        assert alerting.flush(WAIT)
    name = handler.__qualname__

    def failures(reason: str) -> float:
        return registry.get_sample_value("vigil_alert_handler_failures_total",
                                         {"handler": name, "reason": reason}) or 0.0

    assert (failures("error"), failures("dropped"), failures("hung")) == (1, 2, 1)
    assert calls == ["raise", "block", "queued"]
    assert BrokenLogger.calls == 3  # raised, first drop of the run, hung


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_child_forked_while_the_lock_is_held_can_still_send() -> None:
    """The pool's one lock, held by another thread at the fork, is made again in the child:
    the child's send_alert, flush and get_recent_alerts do not hang."""
    alerting = alerts.AlertManager(registry=CollectorRegistry())
    seen: list[str] = []
    alerting.register_handler(lambda alert: seen.append(alert.message))
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with alerting._pool.lock:
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(WAIT)

        def child() -> list[Any]:
            signal.alarm(20)  # a child stuck on the parent's lock dies, and the test fails
            alerting.send_alert("high", "c", "from the child")
            assert alerting.flush(WAIT)
            return [seen, [a.message for a in alerting.get_recent_alerts()]]

        assert in_child(child) == [["from the child"], ["from the child"]]
    finally:
        done.set()
        holder.join(WAIT)
        alerting.close()

