"""vigil_exporter.app's JSON API under several workers: every answer names the process that
gave it, every entry the pid and host of the worker holding it, and a 404 says which worker
looked."""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from tests.exporter.api_rig import HOST, ME, MINE, Rig, api_rig, process_headers

import vigil
from vigil.error_handling.breaker import CircuitBreaker
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.tracing import trace_context
from vigil_exporter.app import (
    AlertInfo,
    BreakerInfo,
    DeliveriesInfo,
    LogEntry,
    MetricStats,
    TraceEntry,
    TraceTree,
)

WAIT = 30.0  # real seconds the forked worker gets to answer (a bounded wait, never slept)


@pytest.fixture
def rig() -> Iterator[Rig]:
    """An exporter app on fresh collaborators, its lifespan running."""
    with api_rig() as built:
        yield built




def test_list_answers_name_the_process_and_label_every_entry(rig: Rig) -> None:
    """/api/breakers, /api/traces, /api/logs and /api/alerts answer with the Vigil-Pid,
    Vigil-Host and Vigil-Multiprocess headers, and each entry has pid and host."""
    breaker = CircuitBreaker(name=f"test-process-{uuid.uuid4().hex[:8]}", registry=rig.registry)
    with trace_context("C", "op", tracer=rig.tracer):
        pass
    component = f"test-process-{uuid.uuid4().hex[:8]}"
    logger = StructuredLogger(component, stream=io.StringIO(), registry=rig.registry)
    logger.info("hello")  # kept alive below: get_recent_logs reads live loggers only
    rig.alerts.send_alert("high", "Db", "down")
    models: dict[str, type[BaseModel]] = {
        "/api/breakers": BreakerInfo, "/api/traces": TraceEntry,
        f"/api/logs?component={component}": LogEntry, "/api/alerts": AlertInfo}
    for path, model in models.items():
        response = rig.client.get(path)
        assert response.status_code == 200, path
        assert process_headers(response) == MINE, path
        entries = [model.model_validate(e).model_dump() for e in response.json()]
        assert entries, path
        assert {(e["pid"], e["host"]) for e in entries} == {(os.getpid(), HOST)}, path
    assert breaker.name
    assert logger.component == component


def test_object_answers_carry_a_process_object(rig: Rig) -> None:
    """/api/traces/{id}, /api/metrics/{name}/stats and /api/deliveries hold "process", and
    every node of a trace tree its pid and host."""
    with trace_context("Agent", "run", tracer=rig.tracer) as root, \
            trace_context("Tool", "call", tracer=rig.tracer):
        pass
    rig.monitor.record_histogram("step_ms", 5.0)
    tree = rig.client.get(f"/api/traces/{root}")
    assert process_headers(tree) == MINE
    parsed = TraceTree.model_validate(tree.json())
    assert parsed.process.model_dump() == ME
    assert (parsed.pid, parsed.host) == (os.getpid(), HOST)
    assert [(c.operation, c.pid, c.host) for c in parsed.children] == [
        ("call", os.getpid(), HOST)]
    assert "process" not in tree.json()["children"][0]
    stats = rig.client.get("/api/metrics/step_ms/stats")
    assert process_headers(stats) == MINE
    assert MetricStats.model_validate(stats.json()).process.model_dump() == ME
    deliveries = rig.client.get("/api/deliveries")
    assert process_headers(deliveries) == MINE
    assert DeliveriesInfo.model_validate(deliveries.json()).process.model_dump() == ME


def test_unknown_trace_id_404_says_which_worker_looked(rig: Rig) -> None:
    """A 404 for a span id names the pid and host that looked and says that other workers keep
    their own spans; its headers name the process too."""
    response = rig.client.get("/api/traces/0123456789abcdef")
    assert response.status_code == 404
    message = response.json()["error"]
    assert message.startswith('no trace entry with id "0123456789abcdef" in the worker that '
                              f'answered (pid {os.getpid()} on "{HOST}")')
    assert "recorded by another worker" in message
    assert "each keeps its own spans" in message
    assert process_headers(response) == MINE


def test_unknown_metric_404_says_which_worker_looked(rig: Rig) -> None:
    """A 404 for a metric name names the pid that looked and the per-worker records."""
    response = rig.client.get("/api/metrics/never.seen/stats")
    assert response.status_code == 404
    message = response.json()["error"]
    assert f"pid {os.getpid()}" in message
    assert "each keeps its own records" in message
    assert process_headers(response) == MINE


def test_labelled_entries_stay_within_the_byte_budget() -> None:
    """With pid and host on every entry, an answer still fits api_max_bytes and says it
    left entries out."""
    with api_rig(api_max_bytes=4096) as small:
        for i in range(200):
            with trace_context("C", f"op{i}", {"blob": "x" * 50}, tracer=small.tracer):
                pass
        response = small.client.get("/api/traces", params={"limit": 1000})
    assert len(response.content) <= 4096
    assert response.headers["Vigil-Truncated"] == "true"
    entries = response.json()
    assert int(response.headers["Vigil-Entries"]) == len(entries) > 0
    assert all(e["pid"] == os.getpid() for e in entries)


def test_a_log_line_keeps_the_pid_it_was_written_with(rig: Rig,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A log entry whose line has a pid (include_pid) keeps it; the answer names the worker."""
    vigil.configure({"monitoring": {"logging": {"include_pid": True}}})
    component = f"test-own-pid-{uuid.uuid4().hex[:8]}"
    logger = StructuredLogger(component, stream=io.StringIO(), registry=rig.registry)
    logger.info("mine")
    from vigil_exporter.routes import api as api_routes  # where the routes look it up

    other = {"pid": 424242, "host": "other-host", "multiprocess": True}
    monkeypatch.setattr(api_routes, "process_info", lambda: dict(other))
    response = rig.client.get("/api/logs", params={"component": component})
    (entry,) = response.json()
    assert (entry["pid"], entry["host"]) == (os.getpid(), "other-host")
    assert process_headers(response) == {"Vigil-Pid": "424242", "Vigil-Host": "other-host",
                                          "Vigil-Multiprocess": "true"}
    assert logger.get_recent_logs(1)[0]["pid"] == os.getpid()


def test_a_forked_worker_answers_as_itself() -> None:
    """As under gunicorn --preload: a line logged before the fork keeps the parent's pid in
    the forked worker's /api/logs, the worker's own line and the answer carry the worker's."""
    vigil.configure({"monitoring": {"logging": {"include_pid": True}}})
    component = f"test-fork-{uuid.uuid4().hex[:8]}"
    logger = StructuredLogger(component, stream=io.StringIO(), registry=CollectorRegistry())
    logger.info("before the fork")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(read_end)
            logger.info("in the worker")
            with api_rig() as worker:
                response = worker.client.get("/api/logs", params={"component": component})
                answer = {"headers": process_headers(response), "entries": response.json()}
            os.write(write_end, json.dumps(answer).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data = b""
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], deadline - time.monotonic())
            chunk = os.read(read_end, 65536) if ready else b""
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert data, "the forked worker did not answer"
    answer = json.loads(data)
    assert answer["headers"]["Vigil-Pid"] == str(child)
    assert [(e["message"], e["pid"]) for e in answer["entries"]] == [
        ("in the worker", child), ("before the fork", os.getpid())]


def test_openapi_documents_the_scope_and_the_process_fields(rig: Rig) -> None:
    """Each JSON API operation's description states the per-worker scope, its 200 lists the
    process headers, and the models document pid, host and ProcessInfo."""
    schema = rig.client.get("/openapi.json").json()
    for path in ("/api/breakers", "/api/traces", "/api/traces/{trace_id}", "/api/logs",
                 "/api/alerts", "/api/metrics/{name}/stats"):
        operation = schema["paths"][path]["get"]
        assert "each worker process answers from its own in-memory buffers" in \
            operation["description"], path
        assert set(operation["responses"]["200"]["headers"]) == {
            "Vigil-Pid", "Vigil-Host", "Vigil-Multiprocess"}, path
    assert "another worker may hold the span" in \
        schema["paths"]["/api/traces/{trace_id}"]["get"]["description"]
    models = schema["components"]["schemas"]
    assert set(models["ProcessInfo"]["required"]) == {"pid", "host", "multiprocess"}
    for name in ("BreakerInfo", "TraceEntry", "LogEntry", "AlertInfo"):
        assert {"pid", "host"} <= set(models[name]["properties"]), name
    assert "process" in models["TraceTree"]["properties"]
