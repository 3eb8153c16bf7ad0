"""vigil: error handling and monitoring for Python services, wired into Prometheus.

The public surface is re-exported here; the seed's imports work from the subpackages too
(``from vigil.monitoring import StructuredLogger``).
"""

from vigil.clock import SYSTEM_CLOCK, Clock, SystemClock
from vigil.config import ConfigError, VigilConfig, configure, get_config, load_config
from vigil.monitoring import (
    Alert,
    AlertHandler,
    AlertManager,
    AlertSeverity,
    ExecutionTracer,
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
    monitor_performance,
    parse_traceparent,
    performance_monitor,
    trace_context,
    trace_execution,
)

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AlertHandler",
    "AlertManager",
    "AlertSeverity",
    "Clock",
    "ConfigError",
    "ExecutionTracer",
    "PerformanceMonitor",
    "ResourceMonitor",
    "ResourceUsage",
    "SYSTEM_CLOCK",
    "SpanContext",
    "StructuredLogger",
    "SystemClock",
    "VigilConfig",
    "alert_manager",
    "bind_context",
    "capture_resource_usage",
    "configure",
    "configure_logging",
    "continue_trace",
    "current_span",
    "execution_tracer",
    "extract_traceparent",
    "format_traceparent",
    "get_config",
    "get_recent_logs",
    "inject_traceparent",
    "load_config",
    "monitor_performance",
    "parse_traceparent",
    "performance_monitor",
    "trace_context",
    "trace_execution",
]
