"""TraceScope (trace_context's scope): one block at a time, its parent, late names, kinds."""

from __future__ import annotations

import pytest
from tests.unit.monitoring.test_tracing import DURATION, Rig

from vigil.monitoring.context import (
    SpanContext,
    current_span,
    use_span,
)
from vigil.monitoring.tracing import trace_context

# --- the scope ----------------------------------------------------------------------------


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

