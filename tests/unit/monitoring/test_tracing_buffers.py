"""The tracer's bounded memory: the ring of completed entries, the active cap, eviction from
every index, clear, deep trees, resizing and disabling."""

from __future__ import annotations

from tests.unit.monitoring.test_tracing import SPAN_ID, Rig, in_threads

from vigil.config import load_config
from vigil.monitoring.context import (
    current_span,
)
from vigil.monitoring.tracing import trace_context

# --- bounded memory -----------------------------------------------------------------------


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


def test_eviction_under_threads_keeps_indexes_consistent() -> None:
    """Concurrent starts, ends and evictions leave exactly `retention` entries indexed."""
    rig = Rig(retention=100, max_active=50)

    def worker(_: int) -> None:
        for _ in range(500):
            with trace_context("T", "a", tracer=rig.tracer), \
                    trace_context("T", "b", tracer=rig.tracer):
                pass

    in_threads(8, worker)
    recent = rig.tracer.get_recent_traces(limit=1000)
    assert len(recent) == 100
    assert all(rig.tracer.get_trace(e["id"]) is not None for e in recent)
    assert len(rig.tracer._entries) == 100
    counted = (rig.sample("_count", "T", "a") or 0) + (rig.sample("_count", "T", "b") or 0)
    assert counted == 8000


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


# --- configuration ------------------------------------------------------------------------


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

