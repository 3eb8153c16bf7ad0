"""vigil: error handling and monitoring for Python services, wired into Prometheus.

The public surface is re-exported here; the seed's imports work from the subpackages too
(``from vigil.monitoring import StructuredLogger``,
``from vigil.error_handling import CircuitBreaker``).
"""

from typing import Any

from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import ConfigError, VigilConfig, configure, get_config, load_config
from vigil.config import deferred_errors as _deferred_errors

# The shared objects (performance_monitor, execution_tracer, alert_manager, ...) are built as
# their modules are imported; a wrong VIGIL_* variable must not make the import itself raise
# (vigil --version, a service that configures vigil by code): see config.deferred_errors.
with _deferred_errors():
    # (vigil.asgi and vigil.wsgi, the web middlewares, import no web framework.)
    from vigil.asgi import VigilMiddleware
    from vigil.error_handling import (
        AgentExecutionErrorHandler,
        CircuitBreaker,
        CircuitOpenError,
        CircuitState,
        CustomCategory,
        ErrorCategory,
        ErrorRecoveryManager,
        ErrorSeverity,
        FileProcessingErrorHandler,
        MemoryStorageErrorHandler,
        RecoveryAction,
        RecoveryActionType,
        RecoveryPolicy,
        Retrier,
        RetryPolicy,
        all_breakers,
        error_recovery_manager,
        retry_events,
        with_retry,
    )
    from vigil.monitoring import (
        Alert,
        AlertHandler,
        AlertManager,
        AlertSeverity,
        ExecutionTracer,
        JsonLineFormatter,
        PerformanceMonitor,
        ResourceMonitor,
        ResourceUsage,
        SpanContext,
        StructuredLogger,
        alert_manager,
        bind_context,
        capture_resource_usage,
        configure_logging,
        continue_trace,
        current_span,
        execution_tracer,
        extract_traceparent,
        format_traceparent,
        get_recent_logs,
        inject_traceparent,
        logging_config,
        monitor_performance,
        parse_traceparent,
        performance_monitor,
        trace_context,
        trace_execution,
    )
    from vigil.wsgi import VigilWSGIMiddleware

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # vigil.start_exporter(...) is the documented way to embed the exporter, but lib/ must not
    # import the exporter package (the dependency runs the other way), so it is resolved on
    # first use only.
    if name == "start_exporter":
        from vigil_exporter.server import start_exporter

        return start_exporter
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")

__all__ = [
    "AgentExecutionErrorHandler",
    "Alert",
    "AlertHandler",
    "AlertManager",
    "AlertSeverity",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigError",
    "CustomCategory",
    "ErrorCategory",
    "ErrorRecoveryManager",
    "ErrorSeverity",
    "ExecutionTracer",
    "FileProcessingErrorHandler",
    "JsonLineFormatter",
    "MemoryStorageErrorHandler",
    "PerformanceMonitor",
    "RecoveryAction",
    "RecoveryActionType",
    "RecoveryPolicy",
    "ResourceMonitor",
    "ResourceUsage",
    "Retrier",
    "RetryPolicy",
    "SYSTEM_CLOCK",
    "SpanContext",
    "StructuredLogger",
    "SystemClock",
    "VigilConfig",
    "VigilMiddleware",
    "VigilWSGIMiddleware",
    "alert_manager",
    "all_breakers",
    "bind_context",
    "capture_resource_usage",
    "configure",
    "configure_logging",
    "continue_trace",
    "current_span",
    "error_recovery_manager",
    "execution_tracer",
    "extract_traceparent",
    "format_traceparent",
    "get_config",
    "get_recent_logs",
    "inject_traceparent",
    "load_config",
    "logging_config",
    "monitor_performance",
    "parse_traceparent",
    "performance_monitor",
    "retry_events",
    "trace_context",
    "trace_execution",
    "with_retry",
]
