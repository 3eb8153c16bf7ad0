"""ExecutionTracer, trace_context and trace_execution: the seed's examples and what they promise."""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import AsyncIterator, Iterator
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
    use_span,
)
from vigil.monitoring.tracing import ExecutionTracer, trace_context, trace_execution
from vigil.testing import FakeClock, LogCapture

SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
DURATION = "vigil_trace_duration_seconds"


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


# --- ids -------------------------------------------------------------------------------------


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


# --- automatic nesting -----------------------------------------------------------------------


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


# --- outcomes --------------------------------------------------------------------------------


def test_trace_context_error_records_type_and_message_and_reraises() -> None:
    """An exception in the block ends the entry with status error, type and message, re-raised."""
    rig = Rig()
    ids: list[str] = []

    def parse() -> None:
        with trace_context("Parser", "parse", tracer=rig.tracer) as trace_id:
            ids.append(trace_id)
            rig.clock.advance(0.25)
            raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        parse()
    entry = rig.tracer.get_trace(ids[0])
    assert entry is not None
    assert entry["status"] == "error"
    assert entry["error"] == {"type": "ValueError", "message": "bad input"}
    assert entry["duration_ms"] == 250
    assert rig.sample("_sum", "Parser", "parse", "error") == 0.25
    assert rig.sample("_count", "Parser", "parse", "success") is None
    assert current_span() is None


def test_decorated_function_error_is_recorded_and_reraised() -> None:
    """@trace_execution on a sync function records the exception and re-raises it."""
    rig = Rig()

    @trace_execution("Tool", "run", tracer=rig.tracer)
    def run(x: int) -> int:
        if x < 0:
            raise KeyError("negative")
        return x * 2

    assert run(2) == 4
    with pytest.raises(KeyError):
        run(-1)
    ok, failed = reversed(rig.tracer.get_recent_traces())
    assert ok["status"] == "success"
    assert failed["status"] == "error"
    assert failed["error"] == {"type": "KeyError", "message": "'negative'"}
    assert run.__name__ == "run"


def test_cancelled_task_ends_with_status_cancelled() -> None:
    """A traced block whose task is cancelled ends with status cancelled and re-raises."""
    rig = Rig()

    async def main() -> None:
        started = asyncio.Event()

        async def wait_forever() -> None:
            with trace_context("Agent", "wait", tracer=rig.tracer):
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(wait_forever())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (entry,) = rig.tracer.get_recent_traces()
    assert entry["status"] == "cancelled"
    assert entry["error"]["type"] == "CancelledError"


def test_end_trace_error_argument_and_metadata() -> None:
    """end_trace stores an exception or a message as the error and merges metadata."""
    rig = Rig()
    first = rig.tracer.start_trace("C", "op", metadata={"a": 1})
    second = rig.tracer.start_trace("C", "op")
    third = rig.tracer.start_trace("C", "op")
    rig.tracer.end_trace(first, error=TimeoutError("slow"), metadata={"b": 2})
    rig.tracer.end_trace(second, status="degraded", error="partial result")
    rig.tracer.end_trace(third, status="timeout")
    one, two, three = (rig.tracer.get_trace(i) for i in (first, second, third))
    assert one
    assert two
    assert three
    assert one["status"] == "error"
    assert one["error"] == {"type": "TimeoutError", "message": "slow"}
    assert one["metadata"] == {"a": 1, "b": 2}
    assert two["status"] == "degraded"
    assert two["error"] == {"type": None, "message": "partial result"}
    assert three["status"] == "timeout"
    assert rig.sample("_count", "C", "op", "error") == 1
    assert rig.sample("_count", "C", "op", "degraded") == 1
    assert rig.sample("_count", "C", "op", "timeout") == 1


def test_unknown_and_double_end_only_warn() -> None:
    """Ending an unknown or already ended id logs a warning and changes nothing else."""
    rig = Rig()
    trace_id = rig.tracer.start_trace("C", "op")
    rig.clock.advance(0.1)
    rig.tracer.end_trace(trace_id)
    rig.clock.advance(0.1)
    rig.tracer.end_trace(trace_id, status="error")
    rig.tracer.end_trace("ffffffffffffffff")
    rig.tracer.end_trace("not-an-id")

    assert len(rig.warnings()) == 3
    assert all("unknown or already ended" in message for message, _ in rig.warnings())
    assert [meta and meta["id"] for _, meta in rig.warnings()] == [
        trace_id, "ffffffffffffffff", "not-an-id"]
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    assert entry["status"] == "success"
    assert entry["duration_ms"] == 100
    assert rig.sample("_count", "C", "op") == 1
    assert rig.sample("_count", "C", "op", "error") is None


def test_manual_end_inside_a_scope_is_counted_once() -> None:
    """end_trace on a trace_context's id ends it; the scope's own end then only warns."""
    rig = Rig()
    with trace_context("C", "op", tracer=rig.tracer) as trace_id:
        rig.tracer.end_trace(trace_id, status="early")
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    assert entry["status"] == "early"
    assert rig.sample("_count", "C", "op", "early") == 1
    assert rig.sample("_count", "C", "op") is None
    assert len(rig.warnings()) == 1


def test_unknown_parent_starts_a_new_trace_and_warns() -> None:
    """start_trace with an unknown parent_trace_id starts a root entry and logs a warning."""
    rig = Rig()
    with trace_context("Outer", "op", tracer=rig.tracer) as outer_id:
        trace_id = rig.tracer.start_trace("C", "op", parent_trace_id="0123456789abcdef")
    entry = rig.tracer.get_trace(trace_id)
    outer = rig.tracer.get_trace(outer_id)
    assert entry is not None
    assert outer is not None
    assert entry["parent_id"] is None
    assert entry["trace_id"] != outer["trace_id"]
    ((message, meta),) = rig.warnings()
    assert "unknown parent_trace_id" in message
    assert meta is not None
    assert meta["parent_trace_id"] == "0123456789abcdef"


def test_duration_observation_carries_the_trace_id_as_exemplar() -> None:
    """The histogram bucket holds an exemplar with the entry's 32-hex trace id."""
    rig = Rig()
    with trace_context("C", "op", tracer=rig.tracer) as trace_id:
        rig.clock.advance(0.02)
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    exemplars = [sample.exemplar for metric in rig.registry.collect()
                 if metric.name == DURATION for sample in metric.samples
                 if sample.name == DURATION + "_bucket" and sample.exemplar is not None]
    assert len(exemplars) == 1
    assert exemplars[0].labels == {"trace_id": entry["trace_id"]}
    assert exemplars[0].value == pytest.approx(0.02)


def bucket_exemplars(registry: CollectorRegistry) -> dict[str, str]:
    """The trace id of each bucket's exemplar of the duration histogram, by ``le``."""
    return {sample.labels["le"]: sample.exemplar.labels["trace_id"]
            for metric in registry.collect() if metric.name == DURATION
            for sample in metric.samples
            if sample.name == DURATION + "_bucket" and sample.exemplar is not None}


def test_exemplars_are_refreshed_at_most_once_a_second_per_bucket() -> None:
    """Within a second a bucket keeps its exemplar; a later or slower entry replaces/adds one."""
    rig = Rig()

    def traced(seconds: float) -> str:
        with trace_context("C", "op", tracer=rig.tracer) as trace_id:
            rig.clock.advance(seconds)
        entry = rig.tracer.get_trace(trace_id)
        assert entry is not None
        return str(entry["trace_id"])

    first = traced(0.02)
    traced(0.02)
    slow = traced(3.0)
    assert bucket_exemplars(rig.registry) == {"0.025": first, "5.0": slow}
    rig.clock.advance(1.0)
    later = traced(0.02)
    assert bucket_exemplars(rig.registry) == {"0.025": later, "5.0": slow}
    assert rig.sample("_count", "C", "op") == 4


def test_deep_tree_is_built_without_recursion() -> None:
    """get_trace_tree handles a chain deeper than Python's recursion limit."""
    rig = Rig(retention=5000, max_active=5000)
    ids = [rig.tracer.start_trace("C", "root")]
    for _ in range(3000):
        ids.append(rig.tracer.start_trace("C", "op", parent_trace_id=ids[-1]))
    node = rig.tracer.get_trace_tree(ids[0])
    depth = 0
    while node and node["children"]:
        (node,) = node["children"]
        depth += 1
    assert depth == 3000
    assert node is not None
    assert node["id"] == ids[-1]


def test_clear_forgets_everything() -> None:
    """clear() empties the tracer; a scope open across it ends without being stored."""
    rig = Rig()
    rig.tracer.end_trace(rig.tracer.start_trace("C", "done"))
    with trace_context("C", "open", tracer=rig.tracer) as open_id:
        rig.tracer.clear()
        assert rig.tracer.get_active_traces() == []
    assert rig.tracer.get_recent_traces() == []
    assert rig.tracer.get_trace(open_id) is None
    assert rig.sample("_count", "C", "open") == 1
    assert rig.warnings() == []


# --- generators ------------------------------------------------------------------------------


def test_generator_span_covers_iteration_and_is_current_only_inside() -> None:
    """A traced generator's entry spans the whole iteration; the consumer keeps its own span."""
    rig = Rig()
    seen_inside: list[SpanContext | None] = []

    @trace_execution("Reader", "rows", tracer=rig.tracer)
    def rows(n: int) -> Iterator[int]:
        for i in range(n):
            rig.clock.advance(0.1)
            seen_inside.append(current_span())
            yield i
        return

    assert inspect.isgeneratorfunction(rows)
    with trace_context("Job", "consume", tracer=rig.tracer) as job_id:
        outer = current_span()
        for _ in rows(3):
            assert current_span() is outer
            with trace_context("Job", "handle_row", tracer=rig.tracer):
                pass
    tree = rig.tracer.get_trace_tree(job_id)
    assert tree is not None
    ops = [c["operation"] for c in tree["children"]]
    assert ops == ["rows", "handle_row", "handle_row", "handle_row"]
    gen = tree["children"][0]
    assert gen["duration_ms"] == 300
    assert gen["status"] == "success"
    assert {s.span_id for s in seen_inside if s} == {gen["id"]}


def test_generator_send_throw_and_early_close() -> None:
    """send() and throw() reach the inner generator; closing early ends the entry as success."""
    rig = Rig()

    @trace_execution("Gen", "echo", tracer=rig.tracer)
    def echo() -> Iterator[Any]:
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "caught"

    gen = echo()
    assert next(gen) is None
    assert gen.send("hello") == "hello"
    assert gen.throw(KeyError("k")) == "caught"
    assert rig.tracer.get_active_traces()[0]["operation"] == "echo"
    gen.close()
    (entry,) = rig.tracer.get_recent_traces()
    assert entry["status"] == "success"
    assert rig.tracer.get_active_traces() == []


def test_generator_error_and_return_value() -> None:
    """A generator that raises ends as error; a returned value still reaches yield from."""
    rig = Rig()

    @trace_execution("Gen", "fail", tracer=rig.tracer)
    def fail() -> Iterator[int]:
        yield 1
        raise RuntimeError("broken")

    @trace_execution("Gen", "ret", tracer=rig.tracer)
    def ret() -> Iterator[int]:
        yield 1
        return 42

    def outer() -> Iterator[int]:
        result = yield from ret()
        yield result

    assert list(outer()) == [1, 42]
    with pytest.raises(RuntimeError, match="broken"):
        list(fail())
    failed, returned = rig.tracer.get_recent_traces()
    assert failed["status"] == "error"
    assert failed["error"] == {"type": "RuntimeError", "message": "broken"}
    assert returned["status"] == "success"


def test_async_generator_span_covers_iteration() -> None:
    """A traced async generator spans the iteration and nests entries started inside it."""
    rig = Rig()

    @trace_execution("Stream", "chunks", tracer=rig.tracer)
    async def chunks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            with trace_context("Stream", "fetch", tracer=rig.tracer):
                rig.clock.advance(0.05)
            yield i

    assert inspect.isasyncgenfunction(chunks)

    async def main() -> tuple[list[int], SpanContext | None]:
        got = [i async for i in chunks(4)]
        return got, current_span()

    got, after = asyncio.run(main())
    assert got == [0, 1, 2, 3]
    assert after is None
    stream = next(e for e in rig.tracer.get_recent_traces() if e["operation"] == "chunks")
    assert stream["duration_ms"] == 200
    tree = rig.tracer.get_trace_tree(stream["id"])
    assert tree is not None
    assert [c["operation"] for c in tree["children"]] == ["fetch"] * 4


def test_async_generator_closed_early_and_failing() -> None:
    """aclose() ends an async generator's entry as success; an exception ends it as error."""
    rig = Rig()

    @trace_execution("Stream", "endless", tracer=rig.tracer)
    async def endless() -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    @trace_execution("Stream", "fails", tracer=rig.tracer)
    async def fails() -> AsyncIterator[int]:
        yield 1
        raise OSError("disk")

    async def main() -> None:
        gen = endless()
        assert await gen.__anext__() == 0
        assert await gen.asend(None) == 1
        await gen.aclose()
        with pytest.raises(OSError, match="disk"):
            async for _ in fails():
                pass

    asyncio.run(main())
    failed, closed = rig.tracer.get_recent_traces()
    assert closed["status"] == "success"
    assert failed["status"] == "error"
    assert failed["error"] == {"type": "OSError", "message": "disk"}


# --- bounded memory --------------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_completed_entries() -> None:
    """Past trace_retention, the oldest completed entries leave every index."""
    rig = Rig(retention=3)
    root_id = rig.tracer.start_trace("Root", "op")
    ids = []
    for n in range(5):
        child_id = rig.tracer.start_trace("C", f"op{n}", parent_trace_id=root_id)
        rig.tracer.end_trace(child_id)
        ids.append(child_id)

    assert [e["id"] for e in rig.tracer.get_recent_traces()] == ids[:1:-1]
    assert [e["id"] for e in rig.tracer.get_recent_traces(limit=2)] == ids[:2:-1]
    assert rig.tracer.get_recent_traces(limit=0) == []
    assert rig.tracer.get_trace(ids[0]) is None
    assert rig.tracer.get_trace(ids[1]) is None
    tree = rig.tracer.get_trace_tree(root_id)
    assert tree is not None
    assert [c["id"] for c in tree["children"]] == ids[2:]
    assert rig.sample("_count", "C", "op0") == 1  # evicted entries were still measured


def test_evicted_entries_leave_no_index_behind() -> None:
    """After many short-lived trees, the indexes hold only the retained entries."""
    rig = Rig(retention=10)
    for _ in range(200):
        with trace_context("A", "root", tracer=rig.tracer), \
                trace_context("A", "child", tracer=rig.tracer):
            pass
    tracer = rig.tracer
    assert len(tracer.get_recent_traces(1000)) == 10
    assert len(tracer._entries) == 10
    assert sum(len(kids) for kids in tracer._children.values()) <= 10
    assert all(tracer._children.values())


def test_active_cap_drops_the_oldest_and_counts_it() -> None:
    """Past max_active, the oldest unended entry is dropped, counted, and warned about."""
    rig = Rig(max_active=3)
    assert rig.dropped() == 0
    ids = [rig.tracer.start_trace("Leak", "op") for _ in range(10)]
    assert [a["id"] for a in rig.tracer.get_active_traces()] == ids[-3:]
    assert rig.dropped() == 7
    assert rig.tracer.get_trace(ids[0]) is None
    assert len(rig.warnings()) == 1
    assert "dropped" in rig.warnings()[0][0]
    assert rig.warnings()[0][1] == {"dropped": 1, "max_active_traces": 3}

    rig.tracer.end_trace(ids[0])  # dropped: unknown now
    assert len(rig.warnings()) == 2
    rig.clock.advance(61)
    rig.tracer.start_trace("Leak", "op")
    assert rig.dropped() == 8
    assert len(rig.warnings()) == 3
    # The next warning, a minute on, counts every drop since the previous one.
    assert rig.warnings()[2][1] == {"dropped": 7, "max_active_traces": 3}


def test_dropped_scope_still_measures_its_duration() -> None:
    """A trace_context whose entry was dropped past the cap still observes its duration."""
    rig = Rig(max_active=1)
    with trace_context("Slow", "op", tracer=rig.tracer) as slow_id:
        rig.tracer.start_trace("Other", "op")  # pushes the scope's entry out
        rig.clock.advance(0.5)
    assert rig.tracer.get_trace(slow_id) is None
    assert rig.sample("_sum", "Slow", "op") == 0.5
    assert len(rig.warnings()) == 1  # the drop only


# --- configuration ---------------------------------------------------------------------------


def test_disabled_tracing_stores_nothing_but_still_sets_context() -> None:
    """With tracing off, ids and the current span still exist; nothing is stored or observed."""
    rig = Rig(enabled=False)
    assert rig.tracer.enabled is False
    with trace_context("C", "op", tracer=rig.tracer) as trace_id:
        span = current_span()
        assert span is not None
        assert span.span_id == trace_id
        manual_id = rig.tracer.start_trace("C", "manual")
        assert SPAN_ID.match(manual_id)
    rig.tracer.end_trace(manual_id)
    assert rig.tracer.get_trace(trace_id) is None
    assert rig.tracer.get_recent_traces() == []
    assert rig.tracer.get_active_traces() == []
    assert rig.sample("_count", "C", "op") is None
    assert rig.warnings() == []


def test_reconfigure_resizes_and_keeps_the_newest() -> None:
    """reconfigure() applies retention, the active cap and enabled from a new config."""
    rig = Rig()
    rig.tracer.reconfigure(load_config({"monitoring": {"tracing": {
        "trace_retention": 10, "max_active_traces": 10}}}))
    done = []
    for _ in range(6):
        trace_id = rig.tracer.start_trace("C", "done")
        rig.tracer.end_trace(trace_id)
        done.append(trace_id)
    running = [rig.tracer.start_trace("C", "running") for _ in range(5)]

    rig.tracer.reconfigure(load_config({"monitoring": {"tracing": {
        "trace_retention": 2, "max_active_traces": 3, "enabled": False}}}))
    assert (rig.tracer.retention, rig.tracer.max_active, rig.tracer.enabled) == (2, 3, False)
    assert [e["id"] for e in rig.tracer.get_recent_traces()] == done[:-3:-1]
    assert [a["id"] for a in rig.tracer.get_active_traces()] == running[-3:]
    assert rig.dropped() == 2
    rig.tracer.end_trace(running[-1])  # started while enabled: still ends normally
    assert rig.tracer.get_recent_traces()[0]["id"] == running[-1]
    assert rig.tracer.get_trace(rig.tracer.start_trace("C", "off")) is None


def test_arguments_given_to_the_constructor_survive_reconfigure() -> None:
    """The one config rule: retention, max_active and enabled given to the constructor stay
    when configure() changes them; what was not given follows."""
    rig = Rig(retention=10, enabled=True)
    rig.tracer.reconfigure(load_config({"monitoring": {"tracing": {
        "trace_retention": 2, "max_active_traces": 3, "enabled": False}}}))
    assert (rig.tracer.retention, rig.tracer.max_active, rig.tracer.enabled) == (10, 3, True)


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


def test_two_tracers_share_a_registry() -> None:
    """Two tracers on one registry share the metric families instead of colliding."""
    registry = CollectorRegistry()
    first = ExecutionTracer(registry=registry, logger=LogCapture().logger("vigil.tracing"))
    second = ExecutionTracer(registry=registry, logger=LogCapture().logger("vigil.tracing"))
    first.end_trace(first.start_trace("C", "op"))
    second.end_trace(second.start_trace("C", "op"))
    labels = {"component": "C", "operation": "op", "status": "success"}
    assert registry.get_sample_value(DURATION + "_count", labels) == 2


def test_scope_cannot_be_entered_twice_at_once() -> None:
    """One trace_context object traces one block at a time, and can be reused after."""
    rig = Rig()
    scope = trace_context("C", "op", tracer=rig.tracer)
    with scope as first, pytest.raises(RuntimeError, match="already active"), scope:
        pass
    with scope as second:
        pass
    assert first != second
    assert len(rig.tracer.get_recent_traces()) == 2


def test_use_span_parent_is_respected() -> None:
    """A span made current by use_span (e.g. by another library) parents new entries."""
    rig = Rig()
    foreign = SpanContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", sampled=False)
    with use_span(foreign), trace_context("C", "op", tracer=rig.tracer) as trace_id:
        inner = current_span()
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    assert entry["parent_id"] == foreign.span_id
    assert inner is not None
    assert inner.sampled is False


# --- concurrency -----------------------------------------------------------------------------


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

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    recent = rig.tracer.get_recent_traces(limit=10_000)
    assert len(recent) == 4000
    assert len({e["id"] for e in recent}) == 4000
    assert rig.tracer.get_active_traces() == []
    assert rig.sample("_count", "T", "outer") == 2000
    assert rig.sample("_count", "T", "inner") == 2000
    outers = [e for e in recent if e["operation"] == "outer"]
    assert all(len(rig.tracer.get_trace_tree(o["id"])["children"]) == 1  # type: ignore[index]
               for o in outers)


def test_eviction_under_threads_keeps_indexes_consistent() -> None:
    """Concurrent starts, ends and evictions leave exactly `retention` entries indexed."""
    rig = Rig(retention=100, max_active=50)

    def worker() -> None:
        for _ in range(500):
            with trace_context("T", "a", tracer=rig.tracer), \
                    trace_context("T", "b", tracer=rig.tracer):
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recent = rig.tracer.get_recent_traces(limit=1000)
    assert len(recent) == 100
    assert all(rig.tracer.get_trace(e["id"]) is not None for e in recent)
    assert len(rig.tracer._entries) == 100
    counted = (rig.sample("_count", "T", "a") or 0) + (rig.sample("_count", "T", "b") or 0)
    assert counted == 8000


def test_a_running_scope_can_take_its_name_and_metadata_late() -> None:
    """TraceScope.update() renames the operation and adds metadata while the block runs: the
    entry and the duration series carry the new name; outside a block it raises."""
    rig = Rig()
    scope = trace_context("http", "HTTP GET", {"url.path": "/items/7"}, tracer=rig.tracer)
    with scope as span_id:
        scope.update(operation="GET /items/{item_id}", metadata={"route": "/items/{item_id}"})
    entry = rig.tracer.get_trace(span_id)
    assert entry is not None
    assert entry["operation"] == "GET /items/{item_id}"
    assert entry["metadata"] == {"url.path": "/items/7", "route": "/items/{item_id}"}
    assert rig.registry.get_sample_value(
        f"{DURATION}_count", {"component": "http", "operation": "GET /items/{item_id}",
                              "status": "success"}) == 1
    with pytest.raises(RuntimeError, match="not active"):
        scope.update(operation="late")


def test_a_scope_kind_must_be_one_of_opentelemetrys() -> None:
    """kind= takes server, client, producer, consumer or internal (any case); others raise."""
    assert trace_context("C", "op", kind="SERVER")._kind == "server"
    with pytest.raises(ValueError, match="server"):
        trace_context("C", "op", kind="backend")
