"""vigil_demo.agent_studio: the simulated agent studio plays its story and reports it.

Most tests read one shared run (``played``): 2 s of real time at scale 0.04, which is 50 story
seconds: the vector DB outage (8-25 s), the breaker opening, failing a probe and closing again
(~28.5 s), the embedding brownout (30-40 s) and both runaway agents (15 s, 40 s).
"""

from __future__ import annotations

import ast
import asyncio
import io
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import vigil
import vigil.error_handling
import vigil.monitoring
import vigil_demo.agent_studio as demo_module
from vigil.error_handling import ErrorRecoveryManager
from vigil.monitoring import AlertManager, StructuredLogger
from vigil.testing import FakeClock
from vigil_demo.agent_studio import EMBEDDING_BROWNOUT, AgentStudioDemo, DemoSummary, Document

SCALE = 0.04
RUN_SECONDS = 2.0
CATEGORIES = ("agent_execution", "api_call", "file_processing", "vector_db")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples() -> Samples:
    """Every sample on the registry the exporter serves."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in vigil.performance_monitor.registry.collect()
            for sample in family.samples}


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much the samples called ``name`` matching ``labels`` grew from before to after."""
    wanted = set(labels.items())
    return sum(value - before.get(key, 0.0) for key, value in after.items()
               if key[0] == name and wanted <= key[1])


@dataclass
class Played:
    """One finished demo run and what it left behind."""

    demo: AgentStudioDemo
    summary: DemoSummary
    alerts: AlertManager
    before: Samples
    after: Samples
    agent_tree: dict[str, Any] | None
    recent_traces: list[dict[str, Any]]

    def delta(self, name: str, **labels: str) -> float:
        """How much the samples called ``name`` matching ``labels`` grew during the run."""
        return _delta(self.before, self.after, name, **labels)


def _private_manager(stream: io.StringIO) -> tuple[ErrorRecoveryManager, AlertManager]:
    """A recovery manager (and alert manager) of the test's own, on the shared registry."""
    alerts = AlertManager()
    manager = ErrorRecoveryManager(alert_manager=alerts,
                                   logger=StructuredLogger("vigil.recovery", stream=stream))
    return manager, alerts


@pytest.fixture(scope="module")
def played() -> Iterator[Played]:
    """The demo, run once for 2 s at scale 0.04 with a fixed seed."""
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    before = _samples()
    with AgentStudioDemo(scale=SCALE, seed=11, manager=manager, log_stream=log) as demo:
        demo.run(RUN_SECONDS)
        alerts.flush(2.0)
        summary = demo.summary()
        after = _samples()
        tree = (None if summary.example_trace_id is None
                else vigil.execution_tracer.get_trace_tree(summary.example_trace_id))
        recent = vigil.execution_tracer.get_recent_traces(1000)
        yield Played(demo, summary, alerts, before, after, tree, recent)
    alerts.close()


def test_breaker_opens_and_recovers_in_the_summary(played: Played) -> None:
    """The vector DB's breaker tripped during the outage and was CLOSED again by the end."""
    summary = played.summary
    assert summary.breaker_trips >= 1
    assert summary.breaker_recoveries >= 1
    assert summary.breaker_states == {"vector_db": "CLOSED"}


def test_breaker_transitions_are_counted_in_prometheus(played: Played) -> None:
    """The transitions counter saw CLOSED->OPEN, OPEN->HALF_OPEN and HALF_OPEN->CLOSED."""
    name = "vigil_circuit_breaker_transitions_total"
    assert played.delta(name, breaker="vector_db", from_state="CLOSED", to_state="OPEN") >= 1
    assert played.delta(name, breaker="vector_db", from_state="OPEN", to_state="HALF_OPEN") >= 1
    assert played.delta(name, breaker="vector_db", from_state="HALF_OPEN", to_state="CLOSED") >= 1
    assert played.delta(name, breaker="vector_db", to_state="OPEN") == played.summary.breaker_trips
    assert played.delta(name, breaker="vector_db",
                        to_state="CLOSED") == played.summary.breaker_recoveries


def test_searches_fall_back_to_keywords_during_the_outage(played: Played) -> None:
    """While OPEN the breaker rejects calls and the keyword index answers them instead."""
    assert played.summary.fallback_calls > 0
    assert played.delta("vigil_circuit_breaker_calls_total", breaker="vector_db",
                        outcome="rejected") > 0
    assert played.delta("vigil_circuit_breaker_calls_total", breaker="vector_db",
                        outcome="failure") >= 3
    assert played.delta("agent_studio_searches_total", backend="keyword_fallback") \
        == played.summary.fallback_calls
    assert played.delta("agent_studio_searches_total", backend="vector_db") > 0


def test_embedding_calls_are_retried(played: Played) -> None:
    """The flaky embedding API is retried: vigil_retry_attempts_total matches the summary."""
    retries = played.delta("vigil_retry_attempts_total", operation="embedding_api")
    assert retries > 0
    assert retries == played.summary.retries
    assert played.delta("vigil_retry_calls_total", operation="embedding_api",
                        outcome="success_after_retry") > 0


def test_errors_of_several_categories_are_counted(played: Played) -> None:
    """vigil_errors_total grew in several categories, by exactly the summary's counts."""
    errors = played.summary.errors
    # api_call errors need an embedding to fail 3 times running: likely, not certain, in 2 s.
    assert {"agent_execution", "file_processing", "vector_db"} <= set(errors)
    for category in CATEGORIES:
        assert played.delta("vigil_errors_total", category=category) \
            == errors.get(category, 0), category
    assert played.delta("vigil_errors_total", category="agent_execution",
                        severity="critical") >= 1  # the runaway agents


def test_agent_runs_are_traced_as_run_steps_and_tool_calls(played: Played) -> None:
    """The latest agent run's trace has steps as children and tool calls under them."""
    tree = played.agent_tree
    assert tree is not None
    assert (tree["component"], tree["operation"]) == ("AgentExecutor", "agent_run")
    steps = tree["children"]
    assert steps
    assert {step["operation"] for step in steps} == {"step"}
    assert all(step["trace_id"] == tree["trace_id"] for step in steps)
    calls = [call for step in steps for call in step["children"]]
    assert calls
    assert {call["component"] for call in calls} == {"ToolRunner"}
    assert played.summary.traces_recorded > played.summary.calls["agent_runs"]


def test_file_ingestion_traces_nest_text_extraction(played: Played) -> None:
    """An ingest_file trace has its @trace_execution extract_text step as a child."""
    ingests = [t for t in played.recent_traces if t["operation"] == "ingest_file"]
    assert ingests
    children = {t["operation"] for t in played.recent_traces
                if t["parent_id"] in {i["id"] for i in ingests}}
    assert "extract_text" in children


def test_processing_functions_are_timed(played: Played) -> None:
    """@monitor_performance records vigil_function_calls_total for the processing functions."""
    for function in ("ingest_file", "extract_text", "agent_run"):
        assert played.delta("vigil_function_calls_total", function=function) > 0, function
    assert played.delta("vigil_function_errors_total", function="agent_run") > 0


def test_business_metrics_are_exported(played: Played) -> None:
    """The agent_studio_* counters and histograms reach the Prometheus registry."""
    calls = played.summary.calls
    # Calls are counted when they start; the few still running when the run ended (at most one
    # per worker, a search inside an agent's tool call too) never reach their metric.
    for metric, kind in (("agent_studio_files_ingested_total", "files"),
                         ("agent_studio_agent_runs_total", "agent_runs"),
                         ("agent_studio_agent_run_duration_seconds_count", "agent_runs"),
                         ("agent_studio_tool_calls_total", "tool_calls"),
                         ("agent_studio_searches_total", "searches"),
                         ("agent_studio_embeddings_total", "embeddings")):
        finished = played.delta(metric)
        assert 0 < finished <= calls[kind] <= finished + 4, metric
    assert played.delta("agent_studio_agent_runs_total", outcome="runaway_loop") >= 1
    assert played.delta("agent_studio_agent_steps_count") > 0


def test_alerts_fired_are_counted(played: Played) -> None:
    """The breaker's open alert and the runaway agent's critical alert are counted as fired."""
    alerts = played.alerts.get_recent_alerts(1000)
    messages = {(a.severity, a.component, a.message) for a in alerts}
    assert ("high", "vector_db", "circuit breaker 'vector_db' is OPEN") in messages
    assert any(severity == "critical" and component == "AgentExecutor"
               for severity, component, _ in messages)
    assert played.summary.alerts_fired == {"vigil": len(alerts)}
    assert played.summary.alerts_resolved == {}


def test_progress_line_and_final_report_show_the_numbers(played: Played) -> None:
    """One progress line with calls, errors, breaker state and alerts; the report has them too."""
    summary = played.summary
    line = played.demo.progress_line()
    assert "\n" not in line
    fired = sum(summary.alerts_fired.values())
    for part in (f"calls={summary.total_calls}", f"errors={summary.total_errors}",
                 "vector_db=CLOSED", f"trips={summary.breaker_trips}",
                 f"recoveries={summary.breaker_recoveries}",
                 f"fallbacks={summary.fallback_calls}", f"retries={summary.retries}",
                 f"alerts fired={fired}", "resolved=0",
                 *(f"{cat}={count}" for cat, count in summary.errors.items())):
        assert part in line, part
    report = played.demo.final_report()
    assert len(report.splitlines()) > 5
    for part in (f"tripped {summary.breaker_trips} time", f"recovered "
                 f"{summary.breaker_recoveries} time", f"{summary.traces_recorded} recorded",
                 f"fired {fired} (vigil {fired})", "resolved 0",
                 f"calls       {summary.total_calls}", str(summary.example_trace_id)):
        assert part in report, part


def test_embedding_failures_requeue_then_drop_the_document() -> None:
    """When with_retry gives up, the handler requeues a document, and drops it after 3 requeues."""
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    clock = FakeClock()
    before = _samples()
    with AgentStudioDemo(scale=1.0, seed=4, clock=clock, manager=manager,
                         log_stream=log) as demo:
        demo.story.start()
        clock.advance(EMBEDDING_BROWNOUT[0])  # into the brownout: most calls fail

        async def index_until(outcome: str, doc: Document) -> int:
            for calls in range(1, 20):
                if await demo.ingestor.index(doc) == outcome:
                    return calls
            raise AssertionError(f"no {outcome!r} in 20 calls")

        calls = asyncio.run(index_until("requeued", Document("inbox/a.pdf", "invoice")))
        assert demo.story.within(EMBEDDING_BROWNOUT)
        assert [doc.requeues for doc in demo.ingestor.backlog] == [1]
        calls += asyncio.run(index_until("dropped", Document("inbox/b.pdf", "budget", 3)))
        summary = demo.summary()
    alerts.close()
    assert summary.errors == {"api_call": 2}
    assert summary.calls == {"embeddings": calls}
    after = _samples()
    assert _delta(before, after, "vigil_errors_total", category="api_call") == 2
    assert _delta(before, after, "agent_studio_embeddings_total", outcome="requeued") == 1
    assert _delta(before, after, "agent_studio_embeddings_total", outcome="dropped") == 1
    assert _delta(before, after, "vigil_retry_calls_total", operation="embedding_api",
                  outcome="failure_after_retry") == 2


def test_alertmanager_alerts_are_counted_by_source_and_status() -> None:
    """Alerts coming back from Alertmanager (firing, then resolved) are counted by source."""
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    with AgentStudioDemo(scale=SCALE, manager=manager, log_stream=log) as demo:
        for status in ("firing", "resolved"):
            alerts.send_alert("high", "vector_db", "Circuit breaker vector_db is open",
                              source="alertmanager", status=status,
                              labels={"alertname": "VigilCircuitBreakerOpen"})
        assert alerts.flush(2.0)
        summary = demo.summary()
        assert summary.alerts_fired == {"alertmanager": 1}
        assert summary.alerts_resolved == {"alertmanager": 1}
        assert "alerts fired=1 (alertmanager=1) resolved=1 (alertmanager=1)" \
            in demo.progress_line()
    alerts.close()


def test_stop_event_ends_the_run_promptly() -> None:
    """Setting the stop event ends a 60 s run within a fraction of a second."""
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    stop = threading.Event()
    with AgentStudioDemo(scale=SCALE, seed=2, manager=manager, log_stream=log) as demo:
        results: list[DemoSummary] = []
        runner = threading.Thread(target=lambda: results.append(demo.run(60, stop)))
        runner.start()
        time.sleep(0.3)
        stopped_at = time.monotonic()
        stop.set()
        runner.join(5)
        assert not runner.is_alive()
        assert time.monotonic() - stopped_at < 0.5
        assert results[0].elapsed < 1.0
        assert results[0].total_calls > 0
    alerts.close()


def test_progress_callback_is_called_during_the_run() -> None:
    """run(on_progress=...) hands the progress line to the caller every progress_interval."""
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    lines: list[str] = []
    with AgentStudioDemo(scale=SCALE, seed=3, manager=manager, log_stream=log) as demo:
        demo.run(0.5, on_progress=lines.append, progress_interval=0.1)
    alerts.close()
    assert 3 <= len(lines) <= 5
    assert all(line.startswith("[") and "calls=" in line for line in lines)


def _fake_clock_story(seed: int) -> DemoSummary:
    log = io.StringIO()
    manager, alerts = _private_manager(log)
    with AgentStudioDemo(scale=1.0, seed=seed, clock=FakeClock(), manager=manager,
                         log_stream=log) as demo:
        summary = demo.run(60)
    alerts.close()
    return summary


def test_a_seeded_run_on_a_fake_clock_repeats_exactly() -> None:
    """With a FakeClock the full 60 s story plays at once, the same way for the same seed."""
    first, second = _fake_clock_story(5), _fake_clock_story(5)
    assert first.breaker_trips >= 1
    assert first.breaker_recoveries >= 1
    assert first.elapsed >= 60
    for field in ("calls", "errors", "breaker_trips", "breaker_recoveries", "retries",
                  "fallback_calls", "agent_runs", "files"):
        assert getattr(first, field) == getattr(second, field), field


def test_a_manager_keeps_one_vector_db_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second demo gets its own manager by default, and refuses an explicit one already used."""
    log = io.StringIO()
    shared, shared_alerts = _private_manager(log)
    monkeypatch.setattr(demo_module, "error_recovery_manager", shared)
    with AgentStudioDemo(scale=SCALE, log_stream=log) as first, \
            AgentStudioDemo(scale=SCALE, log_stream=log) as second:
        assert first.manager is shared
        assert second.manager is not shared
        assert second.breaker is not first.breaker
        assert second.breaker.fallback == second.memory.keyword_search
        with pytest.raises(ValueError, match="already has a 'vector_db' breaker"):
            AgentStudioDemo(scale=SCALE, manager=shared, log_stream=log)
    shared_alerts.close()


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), True])
def test_bad_scale_is_refused(scale: Any) -> None:
    """scale must be a finite number above zero."""
    with pytest.raises(ValueError, match="scale must be"):
        AgentStudioDemo(scale=scale, manager=ErrorRecoveryManager())


def _public_names(module: Any) -> set[str]:
    return set(module.__all__)


PUBLIC_MODULES: Mapping[str, set[str]] = {
    "vigil": _public_names(vigil),
    "vigil.error_handling": _public_names(vigil.error_handling),
    "vigil.monitoring": _public_names(vigil.monitoring),
}


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None when the chain does not start at a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def test_demo_uses_only_vigils_public_api() -> None:
    """The demo imports vigil, vigil.error_handling and vigil.monitoring only, public names
    only."""
    source = Path(demo_module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vigil":
                    assert alias.name == "vigil", alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "vigil":
            module_name = node.module or ""
            assert module_name in PUBLIC_MODULES, module_name
            for alias in node.names:
                assert alias.name in PUBLIC_MODULES[module_name], (module_name, alias.name)
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] == "vigil":
                # vigil.<public name>, or vigil.<subpackage>.<its public name>
                module = "vigil"
                for name in chain[1:]:
                    dotted = f"{module}.{name}"
                    if dotted in PUBLIC_MODULES:
                        module = dotted
                        continue
                    assert name in PUBLIC_MODULES[module], ".".join(chain)
                    break
            # Private attributes only on the demo's own objects.
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                assert chain is not None, ast.unparse(node)
                assert chain[0] == "self", ast.unparse(node)
            # Output is the caller's business: nothing written to stdout directly.
            assert chain != ["sys", "stdout"], ast.unparse(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", ast.unparse(node)
