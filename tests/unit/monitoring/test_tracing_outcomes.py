"""How entries end (vigil.monitoring.tracing.outcome and the tracer's end paths): errors,
cancellation, end_trace's arguments, unknown and double ends."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.monitoring.test_tracing import Rig

from vigil.monitoring.context import (
    current_span,
)
from vigil.monitoring.tracing import trace_context, trace_execution
from vigil.monitoring.tracing.outcome import error_info, outcome

# --- outcomes -----------------------------------------------------------------------------


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


def test_outcome_of_each_kind_of_exception() -> None:
    """GeneratorExit is a success, CancelledError "cancelled", any other BaseException (a
    KeyboardInterrupt too) "error"; an exception whose __str__ raises still gets a message,
    and a string error has no type."""

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert outcome(GeneratorExit()) == ("success", None)
    assert outcome(asyncio.CancelledError("stop")) == (
        "cancelled", {"type": "CancelledError", "message": "stop"})
    assert outcome(KeyboardInterrupt()) == ("error", {"type": "KeyboardInterrupt", "message": ""})
    assert outcome(Broken()) == ("error", {"type": "Broken", "message": "<unprintable Broken>"})
    assert error_info("timed out") == {"type": None, "message": "timed out"}
    assert error_info(None) is None


def test_a_scope_whose_body_raises_keyboard_interrupt_ends_and_reraises() -> None:
    """A BaseException that is not an Exception still ends the entry (as an error), restores
    the span before it and propagates."""
    rig = Rig()
    with pytest.raises(KeyboardInterrupt), trace_context("C", "op", tracer=rig.tracer):
        raise KeyboardInterrupt
    (entry,) = rig.tracer.get_recent_traces()
    assert entry["status"] == "error"
    assert entry["error"] == {"type": "KeyboardInterrupt", "message": ""}
    assert current_span() is None
    assert rig.tracer.get_active_traces() == []
