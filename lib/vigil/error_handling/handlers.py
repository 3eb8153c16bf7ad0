"""The seed's specialised handlers for file processing, agent execution and memory storage.

Each method classifies the error (category, severity and, where the situation decides it rather
than the exception's class, whether it is transient: a corrupted file is never worth retrying),
hands it to the error recovery manager
(so metrics, the log line, the alert and the history are the same as for any handled error) and
answers in the seed's terms. All take an optional ``manager=`` (default: the shared
``error_recovery_manager``), which tests and multi-tenant apps use to keep their own.

==========================================  ================  ========  ==========================
method                                      category          severity  answers
==========================================  ================  ========  ==========================
``handle_unsupported_format``               FILE_PROCESSING   LOW       result dict (skipped)
``handle_corrupted_file``                   FILE_PROCESSING   MEDIUM    result dict (skipped)
``handle_ocr_failure``                      FILE_PROCESSING   HIGH      result dict (fallback)
``handle_resource_limit_exceeded``          AGENT_EXECUTION   HIGH      RecoveryAction (abort)
``handle_tool_failure``                     AGENT_EXECUTION   MEDIUM    bool: retry?
``handle_infinite_loop``                    AGENT_EXECUTION   CRITICAL  RecoveryAction (abort)
``handle_vector_db_connection_error``       VECTOR_DB         HIGH      bool: a fallback exists?
``handle_memory_capacity_exceeded``         MEMORY_STORAGE    HIGH      RecoveryAction
``handle_embedding_api_failure``            API_CALL          MEDIUM    bool: retry?
==========================================  ================  ========  ==========================

"Retry?" answers stop saying yes after a bounded number of attempts:
``error_handling.recovery.max_tool_retries`` per agent and tool (counted by the manager; call
``reset_tool_failures`` after a success), ``max_embedding_retries`` for the caller's
``retry_count``.
"""

from __future__ import annotations

from typing import Any

from vigil.config import get_config
from vigil.error_handling.recovery import (
    ErrorCategory,
    ErrorRecoveryManager,
    ErrorSeverity,
    RecoveryAction,
    RecoveryActionType,
)

__all__ = ["AgentExecutionErrorHandler", "FileProcessingErrorHandler", "MemoryStorageErrorHandler"]


def _manager(manager: ErrorRecoveryManager | None) -> ErrorRecoveryManager:
    if manager is not None:
        return manager
    from vigil.error_handling import recovery

    return recovery.error_recovery_manager


_FILE_STATUS = {RecoveryActionType.SKIP: "skipped", RecoveryActionType.FALLBACK: "fallback",
                RecoveryActionType.RETRY: "retry", RecoveryActionType.ABORT: "failed"}


class FileProcessingErrorHandler:
    """File ingestion errors: each answers a result dict describing what happened to the file."""

    COMPONENT = "FileProcessor"

    @classmethod
    def _handle(cls, operation: str, severity: ErrorSeverity, file_path: str,
                error: BaseException, reason: str,
                manager: ErrorRecoveryManager | None) -> dict[str, Any]:
        action = _manager(manager).handle_error(
            error=error, category=ErrorCategory.FILE_PROCESSING, severity=severity,
            component=cls.COMPONENT, operation=operation, metadata={"file_path": file_path},
            transient=False)
        return {"success": False, "file_path": file_path,
                "status": _FILE_STATUS[action.action_type], "reason": reason,
                "action": action.action_type.value, "error_type": type(error).__name__,
                "error": str(error)}

    @classmethod
    def handle_unsupported_format(cls, file_path: str, error: BaseException, *,
                                  manager: ErrorRecoveryManager | None = None) -> dict[str, Any]:
        """A format vigil's caller cannot read: skip the file."""
        return cls._handle("unsupported_format", ErrorSeverity.LOW, file_path, error,
                           "unsupported file format", manager)

    @classmethod
    def handle_corrupted_file(cls, file_path: str, error: BaseException, *,
                              manager: ErrorRecoveryManager | None = None) -> dict[str, Any]:
        """A file that cannot be parsed: skip it (re-reading will not help)."""
        return cls._handle("corrupted_file", ErrorSeverity.MEDIUM, file_path, error,
                           "corrupted file", manager)

    @classmethod
    def handle_ocr_failure(cls, file_path: str, error: BaseException, *,
                           manager: ErrorRecoveryManager | None = None) -> dict[str, Any]:
        """OCR failed on a scan: its text is lost unless a fallback extractor runs."""
        return cls._handle("ocr", ErrorSeverity.HIGH, file_path, error,
                           "OCR failed; use the fallback text extraction", manager)


class AgentExecutionErrorHandler:
    """Agent runs: resource limits, tool failures, runaway loops."""

    COMPONENT = "AgentExecutor"

    @classmethod
    def handle_resource_limit_exceeded(cls, agent_id: str, limit_type: str, error: BaseException,
                                       *, manager: ErrorRecoveryManager | None = None
                                       ) -> RecoveryAction:
        """The agent hit ``limit_type`` (max_steps, max_tokens...): stop it."""
        return _manager(manager).handle_error(
            error=error, category=ErrorCategory.AGENT_EXECUTION, severity=ErrorSeverity.HIGH,
            component=cls.COMPONENT, operation="resource_limit",
            metadata={"agent_id": agent_id, "limit_type": limit_type}, transient=False)

    @classmethod
    def handle_tool_failure(cls, agent_id: str, tool_name: str, error: BaseException, *,
                            manager: ErrorRecoveryManager | None = None) -> bool:
        """Whether to call the tool again: yes until ``max_tool_retries`` failures in a row."""
        mgr = _manager(manager)
        action = mgr.handle_error(
            error=error, category=ErrorCategory.AGENT_EXECUTION, severity=ErrorSeverity.MEDIUM,
            component=cls.COMPONENT, operation="tool_call",
            metadata={"agent_id": agent_id, "tool_name": tool_name})
        failures = mgr.count_attempt(("tool", agent_id, tool_name))
        limit = get_config().error_handling.recovery.max_tool_retries
        return action.action_type is RecoveryActionType.RETRY and failures <= limit

    @classmethod
    def reset_tool_failures(cls, agent_id: str, tool_name: str, *,
                            manager: ErrorRecoveryManager | None = None) -> None:
        """The tool worked: its failure count starts again from zero."""
        _manager(manager).reset_attempts(("tool", agent_id, tool_name))

    @classmethod
    def handle_infinite_loop(cls, agent_id: str, step_count: int, error: BaseException, *,
                             manager: ErrorRecoveryManager | None = None) -> RecoveryAction:
        """The agent loops without progress: abort it (critical, so it alerts)."""
        return _manager(manager).handle_error(
            error=error, category=ErrorCategory.AGENT_EXECUTION,
            severity=ErrorSeverity.CRITICAL, component=cls.COMPONENT, operation="runaway_loop",
            metadata={"agent_id": agent_id, "step_count": step_count}, transient=False)


class MemoryStorageErrorHandler:
    """Vector database, memory capacity and embedding API errors."""

    COMPONENT = "MemoryStore"

    @classmethod
    def handle_vector_db_connection_error(cls, error: BaseException, *,
                                          manager: ErrorRecoveryManager | None = None) -> bool:
        """Whether a fallback store exists (one registered for ``VECTOR_DB`` on the manager)."""
        mgr = _manager(manager)
        mgr.handle_error(
            error=error, category=ErrorCategory.VECTOR_DB, severity=ErrorSeverity.HIGH,
            component=cls.COMPONENT, operation="vector_db_connect")
        return mgr.has_fallback(ErrorCategory.VECTOR_DB)

    @classmethod
    def handle_memory_capacity_exceeded(cls, error: BaseException, *,
                                        manager: ErrorRecoveryManager | None = None
                                        ) -> RecoveryAction:
        """Memory is full: the policy says whether to fall back (evict, spill) or abort."""
        return _manager(manager).handle_error(
            error=error, category=ErrorCategory.MEMORY_STORAGE, severity=ErrorSeverity.HIGH,
            component=cls.COMPONENT, operation="memory_capacity")

    @classmethod
    def handle_embedding_api_failure(cls, error: BaseException, retry_count: int = 0, *,
                                     manager: ErrorRecoveryManager | None = None) -> bool:
        """Whether to retry the embedding call: yes while ``retry_count`` is below the limit."""
        action = _manager(manager).handle_error(
            error=error, category=ErrorCategory.API_CALL, severity=ErrorSeverity.MEDIUM,
            component=cls.COMPONENT, operation="embedding_api",
            metadata={"retry_count": retry_count})
        limit = get_config().error_handling.recovery.max_embedding_retries
        return action.action_type is RecoveryActionType.RETRY and retry_count < limit
