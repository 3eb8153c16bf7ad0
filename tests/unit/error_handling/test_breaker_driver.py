"""vigil.error_handling.breaker.driver: every way in counts alike; failure_on_result; the
manual states through CircuitBreaker; the rate events' metrics and log lines; lazy defaults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.error_handling.breaker_rig import STATES, Rig, fail, ok, raise_, rigs, trip

from vigil.error_handling.breaker import (
    CircuitBreaker,
    CircuitState,
    FailureRateExceeded,
    PredicateFailed,
    SlowCallRateExceeded,
    StateTransition,
)
from vigil.error_handling.errors import CircuitOpenError
from vigil.testing import capture_events

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    """Builds rigs (named ``svc`` unless told otherwise) and closes their alert managers."""
    with rigs() as build:
        yield build


# --- every way in -------------------------------------------------------------------------------

# One protected run per way: run(cb, clock, step) where step is "ok", "slow", "fail" (an
# expected OSError) or "other" (a KeyError, ignored). Each returns normally or raises.
Step = str


def _act(clock: Any, step: Step) -> None:
    if step == "slow":
        clock.advance(2.0)
    elif step == "fail":
        raise OSError("down")
    elif step == "other":
        raise KeyError("not the service")


def by_call(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    cb.call(_act, clock, step)


def by_decorator(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    cb(_act)(clock, step)


def by_protect(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    with cb.protect():
        _act(clock, step)


def by_generator(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    def rows() -> Iterator[int]:
        yield 1
        _act(clock, step)

    list(cb(rows)())


def by_call_async(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    async def act() -> None:
        await asyncio.sleep(0)
        _act(clock, step)

    asyncio.run(cb.call_async(act))


def by_async_decorator(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    async def act() -> None:
        await asyncio.sleep(0)
        _act(clock, step)

    asyncio.run(cb(act)())


def by_async_protect(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    async def main() -> None:
        async with cb.protect():
            await asyncio.sleep(0)
            _act(clock, step)

    asyncio.run(main())


def by_async_generator(cb: CircuitBreaker, clock: Any, step: Step) -> None:
    async def rows() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0)
        _act(clock, step)

    async def main() -> None:
        async for _ in cb(rows)():
            pass

    asyncio.run(main())


WAYS = [by_call, by_decorator, by_protect, by_generator, by_call_async, by_async_decorator,
        by_async_protect, by_async_generator]


@pytest.mark.parametrize("way", WAYS, ids=lambda way: way.__name__)
def test_every_way_in_counts_alike(make: Callable[..., Rig],
                                   way: Callable[[CircuitBreaker, Any, Step], None]) -> None:
    """call(), the decorator, protect() and generators, sync and async: the same steps give
    the same outcome counts, the same state and the same transitions (call() takes its permit
    without a Protection block for speed; this pins that it counts as one would)."""
    rig = make(failure_threshold=2, recovery_timeout=5.0, expected_exception=OSError,
               slow_call_duration=1.0)
    cb = rig.breaker
    script = ["ok", "other", "slow", "ok", "fail", "ok", "fail", "fail"]
    for step in script:
        with contextlib.suppress(OSError, KeyError):
            way(cb, rig.clock, step)
    assert cb.state == "OPEN"
    with pytest.raises(CircuitOpenError):
        way(cb, rig.clock, "ok")
    rig.clock.advance(5.0)
    way(cb, rig.clock, "ok")  # the probe closes it
    expected = {"success": 4, "slow": 1, "failure": 3, "ignored": 1, "rejected": 1}
    assert rig.all_calls() == expected
    assert cb.snapshot()["calls"] == expected
    assert cb.state == "CLOSED"
    assert [rig.transitions(*t) for t in (("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"),
                                          ("HALF_OPEN", "CLOSED"))] == [1, 1, 1]


# --- failure_on_result --------------------------------------------------------------------------


def test_a_refused_result_is_returned_and_counted_as_a_failure(
        make: Callable[..., Rig]) -> None:
    """failure_on_result: the value still reaches the caller; two refused results in a row
    open the breaker; an accepted one resets the count."""
    rig = make(failure_threshold=2, failure_on_result=lambda response: response["status"] >= 500)
    cb = rig.breaker
    assert cb.call(ok, {"status": 503}) == {"status": 503}
    assert cb.call(ok, {"status": 200}) == {"status": 200}
    assert cb.failure_count == 0
    assert cb(ok)({"status": 500}) == {"status": 500}
    assert cb.state == "CLOSED"
    assert cb.call(ok, {"status": 502}) == {"status": 502}
    assert cb.state == "OPEN"
    assert (rig.calls("failure"), rig.calls("success")) == (3, 1)
    assert cb.failure_on_result is not None


def test_failure_on_result_applies_to_async_calls(make: Callable[..., Rig]) -> None:
    """call_async and an async decorated function judge the awaited result."""
    rig = make(failure_threshold=2, failure_on_result=lambda value: value is None)

    async def lookup(found: bool) -> str | None:
        await asyncio.sleep(0)
        return "row" if found else None

    decorated = rig.breaker(lookup)

    async def main() -> None:
        assert await rig.breaker.call_async(lookup, False) is None
        assert await decorated(True) == "row"
        assert await decorated(False) is None

    asyncio.run(main())
    assert (rig.calls("failure"), rig.calls("success")) == (2, 1)


def test_a_raising_result_predicate_counts_a_failure_and_is_logged(
        make: Callable[..., Rig]) -> None:
    """A failure_on_result that raises: the value is still returned, the call is a failure,
    an ERROR line names the breaker and the result's type."""
    def broken(result: object) -> bool:
        raise TypeError("predicate bug")

    rig = make(failure_on_result=broken)
    assert rig.breaker.call(ok, 7) == 7
    assert rig.calls("failure") == 1
    line = rig.logs()[-1]
    assert (line["level"], line["metadata"]) == ("ERROR", {"breaker": "svc",
                                                           "result_type": "int"})
    assert "failure_on_result predicate raised" in line["message"]
    assert line["exception"]["type"] == "TypeError"  # published inside the except


def test_a_raising_predicate_is_a_predicate_failed_event(make: Callable[..., Rig]) -> None:
    """Both predicates publish PredicateFailed on cb.events, naming what they judged."""
    def broken(value: object) -> bool:
        raise TypeError("predicate bug")

    rig = make(failure_on_result=broken, expected_exception=broken)
    with capture_events(rig.breaker.events) as events:
        rig.breaker.call(ok, 7)
        with pytest.raises(KeyError):
            rig.breaker.call(raise_, KeyError("k"))
    assert events.of_type(PredicateFailed) == [
        PredicateFailed("svc", "failure_on_result", "int"),
        PredicateFailed("svc", "expected_exception", "KeyError")]


@pytest.mark.parametrize("where", ["failure_on_result", "expected_exception"])
def test_an_interrupt_inside_a_predicate_frees_the_probe_slot(
        make: Callable[..., Rig], where: str) -> None:
    """KeyboardInterrupt raised by either predicate propagates, the probe counts as ignored
    and its slot is free for the next probe."""
    state = {"interrupt": False}

    def predicate(value: object) -> bool:
        if state["interrupt"]:
            raise KeyboardInterrupt
        return where == "expected_exception"

    rig = make(failure_threshold=1, recovery_timeout=5.0, **{where: predicate})
    trip(rig)
    rig.clock.advance(5.0)
    probe: Callable[[], object] = (lambda: rig.breaker.call(ok)) \
        if where == "failure_on_result" else (lambda: rig.breaker.call(raise_, ValueError("x")))
    state["interrupt"] = True
    with pytest.raises(KeyboardInterrupt):
        probe()
    assert rig.calls("ignored") == 1
    state["interrupt"] = False
    assert rig.breaker.call(ok) == "ok"
    assert rig.breaker.state == "CLOSED"


def test_blocks_and_generators_have_no_result_to_judge(make: Callable[..., Rig]) -> None:
    """failure_on_result is not called for protect() blocks nor generators."""
    judged: list[object] = []

    def judge(value: object) -> bool:
        judged.append(value)
        return True

    rig = make(failure_on_result=judge)
    with rig.breaker.protect():
        pass

    @rig.breaker
    def rows() -> Iterator[int]:
        yield 1

    assert list(rows()) == [1]
    assert judged == []
    assert rig.calls("success") == 2


# --- the manual states through the breaker -------------------------------------------------------


@pytest.mark.parametrize("name", ["disabled", "Metrics_Only", "FORCED-OPEN", "half_open"])
def test_transition_to_takes_a_state_or_its_name(make: Callable[..., Rig], name: str) -> None:
    """transition_to accepts names in any case (and - for _); the gauge shows the new state
    alone and the transition is counted."""
    rig = make()
    target = CircuitState.parse(name)
    rig.breaker.transition_to(name)
    assert rig.breaker.state is target
    assert rig.gauges() == [1.0 if s == target.value else 0.0 for s in STATES]
    assert rig.transitions("CLOSED", target.value) == 1
    rig.breaker.transition_to(CircuitState.CLOSED)
    assert rig.transitions(target.value, "CLOSED") == 1


def test_an_unknown_state_names_the_six(make: Callable[..., Rig]) -> None:
    """transition_to("AJAR") raises ValueError listing every state; nothing changes."""
    rig = make()
    with pytest.raises(ValueError, match="DISABLED, METRICS_ONLY, FORCED_OPEN"):
        rig.breaker.transition_to("AJAR")
    assert rig.breaker.state == "CLOSED"


def test_disabled_lets_failures_through_and_still_counts_them(
        make: Callable[..., Rig]) -> None:
    """DISABLED: 10 failures with a threshold of 2 keep it DISABLED; the metrics count them."""
    rig = make(failure_threshold=2)
    rig.breaker.transition_to("DISABLED")
    fail(rig.breaker, 10)
    assert rig.breaker.state == "DISABLED"
    assert rig.calls("failure") == 10


def test_forced_open_rejects_and_reset_closes_it(make: Callable[..., Rig]) -> None:
    """FORCED_OPEN: CircuitOpenError with retry_after inf (or the fallback for call()), no
    probe after any wait, WARNING line and no alert; reset() closes it."""
    received: list[object] = []
    rig = make(recovery_timeout=1.0, fallback=lambda: "cached")
    rig.alerts.register_handler(received.append)
    cb = rig.breaker
    cb.transition_to("FORCED_OPEN")
    rig.clock.advance(1e6)
    assert cb.call(ok) == "cached"
    with pytest.raises(CircuitOpenError) as info, cb.protect():
        pass
    assert (info.value.state, info.value.retry_after) == ("FORCED_OPEN", math.inf)
    assert str(info.value) == "circuit breaker 'svc' is FORCED_OPEN; no probe until it is moved out"
    assert cb.state == "FORCED_OPEN"
    snap = cb.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["seconds_until_probe"] == 0.0
    assert rig.logs()[-1]["level"] == "WARNING"
    cb.reset()
    assert cb.state == "CLOSED"
    assert rig.alerts.flush(timeout=5.0)
    assert received == []
    assert rig.calls("rejected") == 2


def test_force_open_keeps_its_meaning(make: Callable[..., Rig]) -> None:
    """force_open(d) is OPEN for d seconds, then probes; from FORCED_OPEN too; it alerts."""
    received: list[object] = []
    rig = make(recovery_timeout=30.0)
    rig.alerts.register_handler(received.append)
    rig.breaker.transition_to("FORCED_OPEN")
    rig.breaker.force_open(2.0)
    assert (rig.breaker.state, rig.breaker.seconds_until_probe) == ("OPEN", 2.0)
    rig.clock.advance(2.0)
    assert rig.breaker.state == "HALF_OPEN"
    assert rig.alerts.flush(timeout=5.0)
    assert len(received) == 1


def test_metrics_only_reports_the_rate_but_never_opens(make: Callable[..., Rig]) -> None:
    """METRICS_ONLY with a failure rate: every call runs, the exceeded event is published,
    logged and counted once, and the breaker stays METRICS_ONLY."""
    rig = make(failure_rate_threshold=0.5, minimum_calls=2, sliding_window_size=2)
    cb = rig.breaker
    cb.transition_to("METRICS_ONLY")
    with capture_events(cb.events) as events:
        fail(cb, 6)
    assert cb.state == "METRICS_ONLY"
    assert [type(e) for e in events.events] == [FailureRateExceeded]
    assert rig.exceeded("failure") == 1
    assert rig.calls("failure") == 6


# --- the rate events -----------------------------------------------------------------------------


def test_the_failure_rate_event_is_published_logged_and_counted(
        make: Callable[..., Rig]) -> None:
    """Opening on the failure rate: a FailureRateExceeded on cb.events, a WARNING line with
    the rate, threshold and calls, rate_exceeded_total{rate="failure"} 1, then the OPEN."""
    rig = make(failure_rate_threshold=0.5, minimum_calls=4, sliding_window_size=4)
    with capture_events(rig.breaker.events) as events:
        rig.breaker.call(ok)
        rig.breaker.call(ok)
        fail(rig.breaker, 2)
    exceeded = events.of_type(FailureRateExceeded)
    assert [(e.rate, e.threshold, e.calls, e.state) for e in exceeded] == [
        (0.5, 0.5, 4, CircuitState.CLOSED)]
    warning, opened = rig.logs()[-2:]
    assert warning["metadata"] == {"breaker": "svc", "rate": "failure", "value": 0.5,
                                   "threshold": 0.5, "calls": 4, "state": "CLOSED"}
    assert warning["message"] == ("circuit breaker 'svc' failure rate 50% reached its "
                                  "threshold 50% over 4 calls")
    assert opened["metadata"]["to_state"] == "OPEN"
    assert (rig.exceeded("failure"), rig.exceeded("slow")) == (1, 0)


def test_the_slow_rate_event_opens_on_a_time_window(make: Callable[..., Rig]) -> None:
    """Slow calls over a 10 s time window: at 50% of 4 calls a SlowCallRateExceeded is
    published and counted (rate="slow"), and the breaker opens; slow calls are no failures."""
    rig = make(failure_threshold=5, slow_call_duration=1.0, slow_call_rate_threshold=0.5,
               sliding_window_type="time", sliding_window_size=10, minimum_calls=4)

    def slow() -> str:
        rig.clock.advance(1.5)
        return "late"

    with capture_events(rig.breaker.events) as events:
        for fn in (ok, slow, ok, slow):
            rig.breaker.call(fn)
    assert rig.breaker.state == "OPEN"
    assert rig.breaker.failure_count == 0
    assert [type(e) for e in events.events] == [SlowCallRateExceeded, StateTransition]
    assert rig.exceeded("slow") == 1
    snap = rig.breaker.snapshot()
    assert (snap["slow_call_rate"], snap["failure_rate"], snap["window_calls"]) == (0.5, 0.0, 4)


def test_the_snapshot_names_the_new_settings(make: Callable[..., Rig]) -> None:
    """snapshot()["config"] holds the window type, the slow rate and failure_on_result."""
    def refused(value: object) -> bool:
        return value is None

    rig = make(failure_rate_threshold=0.5, sliding_window_type="time",
               slow_call_duration=2.0, slow_call_rate_threshold=0.8, failure_on_result=refused)
    config = rig.breaker.snapshot()["config"]
    assert (config["sliding_window_type"], config["slow_call_rate_threshold"],
            config["failure_on_result"]) == ("time", 0.8, refused.__qualname__)
    assert json.loads(json.dumps(config)) == config


# --- defaults, lazily ----------------------------------------------------------------------------


def test_defaults_create_no_shared_object_until_needed() -> None:
    """A breaker with default wiring records on prometheus_client's default registry without
    building performance_monitor; the default alert manager is built only when it opens."""
    code = (
        "import json, prometheus_client\n"
        "import vigil.monitoring.alerts as alerts, vigil.monitoring.metrics as metrics\n"
        "from vigil.error_handling.breaker import CircuitBreaker\n"
        "cb = CircuitBreaker(failure_threshold=1, name='lazy')\n"
        "cb.call(lambda: 1)\n"
        "before = ['alert_manager' in vars(alerts), 'performance_monitor' in vars(metrics)]\n"
        "calls = prometheus_client.REGISTRY.get_sample_value(\n"
        "    'vigil_circuit_breaker_calls_total', {'breaker': 'lazy', 'outcome': 'success'})\n"
        "cb.force_open()\n"
        "sent = len(alerts.alert_manager.get_recent_alerts())\n"
        "print(json.dumps([before, calls, sent]))\n")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT / "exporter")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    before, calls, sent = json.loads(done.stdout.strip().splitlines()[-1])
    assert (before, calls, sent) == ([False, False], 1.0, 1)
