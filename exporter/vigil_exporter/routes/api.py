"""The read-only JSON API under ``/api/``: breakers, traces, logs, alerts, deliveries and metric
statistics, from :mod:`vigil_exporter.queries`.

The routes are plain ``def``: FastAPI runs them in its thread pool, so the buffers' locks and
the JSON encoding of up to :data:`API_LIMIT_MAX` entries never hold up the event loop. Every
answer names the process that gave it (``Vigil-Pid``, ``Vigil-Host``, ``Vigil-Multiprocess``;
``process`` in object answers), since each worker answers from its own buffers; lists keep
within ``exporter.api_max_bytes`` (:class:`~vigil_exporter.responses.BudgetedListResponse`).
Choices given as query parameters (``level``, ``status``, ``severity``) are matched in any
letter case, and the published schema says so (:func:`_any_case`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from vigil.config import LOG_LEVEL_ALIASES, LOG_LEVELS, ExporterSettings, log_level_name
from vigil.error_handling.breaker import all_breakers
from vigil.monitoring import logs as vigil_logs
from vigil.monitoring.alerts import AlertManager, AlertSeverity
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil_exporter.models import (
    AlertInfo,
    BreakerInfo,
    DeliveriesInfo,
    LogEntry,
    MetricStats,
    TraceById,
    TraceEntry,
    TraceTree,
)
from vigil_exporter.queries import (
    MAX_TREE_DEPTH,
    breaker_list,
    label,
    metric_stats,
    process_headers,
    process_info,
    redacted,
    trace_by_trace_id,
    trace_tree,
)
from vigil_exporter.responses import BudgetedListResponse, SafeJSONResponse, encode_within
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short
from vigil_exporter.routes.openapi import pick
from vigil_exporter.store import AlertStore

__all__ = ["API_LIMIT_DEFAULT", "API_LIMIT_MAX", "add_api_routes"]

API_LIMIT_DEFAULT = 100
API_LIMIT_MAX = 1000
_W3C_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")  # /api/traces/{id}: a whole trace (fullmatch)
_ALERT_STATUSES = ("firing", "resolved")

_API_SCOPE = (
    "Scope: each worker process answers from its own in-memory buffers. Under several "
    "workers (gunicorn -w N, uvicorn --workers N) an answer holds only what the worker that "
    "took the request recorded (or inherited when it was forked), and the next request may "
    "reach another worker: entries carry the pid and host of the process that holds them, "
    "and the answer names the one that answered (headers Vigil-Pid, Vigil-Host, "
    "Vigil-Multiprocess; `process` in object answers). /metrics, under prometheus_client's "
    "multiprocess mode, adds up every worker; this API does not.")

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


def _answered(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The routes' documented answers: ``pick(codes)`` and a 200 naming its process headers."""
    return {200: {"headers": _PROCESS_HEADERS}, **pick(*codes)}


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


def add_api_routes(app: FastAPI, manager: AlertManager, tracer: ExecutionTracer,
                   monitor: PerformanceMonitor, settings: ExporterSettings) -> None:
    """The ``/api/`` routes over ``manager``'s alerts, ``tracer``'s spans, ``monitor``'s
    records, vigil's log buffer and live breakers, within ``settings.api_max_bytes``."""
    # Plain ``def``: FastAPI runs them in its thread pool, so the queries' locks and the JSON
    # encoding of up to 1000 entries never hold up the event loop. Every answer names the
    # process that gave it (_API_SCOPE); entries are labelled inside the byte budget.
    @app.get("/api/breakers", tags=["api"], summary="Every live circuit breaker",
             description=_API_SCOPE, response_model=list[BreakerInfo],
             responses=_answered(500))
    def api_breakers() -> Response:
        process = process_info()
        return SafeJSONResponse([label(entry, process)
                                 for entry in breaker_list(all_breakers())],
                                headers=process_headers(process))

    @app.get("/api/traces", tags=["api"], summary="Recently completed trace entries",
             description=_API_SCOPE, response_model=list[TraceEntry],
             responses=_answered(422, 500))
    def api_traces(limit: Limit = API_LIMIT_DEFAULT) -> Response:
        process = process_info()
        return BudgetedListResponse(
            (label({**entry, "metadata": redacted(entry.get("metadata"))}, process)
             for entry in tracer.get_recent_traces(limit)), settings.api_max_bytes,
            headers=process_headers(process))

    @app.get("/api/traces/{trace_id}", tags=["api"],
             summary="One trace entry and its tree, or every retained entry of a W3C trace",
             description=_TRACE_BY_ID + " " + _API_SCOPE + " A 404 names the worker that "
                         "looked: another worker may hold the span.",
             response_model=TraceTree | TraceById, responses={
                 200: {"headers": _PROCESS_HEADERS,
                       "description": "TraceTree for an entry id, TraceById for a trace id"},
                 **pick(404, 422, 500)})
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
                                headers=process_headers(process))
        return SafeJSONResponse(tree, headers=process_headers(process))

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
                                headers=process_headers(process))
        body, truncated = answer
        headers = process_headers(process)
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
        return BudgetedListResponse((label(dict(entry), process) for entry in
                                     vigil_logs.get_recent_logs(limit, level=wanted,
                                                                component=component)),
                                    settings.api_max_bytes, headers=process_headers(process))

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
        return BudgetedListResponse((label({**alert, "metadata": redacted(alert.metadata),
                                             "labels": redacted(alert.labels),
                                             "annotations": redacted(alert.annotations)},
                                            process)
                                    for alert in alerts), settings.api_max_bytes,
                                    headers=process_headers(process))

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
                 "error": d.error, "failed_at": d.failed_at, "alert": redacted(d.payload)}
                for d in store.dead_letters(limit)]
        # Dead letters hold whole alerts: as many as fit in the API's byte budget.
        _, kept, truncated = encode_within(dead, settings.api_max_bytes)
        process = process_info()
        headers = process_headers(process)
        if truncated:
            headers["Vigil-Truncated"] = "true"
        dead = dead[:kept]
        return SafeJSONResponse(headers=headers, content={
            "pending_alerts": stats.pending_alerts, "pending_bytes": stats.pending_bytes,
            "max_alerts": settings.store_max_alerts, "max_bytes": settings.store_max_bytes,
            "dead_letters": stats.dead_letters, "pending_by_handler": stats.pending_by_handler,
            "running_by_handler": stats.running_by_handler, "recent_dead_letters": dead,
            "open_alert_ids": store.open_alert_ids(limit), "process": process})

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
                                headers=process_headers(process))
        return SafeJSONResponse({**stats, "process": process},
                                headers=process_headers(process))


def _choice(param: str, value: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
    """``value`` as one of ``allowed`` (case-insensitive), else a 422 naming them."""
    normal = value.strip().upper() if upper else value.strip().lower()
    if normal not in allowed:
        raise RequestValidationError([{
            "type": "enum", "loc": ("query", param), "input": value,
            "msg": f"Input should be one of {', '.join(allowed)}",
        }])
    return normal
