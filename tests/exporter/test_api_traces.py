"""vigil_exporter.app's /api/traces/{id}: a 16-hex entry id answers that entry's tree (as
before), a 32-hex W3C trace id every retained entry of the trace as trees, within the byte
budget."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.exporter.api_rig import HOST, ME, MINE, Rig, api_rig, process_headers

from vigil.monitoring.context import continue_trace
from vigil.monitoring.tracing import trace_context
from vigil_exporter.app import MAX_TREE_DEPTH, TraceById, TraceTree

SMALL = 1024  # the smallest exporter.api_max_bytes allowed


@pytest.fixture
def rig() -> Iterator[Rig]:
    """An exporter app on fresh collaborators, its lifespan running."""
    with api_rig() as built:
        yield built


def _trace_id() -> str:
    return uuid.uuid4().hex


def _remote(trace_id: str) -> str:
    """A traceparent header of a caller in another process (its span is not retained here)."""
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node["children"])


def _nested(rig: Rig, metadata: dict[str, Any] | None = None) -> str:
    """Root, child and grandchild in one new trace; returns the root's entry id."""
    with trace_context("Agent", "run", metadata, tracer=rig.tracer) as root, \
            trace_context("Tool", "call", tracer=rig.tracer), \
            trace_context("HTTP", "get", tracer=rig.tracer):
        pass
    return root


def test_a_trace_id_answers_the_tree_the_entry_id_answers(rig: Rig) -> None:
    """A nested trace by its 32-hex trace id: one root, the same tree as the 16-hex answer."""
    root = _nested(rig)
    by_entry = rig.client.get(f"/api/traces/{root}").json()
    response = rig.client.get(f"/api/traces/{by_entry['trace_id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert process_headers(response) == MINE
    assert "Vigil-Truncated" not in response.headers
    answer = response.json()
    assert answer["process"] == by_entry.pop("process") == ME
    assert answer == {"trace_id": by_entry["trace_id"], "roots": [by_entry], "span_count": 3,
                      "truncated": False, "process": ME}
    parsed = TraceById.model_validate(answer)
    assert [node.operation for node in parsed.roots[0].children[0].children] == ["get"]


def test_an_upper_case_trace_id_is_accepted(rig: Rig) -> None:
    """A 32-hex trace id in upper case finds the trace, and the answer gives it lower case."""
    trace_id = rig.client.get(f"/api/traces/{_nested(rig)}").json()["trace_id"]
    answer = rig.client.get(f"/api/traces/{trace_id.upper()}").json()
    assert answer["trace_id"] == trace_id
    assert answer["span_count"] == 3


def test_roots_under_a_remote_caller_come_in_start_order(rig: Rig) -> None:
    """Two entries under one remote parent are two roots, by start; span_count counts every
    node of both."""
    trace_id = _trace_id()
    traceparent = _remote(trace_id)
    with continue_trace(traceparent), trace_context("Svc", "first", tracer=rig.tracer), \
            trace_context("Svc", "first.child", tracer=rig.tracer):
        pass
    rig.clock.advance(1.0)
    with continue_trace(traceparent), trace_context("Svc", "second", tracer=rig.tracer):
        pass
    answer = TraceById.model_validate(rig.client.get(f"/api/traces/{trace_id}").json())
    assert [root.operation for root in answer.roots] == ["first", "second"]
    assert answer.roots[0].start < answer.roots[1].start
    assert {root.parent_id for root in answer.roots} == {traceparent.split("-")[2]}
    assert [c.operation for c in answer.roots[0].children] == ["first.child"]
    assert (answer.span_count, answer.truncated) == (3, False)


def test_entries_of_other_traces_are_left_out(rig: Rig) -> None:
    """Only the asked trace's entries are answered, not those of other local or remote traces."""
    wanted = rig.client.get(f"/api/traces/{_nested(rig)}").json()
    _nested(rig)
    with continue_trace(_remote(_trace_id())), trace_context("Svc", "other", tracer=rig.tracer):
        pass
    answer = rig.client.get(f"/api/traces/{wanted['trace_id']}").json()
    nodes = [node for root in answer["roots"] for node in _nodes(root)]
    assert {node["id"] for node in nodes} == {node["id"] for node in _nodes(wanted)}
    assert {node["trace_id"] for node in nodes} == {wanted["trace_id"]}


def test_secret_metadata_is_redacted_in_a_trace_answer(rig: Rig) -> None:
    """Secret-looking metadata keys are [REDACTED] in a 32-hex answer, at every depth."""
    trace_id = _trace_id()
    with continue_trace(_remote(trace_id)), \
            trace_context("Svc", "login", {"password": "hunter2", "user": "u"},
                          tracer=rig.tracer), \
            trace_context("Svc", "check", {"auth": {"api_key": "k-123"}}, tracer=rig.tracer):
        pass
    response = rig.client.get(f"/api/traces/{trace_id}")
    assert "hunter2" not in response.text
    assert "k-123" not in response.text
    (root,) = response.json()["roots"]
    assert root["metadata"] == {"password": "[REDACTED]", "user": "u"}
    assert root["children"][0]["metadata"] == {"auth": {"api_key": "[REDACTED]"}}


def test_every_node_of_a_trace_answer_names_its_worker(rig: Rig) -> None:
    """Each node of a 32-hex answer has pid and host; only the answer has process."""
    trace_id = rig.client.get(f"/api/traces/{_nested(rig)}").json()["trace_id"]
    (root,) = rig.client.get(f"/api/traces/{trace_id}").json()["roots"]
    assert [(n["pid"], n["host"], "process" in n) for n in _nodes(root)] == [
        (os.getpid(), HOST, False)] * 3


def test_a_deep_trace_is_cut_by_depth_in_a_trace_answer(rig: Rig) -> None:
    """A trace deeper than MAX_TREE_DEPTH is cut there as in the entry answer: the cut node
    has truncated: true and span_count counts only the nodes answered."""
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(trace_context("C", "level0", tracer=rig.tracer))
        for depth in range(1, MAX_TREE_DEPTH + 20):
            stack.enter_context(trace_context("C", f"level{depth}", tracer=rig.tracer))
    by_entry = rig.client.get(f"/api/traces/{root}").json()
    answer = rig.client.get(f"/api/traces/{by_entry['trace_id']}").json()
    by_entry.pop("process")
    assert answer["roots"] == [by_entry]
    assert answer["span_count"] == MAX_TREE_DEPTH
    assert answer["truncated"] is False  # no root left out; the cut shows in its node
    assert [n["truncated"] for n in _nodes(answer["roots"][0])].count(True) == 1


def test_an_unknown_trace_id_is_404_naming_the_worker(rig: Rig) -> None:
    """An unknown 32-hex trace id: 404 in the error shape naming the pid and host that looked
    and the per-worker, per-process scope; process headers as for other answers."""
    _nested(rig)
    trace_id = _trace_id()
    response = rig.client.get(f"/api/traces/{trace_id.upper()}")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"].startswith(f'no entry of trace "{trace_id}" in the worker that '
                                    f'answered (pid {os.getpid()} on "{HOST}")')
    assert "evicted" in body["error"]
    assert "recorded by another worker or process" in body["error"]
    assert process_headers(response) == MINE


def test_a_small_budget_leaves_the_latest_roots_out() -> None:
    """Over api_max_bytes a 32-hex answer keeps the earliest whole roots that fit, says
    truncated (body and Vigil-Truncated) and counts only the nodes kept."""
    with api_rig(api_max_bytes=SMALL) as small:
        trace_id = _trace_id()
        for i in range(5):
            with continue_trace(_remote(trace_id)), \
                    trace_context("Svc", f"root{i}", {"blob": "x" * 200}, tracer=small.tracer):
                pass
            small.clock.advance(1.0)
        response = small.client.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200
    assert len(response.content) <= SMALL
    assert response.headers["Vigil-Truncated"] == "true"
    answer = TraceById.model_validate(response.json())
    kept = [root.operation for root in answer.roots]
    assert 0 < len(kept) < 5
    assert kept == [f"root{i}" for i in range(len(kept))]
    assert (answer.span_count, answer.truncated) == (len(kept), True)


def test_a_first_root_over_the_budget_leaves_no_root() -> None:
    """When even the first root does not fit, the answer is 200 with no roots, span_count 0
    and truncated: true (never over the budget, never an error)."""
    with api_rig(api_max_bytes=SMALL) as small:
        trace_id = _trace_id()
        with continue_trace(_remote(trace_id)), \
                trace_context("Svc", "huge", {"blob": "x" * 5000}, tracer=small.tracer):
            pass
        response = small.client.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200
    assert len(response.content) <= SMALL
    assert response.json() == {"trace_id": trace_id, "roots": [], "span_count": 0,
                               "truncated": True, "process": ME}


def test_trace_answers_never_pass_the_budget_and_say_when_roots_are_left_out() -> None:
    """For roots of many sizes around the budget, every 32-hex answer is at most
    api_max_bytes, and truncated is true exactly when roots were left out."""
    kept: set[int] = set()
    with api_rig(api_max_bytes=SMALL) as small:
        for size in range(0, 900, 7):
            trace_id = _trace_id()
            for _ in range(2):
                with continue_trace(_remote(trace_id)), \
                        trace_context("S", "op", {"b": "x" * size}, tracer=small.tracer):
                    pass
            response = small.client.get(f"/api/traces/{trace_id}")
            answer = response.json()
            assert len(response.content) <= SMALL, size
            assert answer["truncated"] is (len(answer["roots"]) < 2), size
            assert answer["span_count"] == len(answer["roots"]), size
            kept.add(len(answer["roots"]))
    assert kept == {0, 1, 2}  # the sizes reached every outcome


def test_an_entry_id_answers_as_before(rig: Rig) -> None:
    """A 16-hex entry id still answers a TraceTree (that entry, its children, process), and an
    unknown one or any other id (not 16 or 32 hex) the entry id's 404."""
    root = _nested(rig)
    response = rig.client.get(f"/api/traces/{root}")
    assert response.status_code == 200
    assert process_headers(response) == MINE
    tree = response.json()
    assert set(tree) == set(TraceTree.model_fields)
    parsed = TraceTree.model_validate(tree)
    assert (parsed.id, parsed.operation, parsed.process.model_dump()) == (root, "run", ME)
    assert [c.operation for c in parsed.children] == ["call"]
    for unknown in ("0123456789abcdef", "nope", "a" * 31, "a" * 33, tree["trace_id"] + "0",
                    "g" * 32):
        missing = rig.client.get(f"/api/traces/{unknown}")
        assert missing.status_code == 404, unknown
        assert missing.json()["error"].startswith(
            f'no trace entry with id "{unknown}" in the worker that answered '
            f'(pid {os.getpid()} on "{HOST}")'), unknown


def test_openapi_describes_both_answers(rig: Rig) -> None:
    """/openapi.json gives the route's 200 as TraceTree or TraceById, says both id forms are
    accepted, and documents TraceById's fields."""
    schema = rig.client.get("/openapi.json").json()
    operation = schema["paths"]["/api/traces/{trace_id}"]["get"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["anyOf"] == [{"$ref": "#/components/schemas/TraceTree"},
                               {"$ref": "#/components/schemas/TraceById"}]
    assert set(operation["responses"]["200"]["headers"]) == set(MINE)
    assert "16 hex digits" in operation["description"]
    assert "32 hex digits" in operation["description"]
    assert "api_max_bytes" in operation["description"]
    (parameter,) = operation["parameters"]
    assert "32 hex" in parameter["description"]
    model = schema["components"]["schemas"]["TraceById"]
    assert set(model["required"]) == {"trace_id", "roots", "span_count", "truncated", "process"}
    assert model["properties"]["roots"]["items"] == {"$ref": "#/components/schemas/TraceNode"}
