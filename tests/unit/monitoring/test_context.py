"""vigil.monitoring.context: W3C ids, the current span across await, tasks and threads."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vigil.monitoring import context
from vigil.monitoring.context import (
    SpanContext,
    bind_context,
    current_span,
    new_span_id,
    new_trace_id,
    use_span,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_ids_are_w3c_hex_of_the_right_length() -> None:
    """Trace ids are 32 lowercase hex, span ids 16, and they do not repeat."""
    traces = {new_trace_id() for _ in range(1000)}
    spans = {new_span_id() for _ in range(1000)}
    assert len(traces) == 1000
    assert len(spans) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) for s in spans)


def test_context_follows_await_and_tasks() -> None:
    """The current span is visible after an await and inside a task started under it."""
    span = SpanContext(TRACE, SPAN)

    async def child() -> SpanContext | None:
        await asyncio.sleep(0)
        return current_span()

    async def main() -> tuple[SpanContext | None, SpanContext | None]:
        with use_span(span):
            await asyncio.sleep(0)
            seen_after_await = current_span()
            seen_in_task = await asyncio.create_task(child())
        return seen_after_await, seen_in_task

    assert asyncio.run(main()) == (span, span)


def test_threads_need_bind_context() -> None:
    """A plain thread starts without the span; bind_context carries it into threads and pools."""
    span = SpanContext(TRACE, SPAN)
    seen: list[SpanContext | None] = []

    def record() -> None:
        seen.append(current_span())

    with use_span(span):
        plain = threading.Thread(target=record)
        bound = threading.Thread(target=bind_context(record))
        plain.start()
        bound.start()
        plain.join()
        bound.join()
        with ThreadPoolExecutor(1) as pool:
            from_pool = pool.submit(bind_context(current_span)).result()
    assert seen.count(span) == 1
    assert seen.count(None) == 1
    assert from_pool == span


@pytest.mark.parametrize("name", ["TRACEPARENT_HEADER", "continue_trace", "parse_traceparent",
                                  "format_tracestate", "inject_traceparent"])
def test_the_header_names_are_still_importable_from_context(name: str) -> None:
    """The W3C header functions moved to propagation and are the same objects read here."""
    from vigil.monitoring import propagation

    assert getattr(context, name) is getattr(propagation, name)
