"""What vigil's ASGI and WSGI middlewares share: the request metrics, their labels, the parent span.

Every request is one observation of two families, created on first use on the injected registry
through :mod:`vigil.monitoring.instruments` (so the series cap and multiprocess mode apply):

- ``vigil_http_requests_total{method,route,status}``, a counter;
- ``vigil_http_request_duration_seconds{method,route}``, a histogram in seconds
  (:data:`~vigil.monitoring.instruments.SECOND_BUCKETS`).

The labels come from small sets, never from the raw request: ``method`` is one of the nine
standard methods (RFC 9110 and PATCH, case-sensitive as HTTP is) or ``"other"``; ``route`` is
the route template the framework matched or, when it matched none (a 404, an app that names no
routes), :data:`UNMATCHED_ROUTE`; ``status`` is the response's status code as text. Past the
series cap the overflow series keeps ``method`` readable (its values are bounded anyway).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments
from vigil.monitoring.context import SpanContext, current_span
from vigil.monitoring.propagation import extract_traceparent

__all__ = [
    "DURATION",
    "DURATION_HELP",
    "HttpMetrics",
    "OTHER_METHOD",
    "REQUESTS",
    "REQUESTS_HELP",
    "ROUTE_KEY",
    "STANDARD_METHODS",
    "UNMATCHED_ROUTE",
    "method_label",
    "server_parent",
]

REQUESTS = "vigil_http_requests_total"
REQUESTS_HELP = "HTTP requests handled, by method, route template and response status code."
DURATION = "vigil_http_request_duration_seconds"
DURATION_HELP = ("Time from an HTTP request's arrival until its response was sent, by method and "
                 "route template.")

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` of every request that matched no route: one series, however many paths."""
OTHER_METHOD = "other"
STANDARD_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
ROUTE_KEY = "vigil.route"
"""A route template an app (or a framework hook) puts in the ASGI scope or WSGI environ; it
takes precedence over what the middleware finds itself."""


def method_label(method: object) -> str:
    """``method`` when it is a standard HTTP method, else ``"other"``."""
    return method if isinstance(method, str) and method in STANDARD_METHODS else OTHER_METHOD


def server_parent(headers: Mapping[str, str]) -> SpanContext | None:
    """The remote span a request's server span continues, or ``None`` to keep the context's.

    ``headers`` holds the request's ``traceparent`` and ``tracestate``. The incoming trace is
    continued unless a span of that same trace is already current: then an outer middleware
    (OpenTelemetry's, say) has continued it already, and its span is the closer parent.
    """
    remote = extract_traceparent(headers)
    if remote is None:
        return None
    current = current_span()
    if current is not None and current.trace_id == remote.trace_id:
        return None
    return remote


class HttpMetrics:
    """The two request families on one registry (by default the one vigil's exporter serves)."""

    __slots__ = ("_duration", "_requests", "registry")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Read when a middleware is built, not at import: importing vigil registers nothing.
        self.registry = registry if registry is not None else instruments.default_registry()
        self._requests = instruments.counter(
            self.registry, REQUESTS, REQUESTS_HELP, ("method", "route", "status"),
            keep=("method",))
        self._duration = instruments.histogram(
            self.registry, DURATION, DURATION_HELP, ("method", "route"),
            buckets=instruments.SECOND_BUCKETS, keep=("method",))

    def record(self, method: str, route: str | None, status: str, seconds: float) -> None:
        """Count one request; an empty or missing ``route`` is :data:`UNMATCHED_ROUTE`."""
        route = route or UNMATCHED_ROUTE
        self._requests.labels(method, route, status).inc()
        self._duration.labels(method, route).observe(seconds)
