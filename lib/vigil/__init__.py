"""vigil: error handling and monitoring for Python services, wired into Prometheus.

The public surface is re-exported here; the seed's imports work from the subpackages too
(``from vigil.monitoring import StructuredLogger``,
``from vigil.error_handling import CircuitBreaker``).
"""

from typing import TYPE_CHECKING

# vigil's metrics, log lines and alerts attach to the breakers', retries' and recovery
# managers' hooks (attaching only: no metric, config or thread until one is built).
import vigil.reporting  # noqa: F401
from vigil._lazy import forwarding

# (vigil.asgi and vigil.wsgi, the web middlewares, import no web framework.)
from vigil.asgi import VigilMiddleware
from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import ConfigError, VigilConfig, configure, get_config, load_config
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
    current_attempt,
    retry_events,
    retrying,
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
    bind_context,
    capture_resource_usage,
    configure_logging,
    continue_trace,
    current_span,
    extract_traceparent,
    format_traceparent,
    get_recent_logs,
    inject_traceparent,
    logging_config,
    monitor_performance,
    parse_traceparent,
    trace_context,
    trace_execution,
)
from vigil.wsgi import VigilWSGIMiddleware

__version__ = "0.1.0"


# The shared objects are built on first use, in their own modules (see vigil._lazy).
if TYPE_CHECKING:
    from vigil.error_handling.recovery import error_recovery_manager
    from vigil.monitoring.alerts import alert_manager
    from vigil.monitoring.metrics import performance_monitor
    from vigil.monitoring.tracing import execution_tracer
else:
    __getattr__ = forwarding(__name__, {
        "alert_manager": "vigil.monitoring.alerts",
        "error_recovery_manager": "vigil.error_handling.recovery",
        "execution_tracer": "vigil.monitoring.tracing",
        "performance_monitor": "vigil.monitoring.metrics",
    }, moved={
        # lib/ never imports the exporter, not even lazily: the dependency runs the other way.
        "start_exporter": "use 'from vigil_exporter import start_exporter' "
                          "(pip install 'vigil[exporter]')",
    })

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
    "current_attempt",
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
    "retrying",
    "trace_context",
    "trace_execution",
    "with_retry",
]
