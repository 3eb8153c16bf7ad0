"""vigil.monitoring._otel_bridge: one current span shared with the OpenTelemetry SDK in-process.

The SDK is the real one (``opentelemetry-sdk``), with an in-memory exporter; its global tracer
provider is never set, so nothing here leaks into other tests.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import load_config
from vigil.monitoring import _otel_bridge, context
from vigil.monitoring.context import (
    SpanContext,
    continue_trace,
    current_span,
    inject_traceparent,
    use_span,
)
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.tracing import ExecutionTracer, trace_context, trace_execution

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"


class Sdk:
    """An SDK tracer whose ended spans are kept in memory."""

    def __init__(self, **kwargs: object) -> None:
        self.memory = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False, **kwargs)  # type: ignore[arg-type]
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = provider.get_tracer("app")

    def ended(self, name: str) -> ReadableSpan:
        return next(span for span in self.memory.get_finished_spans() if span.name == name)


def _hex(span: otel_trace.Span | ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@pytest.fixture
def sdk() -> Sdk:
    return Sdk()


@pytest.fixture
def tracer() -> ExecutionTracer:
    return ExecutionTracer(registry=CollectorRegistry())


def _span_id() -> str | None:
    span = current_span()
    return None if span is None else span.span_id


def test_a_vigil_span_inside_an_opentelemetry_span_is_its_child(sdk: Sdk,
                                                                  tracer: ExecutionTracer) -> None:
    """Inside start_as_current_span, trace_context joins OpenTelemetry's trace under its span."""
    with sdk.tracer.start_as_current_span("otel-outer") as outer, \
            trace_context("Vigil", "inner", tracer=tracer) as inner_id:
        pass
    entry = tracer.get_trace(inner_id)
    assert entry is not None
    trace_id, span_id = _hex(outer)
    assert (entry["trace_id"], entry["parent_id"]) == (trace_id, span_id)


def test_an_opentelemetry_span_inside_a_vigil_span_is_its_child(sdk: Sdk,
                                                                  tracer: ExecutionTracer) -> None:
    """Inside trace_context, an SDK span takes vigil's trace id and the entry as its parent."""
    with trace_context("Vigil", "outer", tracer=tracer) as outer_id, \
            sdk.tracer.start_as_current_span("otel-inner"):
        pass
    entry = tracer.get_trace(outer_id)
    inner = sdk.ended("otel-inner")
    assert entry is not None
    assert inner.parent is not None
    assert _hex(inner)[0] == entry["trace_id"]
    assert format(inner.parent.span_id, "016x") == outer_id


def test_alternating_nesting_is_one_chain(sdk: Sdk, tracer: ExecutionTracer) -> None:
    """OpenTelemetry > vigil > OpenTelemetry > vigil (decorated): each one the next's parent,
    all in one trace, and the current span is restored on the way out."""

    @trace_execution("Vigil", "leaf", tracer=tracer)
    def leaf() -> str:
        span = current_span()
        assert span is not None
        return span.span_id

    with sdk.tracer.start_as_current_span("a") as a:
        with trace_context("Vigil", "b", tracer=tracer) as b_id:
            with sdk.tracer.start_as_current_span("c") as c:
                d_id = leaf()
            assert _span_id() == b_id
        assert _span_id() == _hex(a)[1]
    assert current_span() is None
    trace_id = _hex(a)[0]
    b, d = tracer.get_trace(b_id), tracer.get_trace(d_id)
    assert b is not None
    assert d is not None
    assert (b["trace_id"], b["parent_id"]) == (trace_id, _hex(a)[1])
    assert format(sdk.ended("c").parent.span_id, "016x") == b_id  # type: ignore[union-attr]
    assert (d["trace_id"], d["parent_id"]) == (trace_id, _hex(c)[1])


def test_a_log_line_carries_opentelemetrys_ids(sdk: Sdk, tracer: ExecutionTracer) -> None:
    """A line written inside an SDK span (itself inside a vigil span) has the SDK span's
    ids; one written in the vigil span alone has the vigil entry's, in the same trace."""
    stream = io.StringIO()
    logger = StructuredLogger("app", stream=stream, registry=CollectorRegistry())
    with trace_context("Vigil", "outer", tracer=tracer) as outer_id:
        logger.info("in vigil")
        with sdk.tracer.start_as_current_span("otel") as otel:
            logger.info("in otel")
    in_vigil, in_otel = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (in_otel["trace_id"], in_otel["span_id"]) == _hex(otel)
    assert (in_vigil["trace_id"], in_vigil["span_id"]) == (_hex(otel)[0], outer_id)


def test_an_exemplar_names_opentelemetrys_trace(sdk: Sdk) -> None:
    """monitor_performance inside an SDK span puts the SDK's trace id in its exemplar."""
    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)

    @monitor_performance("exemplified", monitor=monitor)
    def work() -> int:
        return 1

    with sdk.tracer.start_as_current_span("otel") as otel:
        work()
    trace_ids = {sample.exemplar.labels["trace_id"]
                 for family in registry.collect() for sample in family.samples
                 if sample.exemplar is not None}
    assert trace_ids == {_hex(otel)[0]}


def test_an_unsampled_opentelemetry_parent_makes_an_unsampled_vigil_child(
        tracer: ExecutionTracer) -> None:
    """Under an SDK that samples nothing, vigil's child is unsampled and says 00 downstream."""
    sdk = Sdk(sampler=ALWAYS_OFF)
    with sdk.tracer.start_as_current_span("dropped"), \
            trace_context("Vigil", "child", tracer=tracer) as child_id:
        headers = inject_traceparent({})
    entry = tracer.get_trace(child_id)
    assert entry is not None
    assert headers["traceparent"].endswith(f"-{child_id}-00")


def test_an_unsampled_vigil_parent_keeps_opentelemetry_children_unrecorded(
        sdk: Sdk, tracer: ExecutionTracer) -> None:
    """A caller's 00 flag carried by vigil reaches the SDK's parent-based sampler."""
    with continue_trace(f"00-{TRACE}-{REMOTE_SPAN}-00"), \
            trace_context("Vigil", "handle", tracer=tracer), \
            sdk.tracer.start_as_current_span("otel-child") as child:
        assert not child.is_recording()
    assert sdk.memory.get_finished_spans() == ()


def test_tracestate_reaches_opentelemetry_children(sdk: Sdk, tracer: ExecutionTracer) -> None:
    """The caller's tracestate, continued by vigil, is the SDK child's trace state."""
    headers = {"traceparent": f"00-{TRACE}-{REMOTE_SPAN}-01", "tracestate": "congo=t61rcWkgMzE"}
    with continue_trace(headers), trace_context("Vigil", "handle", tracer=tracer), \
            sdk.tracer.start_as_current_span("otel-child"):
        pass
    child = sdk.ended("otel-child")
    assert child.context is not None
    assert child.context.trace_state.to_header() == "congo=t61rcWkgMzE"
    assert _hex(child)[0] == TRACE


def test_spans_across_await_and_tasks_stay_joined(sdk: Sdk, tracer: ExecutionTracer) -> None:
    """An SDK span around asyncio work: vigil coroutines and the tasks they start join it."""

    @trace_execution("Vigil", "task", tracer=tracer)
    async def task() -> str:
        await asyncio.sleep(0)
        with sdk.tracer.start_as_current_span("in-task"):
            await asyncio.sleep(0)
        span = current_span()
        assert span is not None
        return span.span_id

    async def main() -> list[str]:
        with sdk.tracer.start_as_current_span("root"):
            return list(await asyncio.gather(task(), asyncio.create_task(task())))

    ids = asyncio.run(main())
    root = sdk.ended("root")
    for span_id in ids:
        entry = tracer.get_trace(span_id)
        assert entry is not None
        assert (entry["trace_id"], entry["parent_id"]) == _hex(root)
    parents = {format(span.parent.span_id, "016x") for span in sdk.memory.get_finished_spans()
               if span.name == "in-task" and span.parent is not None}
    assert parents == set(ids)


def test_a_traced_generator_is_current_in_opentelemetry_only_while_it_runs(
        sdk: Sdk, tracer: ExecutionTracer) -> None:
    """An SDK span started by the consumer between two items is not the generator's child."""

    @trace_execution("Vigil", "gen", tracer=tracer)
    def produce() -> Iterator[int]:
        with sdk.tracer.start_as_current_span("in-generator"):
            yield 1
        yield 2

    with sdk.tracer.start_as_current_span("consumer") as consumer:
        for _ in produce():
            with sdk.tracer.start_as_current_span("between"):
                pass
    gen_id = next(e["id"] for e in tracer.get_recent_traces() if e["operation"] == "gen")
    inside = sdk.ended("in-generator")
    assert format(inside.parent.span_id, "016x") == gen_id  # type: ignore[union-attr]
    betweens = [s for s in sdk.memory.get_finished_spans() if s.name == "between"]
    assert {format(s.parent.span_id, "016x") for s in betweens} == {  # type: ignore[union-attr]
        _hex(consumer)[1]}


def test_sharing_off_keeps_the_two_apart(sdk: Sdk, tracer: ExecutionTracer) -> None:
    """monitoring.tracing.opentelemetry_context: false: a vigil span inside an SDK span
    starts its own trace, and an SDK span inside vigil's has no vigil parent."""
    vigil.configure(load_config(overrides={"monitoring": {"tracing": {
        "opentelemetry_context": False}}}))
    with sdk.tracer.start_as_current_span("otel") as otel, \
            trace_context("Vigil", "apart", tracer=tracer) as apart_id, \
            sdk.tracer.start_as_current_span("otel-inner"):
        pass
    entry = tracer.get_trace(apart_id)
    assert entry is not None
    assert entry["parent_id"] is None
    assert entry["trace_id"] != _hex(otel)[0]
    inner = sdk.ended("otel-inner")
    assert format(inner.parent.span_id, "016x") == _hex(otel)[1]  # type: ignore[union-attr]
    vigil.configure(load_config())
    assert context._sharing


def test_use_span_and_attach_are_shared_too(sdk: Sdk) -> None:
    """A span made current with use_span (not a tracer) is OpenTelemetry's parent as well."""
    span = SpanContext(TRACE, REMOTE_SPAN)
    with use_span(span), sdk.tracer.start_as_current_span("child"):
        pass
    child = sdk.ended("child")
    assert (_hex(child)[0], format(child.parent.span_id, "016x")) == (  # type: ignore[union-attr]
        TRACE, REMOTE_SPAN)
    assert otel_trace.get_current_span(otel_context.get_current()) is otel_trace.INVALID_SPAN


def test_ids_convert_both_ways_without_loss() -> None:
    """to_otel and from_otel keep ids, the sampled flag, remoteness and trace state."""
    span = SpanContext(TRACE, REMOTE_SPAN, sampled=False, remote=True, tracestate="a=1,b=2")
    assert _otel_bridge.from_otel(_otel_bridge.to_otel(span)) == span


def test_a_bridge_that_cannot_be_imported_leaves_vigils_own_span(
        sdk: Sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    """When importing the bridge fails (a process out of file descriptors), current_span and
    log lines fall back to vigil's own span instead of failing, and the next call retries."""
    import sys

    import vigil.monitoring as monitoring_package

    class Refuse:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "vigil.monitoring._otel_bridge":
                raise OSError(24, "Too many open files")

    monkeypatch.setattr(context, "_bridge", None)
    monkeypatch.delitem(sys.modules, "vigil.monitoring._otel_bridge")
    monkeypatch.delattr(monitoring_package, "_otel_bridge")
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    span = SpanContext(TRACE, REMOTE_SPAN)
    with use_span(span), sdk.tracer.start_as_current_span("otel"):
        assert current_span() == span
    monkeypatch.setattr(sys, "meta_path", sys.meta_path[1:])
    with sdk.tracer.start_as_current_span("otel") as otel:
        assert _span_id() == _hex(otel)[1]


def test_use_span_none_leaves_no_current_span_on_either_side(sdk: Sdk) -> None:
    """use_span(None) inside an SDK span hides it too: current_span() is None and an SDK span
    started there begins a trace of its own; leaving restores the outer one."""
    with sdk.tracer.start_as_current_span("outer") as outer:
        with use_span(None):
            assert current_span() is None
            with sdk.tracer.start_as_current_span("detached") as detached:
                pass
        assert _span_id() == _hex(outer)[1]
    assert sdk.ended("detached").parent is None
    assert _hex(detached)[0] != _hex(outer)[0]
