"""ExecutionTracer, trace_context and trace_execution: the seed's examples, ids, nesting and the
package's face (its names, the shared tracer, the configuration)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import load_config
from vigil.monitoring import tracing
from vigil.monitoring.context import (
    SpanContext,
    bind_context,
    continue_trace,
    current_span,
    format_traceparent,
)
from vigil.monitoring.tracing import ExecutionTracer, trace_context, trace_execution
from vigil.testing import FakeClock, LogCapture

SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
DURATION = "vigil_trace_duration_seconds"
SUBMODULES = ("decorators", "durations", "entry", "generators", "outcome", "scope", "shared",
              "tracer")


def in_threads(count: int, worker: Callable[[int], object]) -> None:
    """Run ``worker(n)`` for n in range(count), each in its own thread, and wait for all."""
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Rig:
    """A tracer with its own fake clock, registry and logger."""

    def __init__(self, **kwargs: Any) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.logs = LogCapture()
        self.logger = self.logs.logger("vigil.tracing")
        self.tracer = ExecutionTracer(clock=self.clock, registry=self.registry,
                                      logger=self.logger, **kwargs)

    def sample(self, suffix: str, component: str, operation: str,
               status: str = "success") -> float | None:
        return self.registry.get_sample_value(
            DURATION + suffix,
            {"component": component, "operation": operation, "status": status})

    def warnings(self) -> list[tuple[str, dict[str, Any] | None]]:
        """The tracer's WARNING lines, as (message, metadata)."""
        return [(line["message"], line.get("metadata") or None)
                for line in self.logs.lines() if line["level"] == "WARNING"]

    def dropped(self, reason: str = "active_cap") -> float | None:
        return self.registry.get_sample_value("vigil_traces_dropped_total", {"reason": reason})



# --- the seed's examples ------------------------------------------------------------------


def test_manual_start_end_records_entry_duration_and_metric() -> None:
    """start_trace/end_trace store the entry with RFC 3339 times, duration_ms and a histogram."""
    rig = Rig()
    trace_id = rig.tracer.start_trace(component="Orchestrator", operation="process_request",
                                      metadata={"user_id": "123"})
    rig.clock.advance(0.25)
    rig.tracer.end_trace(trace_id, status="success")

    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    assert entry["id"] == trace_id
    assert entry["component"] == "Orchestrator"
    assert entry["operation"] == "process_request"
    assert entry["status"] == "success"
    assert entry["metadata"] == {"user_id": "123"}
    assert entry["error"] is None
    assert entry["parent_id"] is None
    assert entry["start"] == "2026-01-01T00:00:00.000Z"
    assert entry["end"] == "2026-01-01T00:00:00.250Z"
    assert entry["duration_ms"] == 250
    assert "children" not in entry
    assert rig.sample("_sum", "Orchestrator", "process_request") == 0.25
    assert rig.sample("_count", "Orchestrator", "process_request") == 1
    assert rig.tracer.get_active_traces() == []
    assert rig.warnings() == []


def test_missing_traces_troubleshooting_example() -> None:
    """An entry shows in get_active_traces until it is ended in a finally block."""
    rig = Rig()
    trace_id = rig.tracer.start_trace("Component", "operation")
    active = rig.tracer.get_active_traces()
    assert [a["id"] for a in active] == [trace_id]
    assert active[0]["status"] == "active"
    assert active[0]["end"] is None
    assert active[0]["duration_ms"] is None
    try:
        pass
    finally:
        rig.tracer.end_trace(trace_id)
    assert rig.tracer.get_active_traces() == []


def test_decorator_on_async_function() -> None:
    """@trace_execution on an async def traces each call and keeps the coroutine function."""
    rig = Rig()

    @trace_execution("MyComponent", "my_operation", tracer=rig.tracer)
    async def my_operation() -> str:
        """Docs."""
        await asyncio.sleep(0)
        rig.clock.advance(0.5)
        return "done"

    assert inspect.iscoroutinefunction(my_operation)
    assert my_operation.__name__ == "my_operation"
    assert my_operation.__doc__ == "Docs."
    assert asyncio.run(my_operation()) == "done"
    (entry,) = rig.tracer.get_recent_traces()
    assert (entry["component"], entry["operation"], entry["status"]) == (
        "MyComponent", "my_operation", "success")
    assert entry["duration_ms"] == 500
    assert rig.sample("_count", "MyComponent", "my_operation") == 1


def test_context_manager_yields_the_entry_id() -> None:
    """with trace_context(...) as trace_id yields the id of a stored, completed entry."""
    rig = Rig()
    with trace_context("MyComponent", "operation", tracer=rig.tracer) as trace_id:
        assert [a["id"] for a in rig.tracer.get_active_traces()] == [trace_id]
        rig.clock.advance(0.125)
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    assert entry["status"] == "success"
    assert entry["duration_ms"] == 125


def test_trace_hierarchy_example() -> None:
    """A child started with parent_trace_id appears under its parent in get_trace_tree."""
    rig = Rig()
    parent_id = rig.tracer.start_trace("Parent", "parent_op")
    rig.clock.advance(0.01)
    child_id = rig.tracer.start_trace("Child", "child_op", parent_trace_id=parent_id)
    rig.clock.advance(0.01)
    second_id = rig.tracer.start_trace("Child", "second_op", parent_trace_id=parent_id)
    grandchild_id = rig.tracer.start_trace("Grandchild", "g_op", parent_trace_id=child_id)
    rig.tracer.end_trace(child_id)

    tree = rig.tracer.get_trace_tree(parent_id)
    assert tree is not None
    assert tree["id"] == parent_id
    assert tree["status"] == "active"
    assert [c["id"] for c in tree["children"]] == [child_id, second_id]
    child, second = tree["children"]
    assert child["status"] == "success"
    assert child["parent_id"] == parent_id
    assert second["status"] == "active"
    assert [g["id"] for g in child["children"]] == [grandchild_id]
    assert child["children"][0]["children"] == []
    assert {tree["trace_id"], child["trace_id"], second["trace_id"],
            child["children"][0]["trace_id"]} == {tree["trace_id"]}
    subtree = rig.tracer.get_trace_tree(child_id)
    assert subtree is not None
    assert [g["id"] for g in subtree["children"]] == [grandchild_id]
    assert rig.tracer.get_trace_tree("0123456789abcdef") is None


# --- ids ----------------------------------------------------------------------------------


def test_ids_are_w3c_hex_and_a_tree_shares_one_trace_id() -> None:
    """Entry ids are 16-hex span ids; trace ids are 32 hex, shared by every nested entry."""
    rig = Rig()
    with trace_context("A", "root", tracer=rig.tracer) as root_id:
        span = current_span()
        assert span is not None
        assert span.span_id == root_id
        with trace_context("A", "child", tracer=rig.tracer) as child_id:
            manual_id = rig.tracer.start_trace("A", "manual")
            rig.tracer.end_trace(manual_id)
    other_id = rig.tracer.start_trace("B", "other")

    root = rig.tracer.get_trace(root_id)
    child = rig.tracer.get_trace(child_id)
    manual = rig.tracer.get_trace(manual_id)
    other = rig.tracer.get_trace(other_id)
    assert root
    assert child
    assert manual
    assert other
    for entry in (root, child, manual, other):
        assert SPAN_ID.match(entry["id"])
        assert entry["id"] != "0" * 16
        assert TRACE_ID.match(entry["trace_id"])
        assert entry["trace_id"] != "0" * 32
    assert root["trace_id"] == span.trace_id == child["trace_id"] == manual["trace_id"]
    assert child["parent_id"] == root_id
    assert manual["parent_id"] == child_id
    assert other["trace_id"] != root["trace_id"]
    assert len({root_id, child_id, manual_id, other_id}) == 4


# --- automatic nesting --------------------------------------------------------------------


def test_start_trace_nests_under_current_span_without_changing_it() -> None:
    """A manual start_trace inside trace_context is its child; the current span stays put."""
    rig = Rig()
    with trace_context("Outer", "op", tracer=rig.tracer) as outer_id:
        before = current_span()
        inner_id = rig.tracer.start_trace("Inner", "op")
        assert current_span() is before
        rig.tracer.end_trace(inner_id)
    assert current_span() is None
    inner = rig.tracer.get_trace(inner_id)
    assert inner is not None
    assert inner["parent_id"] == outer_id


def test_nesting_follows_await_and_create_task() -> None:
    """Entries started after an await or inside asyncio tasks become children automatically."""
    rig = Rig()

    @trace_execution("Worker", "step", tracer=rig.tracer)
    async def step(n: int) -> int:
        await asyncio.sleep(0)
        with trace_context("Worker", "inner", tracer=rig.tracer):
            await asyncio.sleep(0)
        return n

    async def main() -> str:
        async with trace_context("Orchestrator", "run", tracer=rig.tracer) as root_id:
            await asyncio.sleep(0)
            first = await step(1)
            tasks = [asyncio.create_task(step(n)) for n in (2, 3)]
            assert [first, *await asyncio.gather(*tasks)] == [1, 2, 3]
        return root_id

    root_id = asyncio.run(main())
    tree = rig.tracer.get_trace_tree(root_id)
    assert tree is not None
    assert [c["operation"] for c in tree["children"]] == ["step", "step", "step"]
    for child in tree["children"]:
        assert child["trace_id"] == tree["trace_id"]
        assert [g["operation"] for g in child["children"]] == ["inner"]


def test_bind_context_carries_the_span_into_a_thread_pool() -> None:
    """bind_context makes work submitted to a ThreadPoolExecutor a child of the caller's span."""
    rig = Rig()

    def work(n: int) -> str:
        with trace_context("Pool", "work", {"n": n}, tracer=rig.tracer) as work_id:
            return work_id

    with ThreadPoolExecutor(max_workers=2) as pool, \
            trace_context("Main", "fan_out", tracer=rig.tracer) as root_id:
        bound = [pool.submit(bind_context(work), n).result() for n in range(3)]
        unbound = pool.submit(work, 99).result()

    tree = rig.tracer.get_trace_tree(root_id)
    assert tree is not None
    assert [c["id"] for c in tree["children"]] == bound
    assert [c["metadata"] for c in tree["children"]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    loose = rig.tracer.get_trace(unbound)
    assert loose is not None
    assert loose["parent_id"] is None
    assert loose["trace_id"] != tree["trace_id"]


def test_continue_trace_joins_the_remote_trace() -> None:
    """Inside continue_trace(headers), a new entry takes the caller's trace id and parent."""
    rig = Rig()
    remote = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    headers = {"Traceparent": format_traceparent(remote) or ""}
    with continue_trace(headers):
        with trace_context("Api", "handle", tracer=rig.tracer) as handled_id:
            outgoing = format_traceparent()
        manual_id = rig.tracer.start_trace("Api", "manual")
    entry = rig.tracer.get_trace(handled_id)
    manual = rig.tracer.get_trace(manual_id)
    assert entry is not None
    assert manual is not None
    assert entry["trace_id"] == manual["trace_id"] == remote.trace_id
    assert entry["parent_id"] == manual["parent_id"] == remote.span_id
    assert outgoing == f"00-{remote.trace_id}-{handled_id}-01"


# --- the shared tracer and the configuration ----------------------------------------------


def test_default_tracer_is_looked_up_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """trace_context/trace_execution without tracer= use the module's current execution_tracer."""
    rig = Rig()

    @trace_execution("Dec", "op")
    def decorated() -> None:
        pass

    monkeypatch.setattr(tracing, "execution_tracer", rig.tracer)
    with trace_context("Ctx", "op"):
        decorated()
    assert [e["component"] for e in rig.tracer.get_recent_traces()] == ["Ctx", "Dec"]


def test_every_form_uses_the_replaced_shared_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    """All five forms given no tracer= (scope, function, coroutine, generator, async generator)
    read the package's execution_tracer when they start, not when they were made."""
    rig = Rig()

    @trace_execution("F", "op")
    def function() -> None:
        pass

    @trace_execution("C", "op")
    async def coroutine() -> None:
        pass

    @trace_execution("G", "op")
    def generator() -> Iterator[int]:
        yield 1

    @trace_execution("A", "op")
    async def async_generator() -> AsyncIterator[int]:
        yield 1

    async def run_async_forms() -> None:
        await coroutine()
        assert [i async for i in async_generator()] == [1]

    monkeypatch.setattr(tracing, "execution_tracer", rig.tracer)
    with trace_context("S", "op"):
        pass
    function()
    asyncio.run(run_async_forms())
    assert list(generator()) == [1]
    assert sorted(e["component"] for e in rig.tracer.get_recent_traces()) == [
        "A", "C", "F", "G", "S"]


def test_every_name_of_the_module_stays_importable() -> None:
    """The names vigil.monitoring.tracing had as one module are still there, _Entry (what
    vigil.monitoring.otlp types its queue with) being the class of the entries it is offered."""
    from vigil.monitoring.tracing import (  # noqa: F401
        ACTIVE,
        SPAN_KINDS,
        TraceScope,
        WarningLogger,
        _Entry,
        execution_tracer,
    )

    for module in (tracing, *(importlib.import_module(f"{tracing.__name__}.{name}")
                              for name in SUBMODULES)):
        assert sorted(module.__all__) == module.__all__, module.__name__
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    assert set(tracing.__all__) == {"SPAN_KINDS", "ExecutionTracer", "TraceScope",
                                    "WarningLogger", "execution_tracer", "trace_context",
                                    "trace_execution"}
    offered: list[object] = []

    class Export:
        def offer(self, entry: object) -> None:
            offered.append(entry)

    tracer = ExecutionTracer(registry=CollectorRegistry(), export=Export())  # type: ignore[arg-type]
    with trace_context("C", "op", tracer=tracer):
        pass
    assert type(offered[0]) is _Entry
    assert ACTIVE == "active"
    assert isinstance(execution_tracer, ExecutionTracer)


def test_singleton_follows_configure() -> None:
    """vigil.configure() resizes the module-level execution_tracer."""
    vigil.configure({"monitoring": {"tracing": {"trace_retention": 7, "max_active_traces": 9}}})
    assert tracing.execution_tracer.retention == 7
    assert tracing.execution_tracer.max_active == 9


def test_constructor_defaults_come_from_config_and_bad_sizes_are_rejected() -> None:
    """Unset sizes come from monitoring.tracing; a size below 1 is a clear ConfigError."""
    tracer = ExecutionTracer(registry=CollectorRegistry(),
                             logger=LogCapture().logger("vigil.tracing"))
    settings = vigil.get_config().monitoring.tracing
    assert tracer.retention == settings.trace_retention
    assert tracer.max_active == settings.max_active_traces
    assert tracer.enabled is settings.enabled
    with pytest.raises(vigil.ConfigError, match="retention: got 0; must be a number >= 1"):
        ExecutionTracer(registry=CollectorRegistry(), retention=0)
    with pytest.raises(ValueError, match="max_active"):
        ExecutionTracer(registry=CollectorRegistry(), max_active=-1)


def test_arguments_given_to_the_constructor_survive_reconfigure() -> None:
    """The one config rule: retention, max_active and enabled given to the constructor stay
    when configure() changes them; what was not given follows."""
    rig = Rig(retention=10, enabled=True)
    rig.tracer.reconfigure(load_config({"monitoring": {"tracing": {
        "trace_retention": 2, "max_active_traces": 3, "enabled": False}}}))
    assert (rig.tracer.retention, rig.tracer.max_active, rig.tracer.enabled) == (10, 3, True)


# --- concurrency --------------------------------------------------------------------------


def test_counts_are_exact_under_threads() -> None:
    """8 threads x 500 nested traces: every entry stored and measured exactly once."""
    rig = Rig(retention=10_000)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(250):
            with trace_context("T", "outer", tracer=rig.tracer) as outer_id:
                child = rig.tracer.start_trace("T", "inner", {"n": n, "i": i})
                rig.tracer.end_trace(child)
            assert outer_id

    in_threads(8, worker)
    recent = rig.tracer.get_recent_traces(limit=10_000)
    assert len(recent) == 4000
    assert len({e["id"] for e in recent}) == 4000
    assert rig.tracer.get_active_traces() == []
    assert rig.sample("_count", "T", "outer") == 2000
    assert rig.sample("_count", "T", "inner") == 2000
    outers = [e for e in recent if e["operation"] == "outer"]
    assert all(len(rig.tracer.get_trace_tree(o["id"])["children"]) == 1  # type: ignore[index]
               for o in outers)

