"""trace_execution on generators and async generators (vigil.monitoring.tracing.generators)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

import pytest
from tests.unit.monitoring.test_tracing import Rig

from vigil.monitoring.context import (
    SpanContext,
    current_span,
)
from vigil.monitoring.tracing import trace_context, trace_execution

# --- generators ---------------------------------------------------------------------------


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
    def echo() -> Generator[Any, Any, None]:
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
    def ret() -> Generator[int, None, int]:
        yield 1
        return 42

    def outer() -> Generator[int, None, None]:
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
    async def endless() -> AsyncGenerator[int, None]:
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


def test_async_generator_forwards_asend_and_athrow_under_its_span() -> None:
    """Values sent, an exception thrown in and handled, and aclose() all reach the inner async
    generator, which runs each step (its finally too) with its own span current; between
    steps the consumer's span is current again."""
    rig = Rig()
    seen: list[tuple[str, object, str | None]] = []

    def span_id() -> str | None:
        span = current_span()
        return None if span is None else span.span_id

    @trace_execution("Stream", "echo", tracer=rig.tracer)
    async def echo() -> AsyncGenerator[object, object]:
        got: object = None
        try:
            while True:
                try:
                    got = yield got
                    seen.append(("sent", got, span_id()))
                except KeyError as exc:
                    seen.append(("thrown", exc.args[0], span_id()))
                    got = "recovered"
        finally:
            seen.append(("closed", None, span_id()))

    async def main() -> list[object]:
        stream = echo()
        answers = [await stream.asend(None)]
        assert current_span() is None
        answers.append(await stream.asend("a"))
        assert current_span() is None
        answers.append(await stream.athrow(KeyError("k")))
        await stream.aclose()
        return answers

    assert asyncio.run(main()) == [None, "a", "recovered"]
    (entry,) = rig.tracer.get_recent_traces()
    assert entry["status"] == "success"
    assert seen == [("sent", "a", entry["id"]), ("thrown", "k", entry["id"]),
                    ("closed", None, entry["id"])]


def test_generator_arguments_named_like_the_wrappers_own_pass_through() -> None:
    """Keyword arguments called span, call, args or kwargs reach the decorated generator (the
    step helper's own parameters are positional-only)."""
    rig = Rig()

    @trace_execution("Gen", "kw", tracer=rig.tracer)
    def gen(span: int, call: int, args: int, kwargs: int) -> Iterator[int]:
        yield span + call + args + kwargs

    @trace_execution("Gen", "akw", tracer=rig.tracer)
    async def agen(span: int, call: int, args: int, kwargs: int) -> AsyncIterator[int]:
        yield span + call + args + kwargs

    async def collect() -> list[int]:
        return [i async for i in agen(span=1, call=2, args=3, kwargs=4)]

    assert list(gen(span=1, call=2, args=3, kwargs=4)) == [10]
    assert asyncio.run(collect()) == [10]
    assert [e["status"] for e in rig.tracer.get_recent_traces()] == ["success", "success"]
