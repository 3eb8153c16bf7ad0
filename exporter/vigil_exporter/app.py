"""The exporter's HTTP app: ``/metrics``, health, the JSON API, the Alertmanager webhook and
the HTML console at ``/`` (:mod:`vigil_exporter.console`).

:func:`create_app` builds a FastAPI application (FastAPI: concurrent requests on one event
loop, blocking work in a thread pool, and an OpenAPI description at ``/openapi.json`` that a
fuzzer such as schemathesis can run against). Every route and answer is listed in that
description; the README's routes table is its summary.

How it behaves:

- **Errors are JSON**, one shape for every 4xx and 5xx: ``{"error": "<one readable line>",
  "detail": [...]}`` (``detail`` holds FastAPI's validation errors for a 422 on a query
  parameter, else is empty). Bad input is always a 4xx; a 500 means a bug, and is logged by
  ``StructuredLogger("vigil.exporter")`` with the method and path (never headers).
- **Responses always encode**: values the API returns (trace and alert metadata hold whatever
  the application put there) go through :func:`json_safe` (:mod:`vigil.jsonsafe`'s rule:
  unknown objects become their text, non-finite floats ``"NaN"``/``"Infinity"``, lone
  surrogates U+FFFD, nesting past :data:`MAX_JSON_DEPTH` ``"[TOO DEEP]"``). A
  trace tree is cut below :data:`MAX_TREE_DEPTH` levels (the cut node has ``truncated: true``);
  a whole W3C trace keeps within ``api_max_bytes`` by leaving out whole trees.
- **Nothing slow runs on the event loop**: ``/metrics`` renders in a worker thread (a scrape of
  10k series takes ~100 ms), the JSON API's queries run in the thread pool, and webhook bodies
  are parsed there.
- **Every request is bounded** by :class:`RequestLimitsMiddleware`: a body over
  ``max_body_bytes`` gets 413 (by ``Content-Length`` before reading, by counting otherwise), a
  client whose body is not complete ``request_timeout`` seconds after its head gets 408 and
  its connection is closed (the whole body, however it is split).
- **Who may ask** is decided before routing by
  :class:`~vigil_exporter.policy.HTTPPolicyMiddleware`: a ``Host`` that is not one of the
  exporter's names gets 421 (DNS rebinding), a browser's foreign ``Origin`` 403 (all but the
  health routes), and with ``exporter.api_*`` credentials set every route but health and the
  webhook needs them (401). HEAD is answered wherever GET is; every answer carries nosniff,
  ``X-Frame-Options: DENY``, no referrer, a ``default-src 'none'`` CSP (the docs pages and the
  console set their own) and ``Cache-Control: no-store``; there are no trailing-slash
  redirects and no ``/docs`` unless ``exporter.docs_enabled``. ``/metrics`` honours the q
  values of ``Accept`` (406 when neither format is acceptable).
- **The webhook** checks credentials before reading the body (401, nothing stored), takes
  only ``application/json`` (415: a browser's cross-site form or text/plain POST), parses
  in the thread pool (400/422), commits the notification's new alerts to the durable
  :class:`~vigil_exporter.store.AlertStore` and only then answers 200 with the counts; 503 with
  ``Retry-After`` when the store is full, failing or the app is stopping, so that Alertmanager
  retries. The :class:`~vigil_exporter.delivery.DeliveryLoop` hands the stored alerts to the
  handlers registered on the ``AlertManager``, at least once.
"""

from __future__ import annotations

import atexit
import gzip
import os
import re
import socket
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Protocol

import anyio
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil import __version__
from vigil.config import (
    LOG_LEVEL_ALIASES,
    LOG_LEVELS,
    ExporterSettings,
    get_config,
    log_level_name,
)
from vigil.error_handling.breaker import CircuitBreaker, all_breakers
from vigil.monitoring import alerts as vigil_alerts
from vigil.monitoring import logs as vigil_logs
from vigil.monitoring import metrics as vigil_metrics
from vigil.monitoring import multiprocess as vigil_multiprocess
from vigil.monitoring import tracing as vigil_tracing
from vigil.monitoring.alerts import AlertManager, AlertSeverity
from vigil.monitoring.instruments import counter
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.multiprocess import exposition
from vigil.monitoring.tracing import ExecutionTracer
from vigil.text import safe_text
from vigil_exporter.auth import Credentials, WebhookAuth
from vigil_exporter.console import console_router
from vigil_exporter.delivery import DeliveryLoop, StoreCollector
from vigil_exporter.policy import (
    HEAD_SCOPE_KEY,
    OPEN_PATHS,
    HTTPPolicyMiddleware,
    add_docs_routes,
    exposure_warning,
)
from vigil_exporter.responses import (
    MAX_JSON_DEPTH,
    BudgetedListResponse,
    SafeJSONResponse,
    encode_within,
    json_safe,
)
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short
from vigil_exporter.store import AlertStore, Incoming, identity, open_store
from vigil_exporter.webhook import (
    NOTIFICATION_SCHEMA,
    Notification,
    PayloadError,
    parse_notification,
    to_send_alert_kwargs,
)

__all__ = [
    "API_LIMIT_DEFAULT",
    "API_LIMIT_MAX",
    "MAX_JSON_DEPTH",
    "MAX_TREE_DEPTH",
    "RETRY_AFTER_SECONDS",
    "AlertInfo",
    "BreakerInfo",
    "Credentials",
    "DeadLetterInfo",
    "DeliveriesInfo",
    "ErrorResponse",
    "LogEntry",
    "MetricStats",
    "ProcessInfo",
    "RequestLimitsMiddleware",
    "StatusResponse",
    "TraceById",
    "TraceEntry",
    "TraceNode",
    "TraceTree",
    "WebhookAccepted",
    "WebhookAuth",
    "create_app",
    "json_safe",
    "metrics_media_range",
    "render_metrics",
]

API_LIMIT_DEFAULT = 100
API_LIMIT_MAX = 1000
MAX_TREE_DEPTH = 100  # trace tree levels returned by /api/traces/{id}
_W3C_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")  # /api/traces/{id}: a whole trace (fullmatch)
RETRY_AFTER_SECONDS = 5  # what a 503 asks for (Alertmanager uses its own backoff anyway)
_ALERT_STATUSES = ("firing", "resolved")


# --- response models: the OpenAPI description of what the routes answer -------------------


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


_API_SCOPE = (
    "Scope: each worker process answers from its own in-memory buffers. Under several "
    "workers (gunicorn -w N, uvicorn --workers N) an answer holds only what the worker that "
    "took the request recorded (or inherited when it was forked), and the next request may "
    "reach another worker: entries carry the pid and host of the process that holds them, "
    "and the answer names the one that answered (headers Vigil-Pid, Vigil-Host, "
    "Vigil-Multiprocess; `process` in object answers). /metrics, under prometheus_client's "
    "multiprocess mode, adds up every worker; this API does not.")
_PID = "process id of the worker whose buffer holds it"
_HOST = "host name of that worker's machine"


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


# --- queries: the JSON API's data, separate from the route wiring ---------------------------


def breaker_list(breakers: Iterable[CircuitBreaker]) -> list[dict[str, Any]]:
    """The ``/api/breakers`` entries for ``breakers``.

    Under multiprocess mode each entry also has ``workers``: the breaker's state in every live
    worker, by pid, read from the state gauge's files (so one answer shows them all).
    """
    workers = _states_by_worker() if vigil_multiprocess.MULTIPROCESS else None
    entries = []
    for breaker in breakers:
        snap = breaker.snapshot()
        entries.append({
            "name": snap["name"], "state": snap["state"],
            "failure_count": snap["failure_count"], "counts": snap["calls"],
            "seconds_until_probe": snap["seconds_until_probe"],
            "recovery_timeout": snap["recovery_timeout"], "failure_rate": snap["failure_rate"],
            **({} if workers is None else {"workers": workers.get(snap["name"], {})}),
        })
    return entries


def _states_by_worker() -> dict[str, dict[str, str]]:
    """breaker -> pid -> state, from every live worker's ``vigil_circuit_breaker_state``."""
    states: dict[str, dict[str, str]] = {}
    for labels, value in vigil_multiprocess.per_worker("vigil_circuit_breaker_state"):
        if value == 1 and "pid" in labels:
            states.setdefault(labels.get("breaker", ""), {})[labels["pid"]] = \
                labels.get("state", "")
    return {name: dict(sorted(by_pid.items())) for name, by_pid in states.items()}


def _redacted(metadata: Any) -> Any:
    """Metadata with secret-looking keys redacted, as in the log lines (the API is no backdoor)."""
    return vigil_logs.redact(metadata, get_config().monitoring.logging.redact_keys) \
        if metadata else metadata


def trace_tree(tracer: ExecutionTracer, trace_id: str,
               process: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The tree under ``trace_id``, cut below :data:`MAX_TREE_DEPTH` levels; None if unknown.

    With ``process`` (:func:`process_info`) every node gets its ``pid`` and ``host`` (unless
    it has its own) and the root ``process``.
    """
    tree = tracer.get_trace_tree(trace_id)
    if tree is None:
        return None
    _prepare_tree(tree, process)
    if process is not None:
        tree["process"] = dict(process)
    return tree


_ROOTS_KEY = b',"roots":'  # spliced after the head of a trace_by_trace_id answer


def trace_by_trace_id(tracer: ExecutionTracer, trace_id: str, process: Mapping[str, Any],
                      max_bytes: int) -> tuple[bytes, bool] | None:
    """The ``/api/traces/{trace_id}`` answer for a W3C trace id (32 hex, lower case), encoded
    within ``max_bytes``, and whether roots were left out; None when no entry is retained.

    The answer is ``{"trace_id", "span_count", "truncated", "process", "roots"}``: the
    tracer's :meth:`~ExecutionTracer.get_trace_by_trace_id` trees, each prepared as
    :func:`trace_tree` prepares its one. As many whole roots as fit, in start order (so the
    latest-starting are left out, possibly all of them), with ``truncated: true`` when any
    were. A root is prepared and encoded only when its turn comes: past the first root that
    does not fit none is, and the answer is built within the budget plus that one root (the
    trees themselves are copies of what the tracer retains, bounded by its retention).
    """
    roots = tracer.get_trace_by_trace_id(trace_id)
    if not roots:
        return None
    counts: list[int] = []

    def prepared() -> Iterator[dict[str, Any]]:
        for root in roots:
            counts.append(_prepare_tree(root, process))
            yield root

    def head(span_count: int, truncated: bool) -> bytes:
        return bytes(SafeJSONResponse({"trace_id": trace_id, "span_count": span_count,
                                       "truncated": truncated, "process": dict(process)}).body)

    # Every node kept takes more than one byte of the roots, so span_count <= max_bytes: the
    # head at its largest leaves the roots what the whole answer may still take.
    budget = max_bytes - len(head(max_bytes, False)) - len(_ROOTS_KEY)
    encoded, kept, truncated = encode_within(prepared(), budget)
    return head(sum(counts[:kept]), truncated)[:-1] + _ROOTS_KEY + encoded + b"}", truncated


def _prepare_tree(tree: dict[str, Any], process: Mapping[str, Any] | None) -> int:
    """Make a :meth:`~ExecutionTracer.get_trace_tree` dict an API answer's tree, in place, and
    return its node count: metadata redacted, ``pid`` and ``host`` on every node (with
    ``process``), and ``truncated`` on each (true where it was cut: below
    :data:`MAX_TREE_DEPTH` levels)."""
    count = 0
    # Iterative: a tree deep enough to need cutting would overflow a recursive walk.
    stack: list[tuple[dict[str, Any], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        node["metadata"] = _redacted(node.get("metadata"))
        if process is not None:
            _label(node, process)
        node["truncated"] = False
        if depth >= MAX_TREE_DEPTH and node["children"]:
            node["children"] = []
            node["truncated"] = True
        else:
            stack.extend((child, depth + 1) for child in node["children"])
    return count


def process_info() -> dict[str, Any]:
    """The answering process, as the JSON API names it: ``{"pid", "host", "multiprocess"}``
    (the current pid: right in a forked worker)."""
    return {"pid": os.getpid(), "host": safe_text(socket.gethostname()),
            "multiprocess": vigil_multiprocess.MULTIPROCESS}


def _process_headers(process: Mapping[str, Any]) -> dict[str, str]:
    """``Vigil-Pid``, ``Vigil-Host`` (percent-encoded if not printable ASCII) and
    ``Vigil-Multiprocess`` for an answer of ``process``."""
    host = str(process["host"])
    if not (host.isascii() and host.isprintable()):
        host = urllib.parse.quote(host, safe="", errors="replace")
    return {"Vigil-Pid": str(process["pid"]), "Vigil-Host": host,
            "Vigil-Multiprocess": "true" if process["multiprocess"] else "false"}


def _label(entry: dict[str, Any], process: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with ``pid`` and ``host``: its own when it has them (a log line's fields),
    else the answering process's, whose buffer holds it."""
    entry.setdefault("pid", process["pid"])
    entry.setdefault("host", process["host"])
    return entry


def metric_stats(monitor: PerformanceMonitor, name: str) -> dict[str, Any] | None:
    """``get_metric_stats(name)`` with its name, or None for a name never recorded."""
    if name not in monitor.metric_names():
        return None
    return {"name": name, **monitor.get_metric_stats(name)}


def render_metrics(registry: CollectorRegistry, accept: str, accept_encoding: str,
                   names: list[str] | None = None) -> tuple[bytes, dict[str, str]]:
    """The exposition of ``registry`` and its headers, as a scrape with these headers wants.

    Text format 0.0.4 by default; OpenMetrics (with exemplars) when ``Accept`` prefers it
    (:func:`metrics_media_range`; when neither format is acceptable, text: the route answers
    406 before calling this); gzip when ``Accept-Encoding`` allows it; only the families in
    ``names`` when given.
    """
    encoder, content_type = _choose_encoder(accept)
    served = exposition(registry)  # every worker's numbers under multiprocess mode
    target: Any = served.restricted_registry(names) if names else served
    body = encoder(target)
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


_VERSION_PARAM = re.compile(r"^\s*version\s*=\s*(.*)$")
_DOTTED_NUMBER = re.compile(r"^\d+(\.\d+)*$")


_TEXT = "text/plain"
_OPENMETRICS = "application/openmetrics-text"
_Q_VALUE = re.compile(r"^(0(\.\d{0,3})?|1(\.0{0,3})?)$")  # RFC 9110 qvalue


def metrics_media_range(accept: str) -> str | None:
    """The media range of ``Accept`` that ``/metrics`` answers with; None: 406.

    prometheus_client's ``choose_encoder`` takes the first range it knows and ignores q, so
    ``application/openmetrics-text;q=0`` (not acceptable) got OpenMetrics. Here each of the
    two formats gets the q of the most specific range matching it (``text/plain`` beats
    ``text/*`` beats ``*/*``); the higher q wins, a tie goes to text; a range with a malformed
    q is ignored. No range matching either format (or no Accept) means text, the default; a
    text format explicitly refused (q=0) with OpenMetrics not acceptable either means None.
    The range returned keeps its parameters (``version=``) when it named the format exactly.
    """
    best: dict[str, tuple[int, float, str]] = {}  # format -> (specificity, q, range)
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        kept, q = [], 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() != "q":
                kept.append(param)
            elif _Q_VALUE.match(value.strip()):
                q = float(value)
            else:
                q = -1.0  # malformed: the range is ignored
        if not media or q < 0:
            continue
        for candidate in (_TEXT, _OPENMETRICS):
            specificity = 3 if media == candidate else \
                2 if media == f"{candidate.partition('/')[0]}/*" else 1 if media == "*/*" else 0
            if not specificity:
                continue
            chosen = ";".join([candidate, *kept]) if specificity == 3 else candidate
            previous = best.get(candidate)
            if previous is None or (specificity, q) > previous[:2]:
                best[candidate] = (specificity, q, chosen)
    text, openmetrics = best.get(_TEXT), best.get(_OPENMETRICS)
    if openmetrics is not None and openmetrics[1] > 0 and (text is None or
                                                            openmetrics[1] > text[1]):
        return openmetrics[2]
    if text is None:
        return ""
    return text[2] if text[1] > 0 else None


def _choose_encoder(accept: str) -> tuple[Callable[[Any], bytes], str]:
    """prometheus_client's encoder for :func:`metrics_media_range`'s choice, minus its crash
    on a malformed ``version=`` parameter.

    A version that is not dotted numbers is dropped (as if not given), so a garbled header
    gets a default format instead of a 500.
    """
    accept = metrics_media_range(accept) or ""
    ranges = []
    for media_range in accept.split(","):
        params = [p for p in media_range.split(";")
                  if not ((m := _VERSION_PARAM.match(p)) and not _DOTTED_NUMBER.match(m[1]))]
        ranges.append(";".join(params))
    try:
        return choose_encoder(",".join(ranges))
    except Exception:  # a parsing failure in prometheus_client: fall back to the text format
        return choose_encoder("")


# --- limits on every request ----------------------------------------------------------------


class _RequestRejected(StarletteHTTPException):
    """Raised from ``receive``: a route that reads its body gets the right answer through the
    exception handlers, and the middleware answers it when it escapes them."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, headers={"Connection": "close"})


class _MiddlewareLogger(Protocol):
    """The part of StructuredLogger the middleware uses."""

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None) -> None: ...

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None: ...


class RequestLimitsMiddleware:
    """ASGI middleware: body size limit, body receive timeout, and the last-resort 500.

    - ``Content-Length`` over ``max_body_bytes``: 413 before the app runs (malformed: 400).
    - Body bytes counted as the app reads them: past ``max_body_bytes``, 413.
    - The whole body must arrive within ``request_timeout`` seconds of the app's start (the end
      of the request head), however it is split: past that, 408 with ``Connection: close``, so
      a client that stops or trickles frees its connection. Once the body is complete,
      ``receive`` (waiting for a disconnect) is not timed.
    - An exception out of the app before its response started: logged, answered 500 JSON.

    ``on_response(scope, status)`` is called with the status of every response started.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, request_timeout: float,
                 logger: _MiddlewareLogger | None = None,
                 on_response: Callable[[Scope, int], None] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.logger: _MiddlewareLogger = (logger if logger is not None
                                          else StructuredLogger("vigil.exporter"))
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if self.on_response is not None:
                    self.on_response(scope, int(message["status"]))
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                raise _RequestRejected(413, self._too_large())
            await self.app(scope, self._limited(receive), tracked_send)
        except _RequestRejected as exc:
            self._log("warning", "request rejected", scope, status=exc.status_code,
                      error=exc.detail)
            if not started:
                await _error(exc.status_code, exc.detail, headers=exc.headers)(
                    scope, receive, tracked_send)
        except Exception as exc:
            self._log("error", "unhandled error while answering a request", scope,
                      exc_info=exc, error_type=type(exc).__name__)
            if not started:
                await _error(500, "internal server error")(scope, receive, tracked_send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        complete = False
        deadline = anyio.current_time() + self.request_timeout  # for the whole body

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                with anyio.fail_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _RequestRejected(
                    408, f"request body not received within {self.request_timeout:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _RequestRejected(413, self._too_large())
                complete = not message.get("more_body", False)
            else:  # http.disconnect: nothing more will come
                complete = True
            return message

        return limited_receive

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"

    def _log(self, level: str, message: str, scope: Scope, *,
             exc_info: BaseException | None = None, **extra: Any) -> None:
        # Method and path only: headers (Authorization) and query strings are never logged.
        metadata = {"method": scope.get("method"), "path": scope.get("path"), **extra}
        try:
            if level == "error":
                self.logger.error(message, metadata, exc_info=exc_info)
            else:
                self.logger.warning(message, metadata)
        except Exception:  # pragma: no cover - a broken logger must not break the answer
            pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                raise _RequestRejected(400, f"invalid Content-Length header {_short(text)}")
            return int(text)
    return None


# --- the app --------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": description}
    for code, description in {
        400: "malformed request (or Host header)", 401: "credentials missing or wrong",
        403: "a browser request from a foreign Origin", 404: "not found",
        406: "neither exposition format is acceptable", 408: "request body too slow",
        413: "request body too large", 415: "the body is not application/json",
        421: "the Host header is not one of the exporter's names", 422: "invalid parameter",
        500: "internal error (a bug; logged)", 503: "not available now: retry later",
    }.items()
}
_LIMIT_DESCRIPTION = f"entries to return, 1..{API_LIMIT_MAX}"
Limit = Annotated[int, Query(ge=1, le=API_LIMIT_MAX, description=_LIMIT_DESCRIPTION)]


def _any_case(words: Iterable[str]) -> str:
    """A JSON Schema pattern matching any of ``words`` in any letter case.

    The API matches these choices case-insensitively; ECMA regexes (JSON Schema's) have no
    ``(?i)``, so each letter becomes a class and the published schema says exactly what is
    accepted. Published only (``json_schema_extra``): the route checks the value itself, so a
    wrong one gets a message listing the choices rather than the regex.
    """
    options = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c)
                       for c in word) for word in words)
    return "^(" + "|".join(options) + ")$"


def create_app(*, settings: ExporterSettings | None = None,
               registry: CollectorRegistry | None = None,
               alert_manager: AlertManager | None = None,
               tracer: ExecutionTracer | None = None,
               monitor: PerformanceMonitor | None = None,
               store: AlertStore | None = None,
               state_dir: str | None = None) -> FastAPI:
    """The exporter's FastAPI app.

    Defaults: ``vigil.get_config().exporter``; the registry of ``monitor`` if given, else
    prometheus_client's default registry; vigil's ``alert_manager``, ``execution_tracer`` and
    ``performance_monitor``. The webhook's store is ``store`` (the caller's: it stays open),
    else the one ``settings`` name (:func:`~vigil_exporter.store.open_store`, in ``state_dir``
    when given), opened when the lifespan starts and closed when it ends. The lifespan also
    runs the :class:`~vigil_exporter.delivery.DeliveryLoop` (``app.state.delivery``); at its
    end the webhook answers 503 and running handler calls get ``shutdown_timeout`` seconds.
    """
    settings = settings if settings is not None else get_config().exporter
    monitor = monitor if monitor is not None else vigil_metrics.performance_monitor
    registry = registry if registry is not None else monitor.registry
    manager = alert_manager if alert_manager is not None else vigil_alerts.alert_manager
    tracer = tracer if tracer is not None else vigil_tracing.execution_tracer
    logger = StructuredLogger("vigil.exporter", registry=registry)
    auth = Credentials.from_settings(settings)
    webhook_requests = counter(registry, "vigil_webhook_requests_total",
                               "Requests to the Alertmanager webhook, by HTTP status code.",
                               ["code"])
    webhook_requests.labels("200")  # present from the start, so rate() works at once

    def start() -> None:
        """Open the store, report it, start the delivery loop (blocking: run in a thread)."""
        warning = exposure_warning(settings)
        if warning is not None:
            logger.warning(warning, {"host": settings.host})
        opened = open_store(settings, state_dir) if store is None else store
        collector: StoreCollector | None = StoreCollector(opened)
        try:
            registry.register(collector)  # type: ignore[arg-type]
        except ValueError:  # another app's store already reports on this registry
            logger.warning("vigil_webhook_store_* already registered on this registry by "
                           "another exporter app; this app's store is not reported", {})
            collector = None
        delivery = DeliveryLoop(opened, manager, settings, registry, logger=logger)
        delivery.start()
        app.state.collector = collector
        app.state.store, app.state.delivery, app.state.accepting = opened, delivery, True

    def stop() -> None:
        """The webhook answers 503 from here on; handlers get shutdown_timeout to finish."""
        app.state.accepting = False
        delivery: DeliveryLoop | None = app.state.delivery
        opened: AlertStore | None = app.state.store
        try:
            if delivery is not None:
                delivery.stop()
        finally:
            if app.state.collector is not None:
                registry.unregister(app.state.collector)
                app.state.collector = None
            if store is None and opened is not None:
                opened.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(start)
        app.state.lifespan = True
        try:
            yield
        finally:
            await run_in_threadpool(stop)

    # No /docs and /redoc unless asked (their scripts come from a CDN); no trailing-slash
    # redirects (Starlette builds their Location from the Host header).
    app = FastAPI(title="vigil exporter", version=__version__, lifespan=lifespan,
                  description=_DESCRIPTION.format(webhook_path=settings.webhook_path),
                  docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.store, app.state.delivery, app.state.accepting = None, None, False
    app.state.collector, app.state.lifespan = None, False
    app.state.registry = registry  # the server's connection metrics go there too (server.py)

    def count_webhook(scope: Scope, status: int) -> None:
        if scope.get("path") == settings.webhook_path:
            webhook_requests.labels(str(status)).inc()

    # Added first, so it runs inside RequestLimitsMiddleware: its refusals are counted and
    # its failures answered like the routes'.
    app.add_middleware(HTTPPolicyMiddleware, settings=settings, logger=logger)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes,
                       request_timeout=settings.request_timeout, logger=logger,
                       on_response=count_webhook)
    _add_error_handlers(app, logger)
    _add_metrics_routes(app, registry)
    _add_api_routes(app, manager, tracer, monitor, settings)
    app.include_router(console_router(settings, monitor))  # GET /: the HTML console
    _add_webhook_route(app, settings, auth, manager, registry, logger)
    if settings.docs_enabled:
        add_docs_routes(app)
    _add_security_description(app, settings.webhook_path, auth, Credentials.for_api(settings))
    # Last, so outermost: mounted in another app (app.mount("/vigil", create_app())) this
    # app's lifespan never runs, Starlette does not pass it on; its first request starts it.
    app.add_middleware(StartWhenMounted, state=app.state, start=start, stop=stop,
                       logger=logger)
    return app


class StartWhenMounted:
    """Starts the exporter's store and delivery loop on its first HTTP request when its own
    lifespan has not run (the app is mounted in another, whose lifespan Starlette does not
    pass on), and stops them at interpreter exit. A no-op when the lifespan ran."""

    def __init__(self, app: ASGIApp, *, state: Any, start: Callable[[], None],
                 stop: Callable[[], None], logger: StructuredLogger) -> None:
        self.app = app
        self._state = state  # the exporter app's: .lifespan says whether its lifespan ran
        self._start, self._stop = start, stop
        self._logger = logger
        self._checked = False
        self._lock = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._checked and scope["type"] == "http":
            async with self._lock:
                if not self._checked and not self._state.lifespan:
                    try:
                        await run_in_threadpool(self._start)
                    except Exception as exc:  # the store cannot open: 503s, and retry next time
                        self._logger.error("the exporter's alert store did not start (mounted "
                                           "app, started by its first request); retrying at "
                                           "the next request", exc_info=exc)
                    else:
                        atexit.register(self._stop)
                        self._checked = True
                else:
                    self._checked = True
        await self.app(scope, receive, send)


_DESCRIPTION = """\
vigil's HTTP face: `/metrics` for Prometheus, a read-only JSON API over vigil's in-memory
buffers (breakers, traces, logs, alerts, metric statistics) and the Alertmanager webhook
receiver at `{webhook_path}`.

Every error answer is JSON: `{{"error": "<one line>", "detail": [...]}}`. A `Host` that is not
one of the exporter's names gets 421, a browser request from a foreign `Origin` 403, and when
API credentials are configured every route but `/healthz`, `/readyz` and the webhook needs
them (401). Request bodies are
limited in size (413) and in time (408: the whole body within the request timeout).
"""


def _add_error_handlers(app: FastAPI, logger: StructuredLogger) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if isinstance(exc, _RequestRejected):  # raised by RequestLimitsMiddleware's receive
            logger.warning("request rejected", {"method": request.method,
                                                "path": request.url.path,
                                                "status": exc.status_code, "error": message})
        path = _short(request.url.path)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {path}"
        elif exc.status_code == 405 and message == "Method Not Allowed":
            method = "HEAD" if request.scope.get(HEAD_SCOPE_KEY) else request.method
            message = f"method {method} not allowed on {path}"
        return _error(exc.status_code, message, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        return _error(422, _validation_message(errors), detail=errors)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Reached only when RequestLimitsMiddleware itself fails; it handles the app's errors.
        logger.error("unhandled error outside the app", {"method": request.method,
                                                         "path": request.url.path},
                     exc_info=exc)
        return _error(500, "internal server error")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)


def _validation_message(errors: list[Any]) -> str:
    """One line for FastAPI's validation errors: where, what, and the value received."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    kinds = {"query": "query parameter", "path": "path parameter", "header": "header"}
    where = f"{kinds[loc[0]]} {loc[1]}" if len(loc) >= 2 and loc[0] in kinds else \
        ".".join(loc) or "request"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if first.get("type") != "missing" and first.get("input") is not None:
        message += f" (got {_short(first['input'])})"
    if len(errors) > 1:
        message += f"; and {len(errors) - 1} more"
    return message


def _add_metrics_routes(app: FastAPI, registry: CollectorRegistry) -> None:
    @app.get("/metrics", tags=["prometheus"], summary="Prometheus scrape endpoint",
             response_class=Response, responses={
                 200: {"description": "the exposition: text format 0.0.4, or OpenMetrics "
                                      "1.0.0 (with exemplars) when Accept prefers it (q "
                                      "values honoured, a tie goes to text); gzip when "
                                      "Accept-Encoding allows",
                       "content": {"text/plain": {"schema": {"type": "string"}},
                                   "application/openmetrics-text":
                                       {"schema": {"type": "string"}}}},
                 **_pick(406, 422, 500)})
    async def metrics(request: Request, name: Annotated[list[str] | None, Query(
            alias="name[]", description="only these metric families")] = None) -> Response:
        accept = request.headers.get("accept", "")
        if metrics_media_range(accept) is None:
            return _error(406, f"Accept {_short(accept)} refuses both text/plain and "
                               "application/openmetrics-text")
        body, headers = await run_in_threadpool(
            render_metrics, registry, accept, request.headers.get("accept-encoding", ""), name)
        return Response(body, headers=headers)

    @app.get("/healthz", tags=["health"], summary="Liveness: always 200",
             response_model=StatusResponse)
    async def healthz() -> Response:
        return SafeJSONResponse({"status": "ok"})

    @app.get("/readyz", tags=["health"],
             summary="Readiness: 200 while the webhook's store and delivery loop run",
             response_model=StatusResponse,
             responses={503: {"model": ErrorResponse, "description": "not ready, and why"}})
    async def readyz(request: Request) -> Response:
        delivery: DeliveryLoop | None = request.app.state.delivery
        if delivery is None:
            return _error(503, "the alert store is not open yet (the app's lifespan has not "
                               "started)")
        if not request.app.state.accepting or not delivery.alive:
            return _error(503, "the alert delivery loop is not running (stopping or stopped)")
        return SafeJSONResponse({"status": "ready"})


def _pick(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: _ERRORS[code] for code in codes}


def _answered(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The routes' documented answers: ``_pick(codes)`` and a 200 naming its process headers."""
    return {200: {"headers": _PROCESS_HEADERS}, **_pick(*codes)}


_TRACE_BY_ID = (
    "The id is either an entry's id (16 hex digits, the W3C span id: the answer is a "
    "TraceTree, that entry with its retained descendants) or a W3C trace id (32 hex digits, "
    "any case, as in the log lines' trace_id: the answer is a TraceById, every entry of that "
    "trace the worker retains, as trees under `roots`, one per entry whose parent it does not "
    f"retain, by start). Trees are cut below {MAX_TREE_DEPTH} levels (`truncated: true` on "
    "the cut nodes). A "
    "TraceById keeps within exporter.api_max_bytes by leaving out whole roots from the end "
    "(the latest-starting; as many whole roots as fit are kept, possibly none) and then says "
    "`truncated: true` (and Vigil-Truncated: true); `span_count` counts the nodes it holds. "
    "Any other id is looked up as an entry id.")

_PROCESS_HEADERS = {
    "Vigil-Pid": {"description": "process id of the worker that answered",
                  "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "Vigil-Host": {"description": "its host name (percent-encoded when not printable ASCII)",
                   "schema": {"type": "string"}},
    "Vigil-Multiprocess": {"description": "whether prometheus_client's multiprocess mode is on",
                           "schema": {"type": "string", "enum": ["true", "false"]}},
}


def _add_api_routes(app: FastAPI, manager: AlertManager, tracer: ExecutionTracer,
                    monitor: PerformanceMonitor, settings: ExporterSettings) -> None:
    # Plain ``def``: FastAPI runs them in its thread pool, so the queries' locks and the JSON
    # encoding of up to 1000 entries never hold up the event loop. Every answer names the
    # process that gave it (_API_SCOPE); entries are labelled inside the byte budget.
    @app.get("/api/breakers", tags=["api"], summary="Every live circuit breaker",
             description=_API_SCOPE, response_model=list[BreakerInfo],
             responses=_answered(500))
    def api_breakers() -> Response:
        process = process_info()
        return SafeJSONResponse([_label(entry, process)
                                 for entry in breaker_list(all_breakers())],
                                headers=_process_headers(process))

    @app.get("/api/traces", tags=["api"], summary="Recently completed trace entries",
             description=_API_SCOPE, response_model=list[TraceEntry],
             responses=_answered(422, 500))
    def api_traces(limit: Limit = API_LIMIT_DEFAULT) -> Response:
        process = process_info()
        return BudgetedListResponse(
            (_label({**entry, "metadata": _redacted(entry.get("metadata"))}, process)
             for entry in tracer.get_recent_traces(limit)), settings.api_max_bytes,
            headers=_process_headers(process))

    @app.get("/api/traces/{trace_id}", tags=["api"],
             summary="One trace entry and its tree, or every retained entry of a W3C trace",
             description=_TRACE_BY_ID + " " + _API_SCOPE + " A 404 names the worker that "
                         "looked: another worker may hold the span.",
             response_model=TraceTree | TraceById, responses={
                 200: {"headers": _PROCESS_HEADERS,
                       "description": "TraceTree for an entry id, TraceById for a trace id"},
                 **_pick(404, 422, 500)})
    def api_trace(trace_id: Annotated[str, Path(description=(
            "an entry's id (the W3C span id, 16 hex digits) or a W3C trace id (32 hex "
            "digits, any case), as in the log lines' span_id and trace_id"))]) -> Response:
        process = process_info()
        if _W3C_TRACE_ID.fullmatch(trace_id):
            return _whole_trace(trace_id.lower(), process)
        tree = trace_tree(tracer, trace_id, process)
        if tree is None:
            raise HTTPException(404, f"no trace entry with id {_short(trace_id)} in the "
                                     f"worker that answered (pid {process['pid']} on "
                                     f"{_short(process['host'])}): unknown, evicted from its "
                                     "bounded buffer, or recorded by another worker (under "
                                     "several workers each keeps its own spans)",
                                headers=_process_headers(process))
        return SafeJSONResponse(tree, headers=_process_headers(process))

    def _whole_trace(trace_id: str, process: Mapping[str, Any]) -> Response:
        answer = trace_by_trace_id(tracer, trace_id, process, settings.api_max_bytes)
        if answer is None:
            raise HTTPException(404, f"no entry of trace {_short(trace_id)} in the worker "
                                     f"that answered (pid {process['pid']} on "
                                     f"{_short(process['host'])}): unknown, evicted from its "
                                     "bounded buffer, or recorded by another worker or "
                                     "process (under several workers each keeps its own "
                                     "spans; a trace that crossed processes has entries in "
                                     "each)",
                                headers=_process_headers(process))
        body, truncated = answer
        headers = _process_headers(process)
        if truncated:
            headers["Vigil-Truncated"] = "true"
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/api/logs", tags=["api"], summary="Recent log entries, newest first",
             description=_API_SCOPE, response_model=list[LogEntry],
             responses=_answered(422, 500))
    def api_logs(limit: Limit = API_LIMIT_DEFAULT,
                 level: Annotated[str | None, Query(
                     description="minimum level: " + ", ".join(LOG_LEVELS) + " (any case; "
                                 "warn and fatal as in the stdlib)",
                     json_schema_extra={"pattern": _any_case(
                         (*LOG_LEVELS, *LOG_LEVEL_ALIASES))})] = None,
                 component: Annotated[str | None, Query(
                     description="only this component's entries")] = None) -> Response:
        wanted = None if level is None else _choice("level", log_level_name(level),
                                                    LOG_LEVELS, upper=True)
        process = process_info()
        # The buffers' own dicts: copied before they are labelled.
        return BudgetedListResponse((_label(dict(entry), process) for entry in
                                     vigil_logs.get_recent_logs(limit, level=wanted,
                                                                component=component)),
                                    settings.api_max_bytes, headers=_process_headers(process))

    @app.get("/api/alerts", tags=["api"], summary="Recent alerts, newest first",
             description=_API_SCOPE, response_model=list[AlertInfo],
             responses=_answered(422, 500))
    def api_alerts(limit: Limit = API_LIMIT_DEFAULT,
                   source: Annotated[str | None, Query(
                       description='only alerts from this source ("vigil", "alertmanager")'
                   )] = None,
                   status: Annotated[str | None, Query(
                       description="firing or resolved",
                       json_schema_extra={"pattern": _any_case(_ALERT_STATUSES)})] = None,
                   severity: Annotated[str | None, Query(
                       description="low, medium, high or critical",
                       json_schema_extra={"pattern": _any_case(
                           tuple(s.value for s in AlertSeverity))})] = None,
                   ) -> Response:
        wanted_status = None if status is None else _choice("status", status, _ALERT_STATUSES)
        wanted_severity = None if severity is None else _choice(
            "severity", severity, tuple(s.value for s in AlertSeverity))
        alerts = manager.get_recent_alerts(limit, source=source, status=wanted_status,
                                           severity=wanted_severity)
        process = process_info()
        return BudgetedListResponse((_label({**alert, "metadata": _redacted(alert.metadata),
                                             "labels": _redacted(alert.labels),
                                             "annotations": _redacted(alert.annotations)},
                                            process)
                                    for alert in alerts), settings.api_max_bytes,
                                    headers=_process_headers(process))

    @app.get("/api/deliveries", tags=["api"],
             summary="The webhook's durable store: what waits, and the dead letters",
             description="The store is shared by every worker (SQLite in the state folder, "
                         "or Redis), so any worker gives the same answer; `process` names the "
                         "one that did.",
             response_model=DeliveriesInfo, responses=_answered(422, 500, 503))
    def api_deliveries(request: Request, limit: Limit = API_LIMIT_DEFAULT) -> Response:
        store: AlertStore | None = request.app.state.store
        if store is None:
            return _error(503, "the alert store is not open (the app's lifespan has not "
                               "started or has ended)")
        stats = store.stats()
        dead = [{"alert_id": d.alert_id, "handler": d.handler, "attempts": d.attempts,
                 "error": d.error, "failed_at": d.failed_at, "alert": _redacted(d.payload)}
                for d in store.dead_letters(limit)]
        # Dead letters hold whole alerts: as many as fit in the API's byte budget.
        _, kept, truncated = encode_within(dead, settings.api_max_bytes)
        process = process_info()
        headers = _process_headers(process)
        if truncated:
            headers["Vigil-Truncated"] = "true"
        dead = dead[:kept]
        return SafeJSONResponse(headers=headers, content={
            "pending_alerts": stats.pending_alerts, "pending_bytes": stats.pending_bytes,
            "max_alerts": settings.store_max_alerts, "max_bytes": settings.store_max_bytes,
            "dead_letters": stats.dead_letters, "pending_by_handler": stats.pending_by_handler,
            "running_by_handler": stats.running_by_handler, "recent_dead_letters": dead,
            "process": process})

    @app.get("/api/metrics/{name:path}/stats", tags=["api"],
             summary="Statistics of one metric, by its seed-style name",
             description=_API_SCOPE, response_model=MetricStats,
             responses=_answered(404, 422, 500))
    def api_metric_stats(name: str) -> Response:
        process = process_info()
        stats = metric_stats(monitor, name)
        if stats is None:
            raise HTTPException(404, f"no metric named {_short(name)} has been recorded in "
                                     f"the worker that answered (pid {process['pid']} on "
                                     f"{_short(process['host'])}; under several workers "
                                     "each keeps its own records)",
                                headers=_process_headers(process))
        return SafeJSONResponse({**stats, "process": process},
                                headers=_process_headers(process))


def _choice(param: str, value: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
    """``value`` as one of ``allowed`` (case-insensitive), else a 422 naming them."""
    normal = value.strip().upper() if upper else value.strip().lower()
    if normal not in allowed:
        raise RequestValidationError([{
            "type": "enum", "loc": ("query", param), "input": value,
            "msg": f"Input should be one of {', '.join(allowed)}",
        }])
    return normal


def _add_webhook_route(app: FastAPI, settings: ExporterSettings, auth: Credentials,
                       manager: AlertManager, registry: CollectorRegistry,
                       logger: StructuredLogger) -> None:
    received = counter(
        registry, "vigil_alertmanager_alerts_received_total",
        "Alerts received on the Alertmanager webhook and committed to the store (redeliveries "
        "not included).", ["alertname", "status"])
    duplicates = counter(
        registry, "vigil_webhook_duplicates_total",
        "Alerts in webhook notifications dropped as redeliveries of accepted ones (HA replica "
        "labels ignored).").metric

    def unavailable(message: str) -> Response:
        return _error(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    def incoming(notification: Notification) -> list[Incoming]:
        return [Incoming(id=uuid.uuid4().hex,
                         identity=identity(alert.labels, settings.replica_labels),
                         status=alert.status, starts_at=alert.starts_at, ends_at=alert.ends_at,
                         payload=dict(to_send_alert_kwargs(alert, notification)))
                for alert in notification.alerts]

    def accept(request_app: Any, body: bytes) -> Response:
        """Parse and commit; runs in the thread pool (parsing and fsync both take a while)."""
        try:
            notification = parse_notification(body)
        except PayloadError as err:
            logger.warning("webhook notification rejected",
                           {"status": err.status, "error": err.message})
            return _error(err.status, err.message)
        store: AlertStore | None = request_app.state.store
        if store is None or not request_app.state.accepting:
            return unavailable("the webhook is not accepting alerts (starting or stopping); "
                               "retry later")
        alerts = incoming(notification)
        try:
            result = store.accept(alerts, list(manager.handlers()), time.time())
        except Exception as exc:  # disk full, database locked past its timeout, Redis down
            logger.error("webhook notification not stored: the alert store failed; "
                         "Alertmanager will retry", {"receiver": notification.receiver,
                                                     "group_key": notification.group_key,
                                                     "store": repr(store)}, exc_info=exc)
            return unavailable("the alert store failed; retry later")
        if not result.accepted:
            logger.warning("webhook notification refused: the alert store is full; "
                           "Alertmanager will retry",
                           {"receiver": notification.receiver,
                            "group_key": notification.group_key, "alerts": len(alerts)})
            return unavailable("the alert store is full; retry later")
        new = set(result.new_ids)
        for alert in alerts:
            if alert.id in new:
                kwargs = alert.payload
                manager.record(manager.build_alert(**kwargs, id=alert.id))
                received.labels(kwargs["labels"].get("alertname", ""), alert.status).inc()
        if result.duplicates:
            duplicates.inc(result.duplicates)
        delivery: DeliveryLoop | None = request_app.state.delivery
        if delivery is not None and result.stored:
            delivery.notify()
        logger.info("webhook notification accepted",
                    {"receiver": notification.receiver, "group_key": notification.group_key,
                     "alerts": result.stored, "duplicates": result.duplicates})
        return SafeJSONResponse({"status": "accepted", "alerts": result.stored,
                                 "duplicates": result.duplicates})

    async def receive_webhook(request: Request) -> Response:
        # Credentials before the body: an unauthenticated client cannot make us read 1 MiB.
        if not auth.check(request.headers.get("authorization")):
            logger.warning("webhook request without valid credentials",
                           {"credentials": "missing" if "authorization" not in request.headers
                            else "invalid"})
            return _error(401, "valid webhook credentials are required",
                          headers={"WWW-Authenticate": auth.challenge()})
        # Only JSON: a browser's cross-site form or text/plain POST (a "simple" request, sent
        # without a CORS preflight) is refused before its body is read.
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            got = f"Content-Type {_short(media_type)}" if media_type else "no Content-Type"
            return _error(415, f"the webhook takes application/json bodies, not {got}")
        body = await request.body()
        return await run_in_threadpool(accept, request.app, body)

    app.add_api_route(
        settings.webhook_path, receive_webhook, methods=["POST"], tags=["alertmanager"],
        summary="Alertmanager webhook receiver (payload version 4)",
        description="Each alert, firing or resolved, becomes a vigil alert with "
                    'source="alertmanager". The answer is 200 only once the new alerts are '
                    "committed to the durable store; the handlers registered on the "
                    "AlertManager get them from there, at least once. Redeliveries of "
                    "accepted alerts are dropped (HA replica labels ignored). 503 asks "
                    "Alertmanager to retry (store full or failing, app stopping).",
        response_model=WebhookAccepted,
        responses={**_pick(400, 408, 413, 415, 422, 500),
                   401: {"model": ErrorResponse, "description": "credentials missing or wrong"},
                   503: {"model": ErrorResponse,
                         "description": "store full or failing, or stopping: retry later"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": NOTIFICATION_SCHEMA}}}})


def _add_security_description(app: FastAPI, path: str, auth: Credentials,
                              api: Credentials) -> None:
    """Describe the HTTP policy and the credentials in the OpenAPI document.

    Every operation may answer 400 (malformed Host) and 421 (a Host that is not the
    exporter's), all but /healthz and /readyz 403 (a foreign Origin); the webhook's
    credentials, and with API credentials configured every other operation but health needs
    them (401). See :mod:`vigil_exporter.policy`.
    """
    schemes: dict[str, Any] = {}
    webhook: list[str] = []
    reading: list[str] = []
    for names, credentials, bearer, basic in ((webhook, auth, "bearerAuth", "basicAuth"),
                                              (reading, api, "apiBearerAuth", "apiBasicAuth")):
        if credentials.bearer_token:
            names.append(bearer)
            schemes[bearer] = {"type": "http", "scheme": "bearer"}
        if credentials.username:
            names.append(basic)
            schemes[basic] = {"type": "http", "scheme": "basic"}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            if schemes:
                schema.setdefault("components", {})["securitySchemes"] = schemes
            for route, operations in schema["paths"].items():
                for operation in operations.values():
                    codes = [400, 421] if route in OPEN_PATHS else [400, 403, 421]
                    if route == path and webhook:
                        operation["security"] = [{name: []} for name in webhook]
                    elif route != path and route not in OPEN_PATHS and reading:
                        operation["security"] = [{name: []} for name in reading]
                        codes.append(401)
                    responses = operation.setdefault("responses", {})
                    for code in codes:
                        responses.setdefault(str(code), {
                            "description": _ERRORS[code]["description"], "content": error})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

