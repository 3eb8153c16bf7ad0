"""The JSON API's response models: the OpenAPI description of what the routes answer.

Pydantic models used only as ``response_model=`` and ``responses=`` (the routes build their
answers as dicts, encoded by :mod:`vigil_exporter.responses`), so each field's description is
what ``/openapi.json`` publishes and a fuzzer such as schemathesis checks answers against.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vigil_exporter.queries import MAX_TREE_DEPTH

__all__ = ["AlertInfo", "BreakerInfo", "DeadLetterInfo", "DeliveriesInfo", "ErrorResponse",
           "LogEntry", "MetricStats", "ProcessInfo", "StatusResponse", "TraceById", "TraceEntry",
           "TraceNode", "TraceTree", "WebhookAccepted"]

_PID = "process id of the worker whose buffer holds it"
_HOST = "host name of that worker's machine"


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="what went wrong, in one line")
    detail: list[Any] = Field(default_factory=list,
                              description="validation errors, for a 422 on a parameter")


class StatusResponse(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: str


class WebhookAccepted(BaseModel):
    """The webhook took the notification."""

    status: Literal["accepted"]
    alerts: int = Field(description="new alerts committed to the store for the handlers")
    duplicates: int = Field(description="alerts dropped as redeliveries of accepted ones")


class DeadLetterInfo(BaseModel):
    """A delivery given up after its last allowed attempt."""

    alert_id: str = Field(description="the alert's stable id (alert['id'] in the handler)")
    handler: str
    attempts: int
    error: str = Field(description="the handler's last exception")
    failed_at: float = Field(description="epoch seconds of the last failure")
    alert: dict[str, Any] = Field(description="what the handler was given (redacted)")


class ProcessInfo(BaseModel):
    """The process that answered. Each worker process answers the JSON API from its own
    in-memory buffers; under several workers the next request may reach another one."""

    pid: int = Field(description="its process id")
    host: str = Field(description="its host name (socket.gethostname())")
    multiprocess: bool = Field(description=(
        "prometheus_client's multiprocess mode is on (PROMETHEUS_MULTIPROC_DIR): several "
        "workers share /metrics; false does not prove a single worker (uvicorn --workers "
        "without it)"))


class DeliveriesInfo(BaseModel):
    """The durable store between the webhook and the handlers."""

    pending_alerts: int = Field(description="alerts waiting for (or in) a handler call")
    pending_bytes: int
    max_alerts: int
    max_bytes: int
    dead_letters: int
    pending_by_handler: dict[str, int]
    running_by_handler: dict[str, int]
    recent_dead_letters: list[DeadLetterInfo]
    open_alert_ids: list[str] = Field(description="ids of up to `limit` alerts a handler has "
                                                  "not finished yet (a delivery pending or "
                                                  "running), newest first")
    process: ProcessInfo = Field(description="the worker that answered (the store itself is "
                                             "shared by every worker)")


class BreakerInfo(BaseModel):
    """One circuit breaker, from ``CircuitBreaker.snapshot()``."""

    name: str
    state: Literal["CLOSED", "OPEN", "HALF_OPEN", "DISABLED", "METRICS_ONLY", "FORCED_OPEN"]
    failure_count: int = Field(description="consecutive failures")
    counts: dict[str, int] = Field(description="calls by outcome since the breaker was made")
    seconds_until_probe: float = Field(description="while open: seconds until a trial call")
    recovery_timeout: float = Field(description="seconds the next trip keeps it open")
    failure_rate: float | None = Field(description="failures / calls in its sliding window")
    pid: int = Field(description=_PID + " (a breaker's state is each worker's own)")
    host: str = Field(description=_HOST)
    workers: dict[str, str] | None = Field(
        default=None, description="under multiprocess mode (PROMETHEUS_MULTIPROC_DIR): the "
                                  "breaker's state in every live worker, by pid, from the "
                                  "workers' metric files; null otherwise")


class TraceEntry(BaseModel):
    """One traced operation (a span)."""

    id: str
    trace_id: str
    parent_id: str | None
    component: str
    operation: str
    status: str
    start: str
    end: str | None
    duration_ms: float | None
    metadata: dict[str, Any]
    error: dict[str, Any] | None
    pid: int = Field(description=_PID + " (spans stay in the worker that recorded them)")
    host: str = Field(description=_HOST)


class TraceNode(TraceEntry):
    """A trace entry with its retained descendants."""

    children: list[TraceNode]
    truncated: bool = Field(False, description="descendants below this node were left out "
                                               f"(deeper than {MAX_TREE_DEPTH} levels)")


class TraceTree(TraceNode):
    """The entry asked for, its retained descendants, and the worker that answered."""

    process: ProcessInfo


class TraceById(BaseModel):
    """Every entry of one W3C trace that the worker that answered retains, as trees."""

    trace_id: str = Field(description="the W3C trace id asked for (32 hex digits, lower case)")
    span_count: int = Field(description="entries (tree nodes) in roots")
    truncated: bool = Field(description=(
        "roots were left out (the latest-starting ones) to keep the answer within "
        "exporter.api_max_bytes; a tree cut by depth says so in its own nodes"))
    process: ProcessInfo
    roots: list[TraceNode] = Field(description=(
        "the trace's entries whose parent is not retained here (the trace's root, or the "
        "first entries under a remote caller or an OpenTelemetry span), by start, each with "
        "its retained descendants"))


class LogEntry(BaseModel):
    """One JSON log line kept in memory."""

    timestamp: str
    level: str
    component: str
    message: str
    trace_id: str | None
    span_id: str | None
    service: str | None = Field(None, description="monitoring.logging.service, when set")
    pid: int = Field(description="process id of the worker that wrote the line (its pid "
                                 "field, else the worker that answered)")
    host: str = Field(description="host name of that worker (the line's host field, else the "
                                  "answering worker's)")
    metadata: dict[str, Any]
    exception: dict[str, Any] | None = None


class AlertInfo(BaseModel):
    """One recorded alert."""

    id: str
    timestamp: str
    severity: str
    component: str
    message: str
    metadata: dict[str, Any]
    fingerprint: str
    source: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    count: int
    pid: int = Field(description=_PID)
    host: str = Field(description=_HOST)


class MetricStats(BaseModel):
    """Statistics over the retained records of one seed-style metric name."""

    name: str
    count: int
    sum: float
    min: float | None
    max: float | None
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    process: ProcessInfo = Field(description="the worker that answered: the statistics are "
                                             "over the records it holds")
