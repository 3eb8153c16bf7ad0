"""The monitoring half of vigil: JSON logs, metrics, resource usage, traces and alerts.

Every name the seed imports from ``app.core.monitoring`` is here::

    from vigil.monitoring import (StructuredLogger, PerformanceMonitor, performance_monitor,
                                  monitor_performance, ExecutionTracer, execution_tracer,
                                  trace_execution, trace_context, alert_manager)
"""

from typing import TYPE_CHECKING

from vigil._lazy import forwarding
from vigil.monitoring.alerts import Alert, AlertHandler, AlertManager, AlertSeverity
from vigil.monitoring.context import SpanContext, bind_context, current_span
from vigil.monitoring.logs import (
    JsonLineFormatter,
    StructuredLogger,
    configure_logging,
    get_recent_logs,
    logging_config,
)
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.propagation import (
    continue_trace,
    extract_traceparent,
    format_traceparent,
    inject_traceparent,
    parse_traceparent,
)
from vigil.monitoring.resources import ResourceMonitor, ResourceUsage, capture_resource_usage
from vigil.monitoring.tracing import ExecutionTracer, trace_context, trace_execution

# The shared objects are built on first use, in their own modules (see vigil._lazy).
if TYPE_CHECKING:
    from vigil.monitoring.alerts import alert_manager
    from vigil.monitoring.metrics import performance_monitor
    from vigil.monitoring.tracing import execution_tracer
else:
    __getattr__ = forwarding(__name__, {"alert_manager": "vigil.monitoring.alerts",
                                        "execution_tracer": "vigil.monitoring.tracing",
                                        "performance_monitor": "vigil.monitoring.metrics"})

__all__ = [
    "Alert",
    "AlertHandler",
    "AlertManager",
    "AlertSeverity",
    "ExecutionTracer",
    "JsonLineFormatter",
    "PerformanceMonitor",
    "ResourceMonitor",
    "ResourceUsage",
    "SpanContext",
    "StructuredLogger",
    "alert_manager",
    "bind_context",
    "capture_resource_usage",
    "configure_logging",
    "continue_trace",
    "current_span",
    "execution_tracer",
    "extract_traceparent",
    "format_traceparent",
    "get_recent_logs",
    "inject_traceparent",
    "logging_config",
    "monitor_performance",
    "parse_traceparent",
    "performance_monitor",
    "trace_context",
    "trace_execution",
]
