"""Concurrency: exact counts under 8 threads, breaker probes under 64, trace trees under mixing.

Already proven elsewhere (cited, not repeated): 64 threads at a HALF_OPEN breaker admit exactly
``half_open_max_calls`` (tests/unit/error_handling/test_breaker.py::
test_half_open_admits_only_max_probes_among_64_threads), four calls inside one breaker at once
(::test_no_lock_is_held_during_the_call), exact breaker outcome counts under 8 threads
(::test_counts_are_exact_under_concurrency), 8 threads x 500 nested traces
(tests/unit/monitoring/test_tracing.py::test_counts_are_exact_under_threads).

Heavy variants (``-m heavy``): 8 threads x 1,000,000 counter records with scrapes running,
200 half-open cycles, 5,000 interleaved requests' trace trees.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.conftest import HEAVY
from vigil.error_handling import CircuitBreaker, CircuitOpenError
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import bind_context, current_span
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock

WAIT = 10.0  # real seconds before a thread that should have finished counts as stuck
THREADS = 8


def _run_threads(target: Callable[[int], None], count: int = THREADS) -> None:
    """Run ``target(n)`` on ``count`` threads started together; re-raise the first error."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait(WAIT)
            target(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a worker thread is stuck"
    if errors:
        raise errors[0]


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape of ``registry``, parsed: (sample name, sorted labels) -> value."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# --- counters -------------------------------------------------------------------------------


@pytest.mark.parametrize("per_thread", [
    pytest.param(100_000, id="8x100k"),
    pytest.param(1_000_000, id="8x1M", marks=HEAVY),
])
def test_counter_total_is_exact_across_threads_while_scraped(per_thread: int) -> None:
    """8 threads x N increment_counter on one counter give exactly 8N; scrapes never go back."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    monitor.increment_counter("requests", 0)  # the series exists before the first scrape
    done = threading.Event()
    seen: list[float] = []

    def scraper() -> None:
        while not done.is_set():
            seen.append(_scrape(monitor.registry)[("requests_total", ())])

    scraping = threading.Thread(target=scraper)
    scraping.start()
    try:
        def record(_: int) -> None:
            increment = monitor.increment_counter
            for _ in range(per_thread):
                increment("requests")

        _run_threads(record)
    finally:
        done.set()
        scraping.join(WAIT)
    total = THREADS * per_thread
    assert monitor.registry.get_sample_value("requests_total") == total
    assert seen, "no scrape completed while recording"
    assert seen == sorted(seen), "a scrape saw the counter go backwards"
    assert seen[-1] <= total
    # The local seed view stays bounded however many records were made.
    assert monitor.get_metric_stats("requests")["count"] == 1000


def test_tagged_counter_children_are_exact_across_threads() -> None:
    """8 threads spreading 100k records each over 8 label values: every child is exact."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    per_thread = 100_000

    def record(n: int) -> None:
        increment = monitor.increment_counter
        for i in range(per_thread):
            increment("jobs", tags={"queue": f"q{(i + n) % 8}"})

    _run_threads(record)
    values = [monitor.registry.get_sample_value("jobs_total", {"queue": f"q{q}"})
              for q in range(8)]
    assert values == [THREADS * per_thread / 8] * 8


def test_decorated_function_counts_are_exact_and_every_scrape_is_consistent() -> None:
    """8 threads x 50k @monitor_performance calls: exact totals; each scrape self-consistent."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    per_thread = 50_000

    @monitor_performance("handle", monitor=monitor)
    def handle(n: int) -> int:
        if n % 1000 == 0:
            raise KeyError(n)
        return n

    done = threading.Event()
    problems: list[str] = []
    scrapes = 0

    def scraper() -> None:
        nonlocal scrapes
        key = (("function", "handle"),)
        while not done.is_set():
            s = _scrape(monitor.registry)
            count = s[("vigil_function_duration_seconds_count", key)]
            inf = s[("vigil_function_duration_seconds_bucket", (*key, ("le", "+Inf")))]
            calls = s[("vigil_function_calls_total", key)]
            running = s[("vigil_function_in_progress", key)]
            # in_progress is started-minus-finished read just after the snapshot, so calls that
            # start in between may show as running: only its sign is checked here.
            if not count == inf == calls or running < 0:
                problems.append(f"count={count} +Inf={inf} calls={calls} running={running}")
            scrapes += 1

    handle(1)  # registers the families before the scraper starts
    scraping = threading.Thread(target=scraper)
    scraping.start()
    try:
        def call(_: int) -> None:
            for i in range(per_thread):
                with contextlib.suppress(KeyError):
                    handle(i)

        _run_threads(call)
    finally:
        done.set()
        scraping.join(WAIT)
    total = THREADS * per_thread + 1
    reg = monitor.registry
    assert problems == []
    assert scrapes > 0
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "handle"}) == total
    assert reg.get_sample_value("vigil_function_duration_seconds_count",
                                {"function": "handle"}) == total
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "handle", "exception": "KeyError"}) == \
        THREADS * per_thread // 1000
    assert reg.get_sample_value("vigil_function_in_progress", {"function": "handle"}) == 0


# --- the breaker ----------------------------------------------------------------------------


def _breaker(max_calls: int, **kwargs: Any) -> tuple[CircuitBreaker, CollectorRegistry,
                                                     FakeClock, AlertManager]:
    registry, clock = CollectorRegistry(), FakeClock()
    alerts = AlertManager(registry=registry, clock=clock)
    logger = StructuredLogger("vigil.circuit_breaker", registry=registry, stream=io.StringIO())
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, name="probe",
                             half_open_max_calls=max_calls, clock=clock, registry=registry,
                             alert_manager=alerts, logger=logger, **kwargs)
    return breaker, registry, clock, alerts


@pytest.mark.parametrize(("max_calls", "cycles"), [
    pytest.param(1, 10, id="1-probe-10-cycles"),
    pytest.param(3, 10, id="3-probes-10-cycles"),
    pytest.param(3, 200, id="3-probes-200-cycles", marks=HEAVY),
])
def test_half_open_admits_exactly_the_probes_on_every_cycle(max_calls: int, cycles: int) -> None:
    """64 threads per OPEN->HALF_OPEN cycle, probes failing or passing: always max_calls in."""
    breaker, registry, clock, alerts = _breaker(max_calls)
    threads_n = 64
    try:
        for cycle in range(cycles):
            breaker.force_open()
            clock.advance(30.0)
            failing = cycle % 2 == 0
            arrived = threading.Semaphore(0)
            release = threading.Event()
            results: queue.Queue[object] = queue.Queue()

            def probe(fail: bool = failing, gate: threading.Event = release,
                      sem: threading.Semaphore = arrived) -> str:
                sem.release()
                gate.wait(WAIT)
                if fail:
                    raise ConnectionError("still down")
                return "ok"

            def worker(_: int, out: queue.Queue[object] = results) -> None:
                try:
                    out.put(breaker.call(probe))
                except (CircuitOpenError, ConnectionError) as err:
                    out.put(err)

            runner = threading.Thread(target=_run_threads, args=(worker, threads_n))
            runner.start()
            try:
                rejected = [results.get(timeout=WAIT) for _ in range(threads_n - max_calls)]
                for _ in range(max_calls):
                    assert arrived.acquire(timeout=WAIT), f"cycle {cycle}: a probe is missing"
                assert not arrived.acquire(timeout=0), f"cycle {cycle}: too many probes"
                assert all(isinstance(r, CircuitOpenError) for r in rejected), rejected
            finally:
                release.set()
                runner.join(WAIT)
            probes = [results.get_nowait() for _ in range(max_calls)]
            if failing:
                assert all(isinstance(p, ConnectionError) for p in probes)
                assert breaker.state == "OPEN"
            else:
                assert probes == ["ok"] * max_calls
                assert breaker.state == "CLOSED"
        rejected_total = registry.get_sample_value(
            "vigil_circuit_breaker_calls_total", {"breaker": "probe", "outcome": "rejected"})
        assert rejected_total == cycles * (threads_n - max_calls)
        assert registry.get_sample_value("vigil_circuit_breaker_transitions_total", {
            "breaker": "probe", "from_state": "OPEN", "to_state": "HALF_OPEN"}) == cycles
    finally:
        alerts.close()


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_exactly_the_probes_among_64_tasks(max_calls: int) -> None:
    """64 asyncio tasks at a HALF_OPEN breaker through call_async: exactly max_calls run."""
    breaker, _, clock, alerts = _breaker(max_calls)
    breaker.force_open()
    clock.advance(30.0)

    async def main() -> tuple[int, list[object]]:
        inside = 0
        release = asyncio.Event()

        async def probe() -> str:
            nonlocal inside
            inside += 1
            await release.wait()
            return "ok"

        async def attempt() -> object:
            try:
                return await breaker.call_async(probe)
            except CircuitOpenError as err:
                return err

        tasks = [asyncio.create_task(attempt()) for _ in range(64)]
        for _ in range(50):  # let every task reach the breaker; no wall-clock wait
            await asyncio.sleep(0)
        admitted = inside
        release.set()
        return admitted, list(await asyncio.gather(*tasks))

    try:
        admitted, results = asyncio.run(main())
    finally:
        alerts.close()
    assert admitted == max_calls
    assert results.count("ok") == max_calls
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 64 - max_calls
    assert breaker.state == "CLOSED"


def test_protected_call_can_use_its_own_breaker() -> None:
    """Inside a protected call (closed and half-open) the breaker's reads and a nested call
    through it return: a lock held across the call would deadlock this thread."""
    breaker, _, clock, alerts = _breaker(1)
    seen: list[object] = []

    def inner() -> str:
        return "nested"

    def protected() -> str:
        seen.append((breaker.state, breaker.failure_count, breaker.seconds_until_probe,
                     breaker.snapshot()["state"]))
        return breaker.call(inner) if breaker.state == "CLOSED" else "probe"

    def scenario() -> None:
        seen.append(breaker.call(protected))
        breaker.force_open()
        clock.advance(30.0)
        seen.append(breaker.call(protected))

    thread = threading.Thread(target=scenario, daemon=True)  # daemon: a deadlock must not hang
    thread.start()
    thread.join(WAIT)
    alerts.close()
    assert not thread.is_alive(), "a call inside a protected call deadlocked"
    assert seen == [("CLOSED", 0, 0.0, "CLOSED"), "nested",
                    ("HALF_OPEN", 0, 0.0, "HALF_OPEN"), "probe"]
    assert breaker.state == "CLOSED"


def test_no_lock_is_held_across_an_await() -> None:
    """Four coroutines on one event loop are inside call_async at once (a barrier needs all)."""
    breaker, registry, _, alerts = _breaker(1)

    async def main() -> list[str]:
        barrier = asyncio.Barrier(4)

        async def protected() -> str:
            await barrier.wait()
            return "done"

        return await asyncio.wait_for(
            asyncio.gather(*(breaker.call_async(protected) for _ in range(4))), WAIT)

    try:
        assert asyncio.run(main()) == ["done"] * 4
    finally:
        alerts.close()
    assert registry.get_sample_value("vigil_circuit_breaker_calls_total",
                                     {"breaker": "probe", "outcome": "success"}) == 4


# --- trace trees ----------------------------------------------------------------------------


@pytest.mark.parametrize("requests", [
    pytest.param(60, id="60-requests"),
    pytest.param(5000, id="5000-requests", marks=HEAVY),
])
def test_trace_trees_stay_correct_when_tasks_and_threads_interleave(requests: int) -> None:
    """Requests as asyncio tasks, each fanning out to tasks and executor threads (bind_context),
    beside plain threads tracing their own work: every child is under its own parent, every
    log line carries its own trace, and no pool thread keeps a span afterwards."""
    # Every request runs at once: room for all their entries, active and completed.
    tracer_registry = CollectorRegistry()
    tracer = ExecutionTracer(registry=tracer_registry, retention=requests * 20,
                             max_active=requests * 20)
    stream = io.StringIO()
    logger = StructuredLogger("reliability", registry=CollectorRegistry(), stream=stream,
                              buffer_size=100_000)
    steps = 3
    roots: dict[int, str] = {}
    inner_ids: dict[tuple[int, int], str] = {}
    lock = threading.Lock()

    def work(req: int, step: int) -> None:
        with trace_context("worker", "work", {"req": req, "step": step}, tracer=tracer), \
                trace_context("worker", "inner", {"req": req, "step": step},
                              tracer=tracer) as inner:
            with lock:
                inner_ids[(req, step)] = inner
            logger.info("inner", {"req": req, "step": step})

    async def request(req: int, pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        with trace_context("api", "request", {"req": req}, tracer=tracer) as root:
            roots[req] = root
            await asyncio.sleep(0)

            async def step(n: int) -> None:
                with trace_context("api", "step", {"req": req, "step": n}, tracer=tracer):
                    await asyncio.sleep(0)
                    await loop.run_in_executor(pool, bind_context(work), req, n)
                    await asyncio.sleep(0)

            await asyncio.gather(*(asyncio.create_task(step(n)) for n in range(steps)))
            here = current_span()
            assert here is not None
            assert here.span_id == root  # back in the request's own span after the fan-out

    bg_roots: dict[tuple[int, int], str] = {}

    def sub_job(n: int, i: int) -> None:
        with trace_context("bg", "sub", {"bg": n, "i": i}, tracer=tracer):
            pass

    def background(n: int) -> None:
        for i in range(requests // 4):
            with trace_context("bg", "job", {"bg": n, "i": i}, tracer=tracer) as job:
                with lock:
                    bg_roots[(n, i)] = job
                child = threading.Thread(target=bind_context(sub_job), args=(n, i))
                child.start()
                child.join(WAIT)

    async def main(pool: ThreadPoolExecutor) -> None:
        await asyncio.gather(*(request(r, pool) for r in range(requests)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        bg = threading.Thread(target=_run_threads, args=(background, 4))
        bg.start()
        asyncio.run(main(pool))
        bg.join(120)
        leftovers = {pool.submit(current_span).result() for _ in range(16)}
    assert leftovers == {None}, "a pool thread kept a span after its bound work ended"
    assert tracer.get_active_traces() == []
    assert tracer_registry.get_sample_value("vigil_traces_dropped_total",
                                            {"reason": "active_cap"}) == 0

    for req, root_id in roots.items():
        tree = tracer.get_trace_tree(root_id)
        assert tree is not None
        trace = tree["trace_id"]
        assert (tree["parent_id"], tree["metadata"], tree["status"]) == \
            (None, {"req": req}, "success")
        assert sorted(c["metadata"]["step"] for c in tree["children"]) == list(range(steps))
        for step_node in tree["children"]:
            n = step_node["metadata"]["step"]
            assert step_node["metadata"] == {"req": req, "step": n}
            assert [c["operation"] for c in step_node["children"]] == ["work"]
            work_node = step_node["children"][0]
            assert work_node["metadata"] == {"req": req, "step": n}
            assert [(c["operation"], c["metadata"]) for c in work_node["children"]] == \
                [("inner", {"req": req, "step": n})]
            assert work_node["children"][0]["id"] == inner_ids[(req, n)]
            for node in (step_node, work_node, work_node["children"][0]):
                assert node["trace_id"] == trace
    for (n, i), job in bg_roots.items():
        tree = tracer.get_trace_tree(job)
        assert tree is not None
        assert [(c["operation"], c["metadata"], c["trace_id"]) for c in tree["children"]] == \
            [("sub", {"bg": n, "i": i}, tree["trace_id"])]
    every_root = [*roots.values(), *bg_roots.values()]
    trace_ids = {tracer.get_trace(root)["trace_id"] for root in every_root}  # type: ignore[index]
    assert len(trace_ids) == len(every_root), "two roots share a trace id"

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == requests * steps
    for line in lines:
        req, n = line["metadata"]["req"], line["metadata"]["step"]
        assert line["span_id"] == inner_ids[(req, n)]
        assert line["trace_id"] == tracer.get_trace(roots[req])["trace_id"]  # type: ignore[index]
