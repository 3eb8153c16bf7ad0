"""The seed document's examples run unchanged with ``app.core`` read as ``vigil``.

The seed is copied into tests/fixtures/seed.md; its code blocks are executed in order, in one
namespace per section, exactly as printed apart from the import path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.monitoring import alert_manager, execution_tracer, performance_monitor

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed.md"


def _section(title: str, next_title: str | None = None) -> str:
    text = SEED.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    return text[start:text.index(f"## {next_title}", start)] if next_title else text[start:]


def _blocks(section: str) -> list[str]:
    return [block.replace("app.core", "vigil")
            for block in re.findall(r"```python\n(.*?)```", section, re.S)]


def _run(block: str, namespace: dict[str, Any]) -> None:
    exec(compile(block, "<seed>", "exec"), namespace)


@pytest.fixture
def stop_sampler() -> Iterator[list[Any]]:
    """Monitors whose background sampler a seed block started; stopped after the test."""
    started: list[Any] = []
    yield started
    for monitor in started:
        monitor.stop_monitoring()


def test_monitoring_section_examples_run(capsys: pytest.CaptureFixture[str],
                                         stop_sampler: list[Any]) -> None:
    """Every block of 'Monitoring System' runs and does what its comments say."""
    blocks = _blocks(_section("Monitoring System", "Integration Examples"))
    assert len(blocks) == 6
    ns: dict[str, Any] = {}
    for block in blocks:
        _run(block, ns)
        if "monitor" in ns:
            stop_sampler.append(ns["monitor"])
    # Structured logging: the five levels were written as JSON lines (DEBUG is below INFO).
    assert [e["message"] for e in ns["recent_logs"]][-4:] == [
        "Processing request", "Warning message", "Error occurred", "Critical failure"]
    # Performance monitoring: stats have the documented keys; the sampler is running.
    assert {"count", "sum", "min", "max", "avg"} <= set(ns["stats"])
    assert ns["monitor"].monitoring
    # Decorators define coroutines that run and are recorded.
    asyncio.run(ns["my_function"]())
    assert performance_monitor.get_metric_stats("my_function.calls")["count"] >= 1
    asyncio.run(ns["my_operation"]())
    # Trace hierarchy: the child is under the parent in the tree.
    tree = ns["tracer"].get_trace_tree(ns["parent_id"])
    assert [child["id"] for child in tree["children"]] == [ns["child_id"]]
    # Alerts: the alert sent before the handler existed is stored; later ones reach the handler.
    assert "File processing failed" in [a["message"] for a in ns["alerts"]]
    alert_manager.send_alert(severity="low", component="Seed", message="after registration")
    assert alert_manager.flush(timeout=5)
    assert "Alert: after registration" in capsys.readouterr().out
    alert_manager.unregister_handler(ns["my_alert_handler"])


def test_integration_monitoring_example_runs() -> None:
    """'Monitoring with Metrics' runs with a stand-in agent and records what it says."""
    block = _blocks(_section("Integration Examples", "Best Practices"))[1]

    class Agent:
        async def run(self) -> str:
            await asyncio.sleep(0)
            return "done"

    ns: dict[str, Any] = {"time": __import__("time"), "agent": Agent()}
    _run(block, ns)
    before = performance_monitor.get_metric_stats("agent_success")["count"]
    assert asyncio.run(ns["execute_agent"]("agent_1")) == "done"
    assert performance_monitor.get_metric_stats("agent_success")["count"] == before + 1
    assert performance_monitor.get_metric_stats("agent_duration_ms")["count"] >= 1
    recent = execution_tracer.get_recent_traces(limit=1)[0]
    assert (recent["component"], recent["operation"]) == ("AgentExecutor", "execute")


def test_troubleshooting_monitoring_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The 'High Memory Usage' and 'Missing Traces' blocks run as printed."""
    blocks = _blocks(_section("Troubleshooting"))
    high_memory, missing_traces = blocks[0], blocks[2]
    from vigil.monitoring import StructuredLogger

    _run(high_memory, {"performance_monitor": performance_monitor,
                       "logger": StructuredLogger("Troubleshooting")})
    _run(missing_traces, {"execution_tracer": execution_tracer, "tracer": execution_tracer})
    out = capsys.readouterr().out
    assert "Total metrics:" in out
    assert "Log entries:" in out
    assert "Active traces:" in out


def test_error_handling_section_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Every block of 'Error Handling' runs with the names it leaves to the reader defined."""
    blocks = _blocks(_section("Error Handling", "Monitoring System"))
    assert len(blocks) == 6
    calls: list[tuple[object, ...]] = []

    def risky_function(*args: object) -> str:
        calls.append(args)
        return "ok"

    ns: dict[str, Any] = {"risky_function": risky_function, "arg1": 1, "arg2": 2,
                          "exception": ConnectionError("vector db unreachable")}
    _run(blocks[0], ns)
    assert ns["result"] == "ok"
    assert calls == [(1, 2)]
    assert ns["cb"].state == "CLOSED"
    for block in blocks[1:]:
        _run(block, ns)
    asyncio.run(ns["process_file"]("a.txt"))
    assert ns["action"].action_type in ("retry", "fallback", "skip", "abort")
    assert ns["result"]["file_path"] == "broken.docx"  # the last file handler's result
    assert isinstance(ns["should_retry"], bool)
    assert isinstance(ns["has_fallback"], bool)


def test_complete_error_handling_flow_falls_back() -> None:
    """'Complete Error Handling Flow': a failing service call is handled and falls back."""
    from vigil.error_handling import ErrorCategory, ErrorSeverity

    block = _blocks(_section("Integration Examples", "Best Practices"))[0]

    async def external_service_call(path: str) -> str:
        raise RuntimeError(f"service refused {path}")

    async def fallback_processor(path: str) -> str:
        return f"fallback:{path}"

    # The seed's block uses ErrorCategory/ErrorSeverity without importing them; the
    # section before it did.
    ns: dict[str, Any] = {"external_service_call": external_service_call,
                          "fallback_processor": fallback_processor,
                          "ErrorCategory": ErrorCategory, "ErrorSeverity": ErrorSeverity}
    _run(block, ns)
    assert asyncio.run(ns["process_file"]("doc.pdf")) == "fallback:doc.pdf"
    assert ns["cb"].failure_count == 1


def test_troubleshooting_stuck_breaker_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """'Circuit Breaker Stuck Open' reads a breaker's state and resets it as printed."""
    from vigil.error_handling import error_recovery_manager

    block = _blocks(_section("Troubleshooting"))[1]
    cb = error_recovery_manager.get_circuit_breaker("my_service")
    cb.force_open()
    assert cb.state == "OPEN"
    _run(block, {"error_recovery_manager": error_recovery_manager})
    assert "State: OPEN" in capsys.readouterr().out
    assert cb.state == "CLOSED"
