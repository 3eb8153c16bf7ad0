"""vigil.error_handling.handlers: the seed's specialised handlers answer in the seed's terms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.error_handling.handlers import (
    AgentExecutionErrorHandler,
    FileProcessingErrorHandler,
    MemoryStorageErrorHandler,
)
from vigil.error_handling.recovery import ErrorCategory, ErrorRecoveryManager, RecoveryActionType
from vigil.monitoring.alerts import AlertManager
from vigil.testing import FakeClock


@pytest.fixture
def manager() -> Iterator[ErrorRecoveryManager]:
    """A manager with its own registry and alert manager."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry, clock=FakeClock())
    yield ErrorRecoveryManager(registry=registry, alert_manager=alerts)
    alerts.close()


def _errors(manager: ErrorRecoveryManager, category: str, severity: str, component: str) -> float:
    value = manager.registry.get_sample_value(
        "vigil_errors_total", {"category": category, "severity": severity, "component": component})
    return value or 0.0


def test_file_handlers_return_what_happened_to_the_file(manager: ErrorRecoveryManager) -> None:
    """Unsupported and corrupted files are skipped; an OCR failure asks for the fallback."""
    unsupported = FileProcessingErrorHandler.handle_unsupported_format(
        file_path="document.xyz", error=ValueError("xyz"), manager=manager)
    corrupted = FileProcessingErrorHandler.handle_corrupted_file(
        file_path="broken.docx", error=ValueError("bad zip"), manager=manager)
    ocr = FileProcessingErrorHandler.handle_ocr_failure(
        file_path="scan.pdf", error=RuntimeError("tesseract"), manager=manager)
    assert (unsupported["status"], corrupted["status"], ocr["status"]) == (
        "skipped", "skipped", "fallback")
    assert unsupported["file_path"] == "document.xyz"
    assert ocr["error_type"] == "RuntimeError"
    assert _errors(manager, "file_processing", "low", "FileProcessor") == 1
    assert _errors(manager, "file_processing", "high", "FileProcessor") == 1


def test_tool_failure_stops_saying_retry_after_the_limit(manager: ErrorRecoveryManager) -> None:
    """handle_tool_failure answers True max_tool_retries times, then False; reset starts over."""
    vigil.configure({"error_handling": {"recovery": {"max_tool_retries": 2}}})
    answers = [AgentExecutionErrorHandler.handle_tool_failure(
        agent_id="agent_123", tool_name="search_tool", error=RuntimeError("x"), manager=manager)
        for _ in range(4)]
    assert answers == [True, True, False, False]
    other_tool = AgentExecutionErrorHandler.handle_tool_failure(
        "agent_123", "calculator", RuntimeError("x"), manager=manager)
    assert other_tool is True
    AgentExecutionErrorHandler.reset_tool_failures("agent_123", "search_tool", manager=manager)
    assert AgentExecutionErrorHandler.handle_tool_failure(
        "agent_123", "search_tool", RuntimeError("x"), manager=manager) is True


def test_resource_limit_and_runaway_loop_abort(manager: ErrorRecoveryManager) -> None:
    """Resource limits abort at HIGH; an infinite loop aborts at CRITICAL and alerts."""
    limit = AgentExecutionErrorHandler.handle_resource_limit_exceeded(
        agent_id="agent_123", limit_type="max_steps", error=RuntimeError("100 steps"),
        manager=manager)
    loop = AgentExecutionErrorHandler.handle_infinite_loop(
        agent_id="agent_123", step_count=100, error=RuntimeError("loop"), manager=manager)
    assert limit.action_type is RecoveryActionType.ABORT
    assert loop.action_type is RecoveryActionType.ABORT
    assert _errors(manager, "agent_execution", "critical", "AgentExecutor") == 1
    severities = sorted(a.severity for a in manager.alert_manager.get_recent_alerts(5))
    assert severities == ["critical", "high"]


def test_vector_db_answers_whether_a_fallback_exists(manager: ErrorRecoveryManager) -> None:
    """has_fallback is False until a VECTOR_DB fallback is registered."""
    assert MemoryStorageErrorHandler.handle_vector_db_connection_error(
        error=ConnectionError("refused"), manager=manager) is False
    manager.register_fallback(ErrorCategory.VECTOR_DB, lambda *a: [])
    assert MemoryStorageErrorHandler.handle_vector_db_connection_error(
        error=ConnectionError("refused"), manager=manager) is True
    assert _errors(manager, "vector_db", "high", "MemoryStore") == 2


def test_embedding_failure_retry_is_bounded(manager: ErrorRecoveryManager) -> None:
    """handle_embedding_api_failure says retry while retry_count < max_embedding_retries."""
    answers = [MemoryStorageErrorHandler.handle_embedding_api_failure(
        error=TimeoutError("slow"), retry_count=n, manager=manager) for n in range(5)]
    assert answers == [True, True, True, False, False]


def test_memory_capacity_goes_through_the_policy(manager: ErrorRecoveryManager) -> None:
    """Memory full at HIGH answers the table's fallback and is counted."""
    action = MemoryStorageErrorHandler.handle_memory_capacity_exceeded(
        error=MemoryError(), manager=manager)
    assert action.action_type is RecoveryActionType.FALLBACK
    assert _errors(manager, "memory_storage", "high", "MemoryStore") == 1


def test_handlers_default_to_the_shared_manager() -> None:
    """Without manager=, the seed's class-level calls use error_recovery_manager."""
    from vigil.error_handling.recovery import error_recovery_manager

    before = error_recovery_manager.get_error_stats()["total"]
    FileProcessingErrorHandler.handle_unsupported_format(file_path="a.xyz", error=ValueError())
    assert error_recovery_manager.get_error_stats()["total"] == before + 1


def test_situation_beats_exception_class(manager: ErrorRecoveryManager) -> None:
    """A corrupted file raising a ConnectionError is still skipped, not retried."""
    result = FileProcessingErrorHandler.handle_corrupted_file(
        "broken.docx", ConnectionResetError("zip stream reset"), manager=manager)
    assert result["status"] == "skipped"
    limit = AgentExecutionErrorHandler.handle_resource_limit_exceeded(
        "agent_1", "max_tokens", TimeoutError(), manager=manager)
    assert limit.action_type is RecoveryActionType.ABORT
