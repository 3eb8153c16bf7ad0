"""Request metrics and a server span for any ASGI 3 app (Starlette, FastAPI, ...).

::

    from vigil.asgi import VigilMiddleware

    app.add_middleware(VigilMiddleware)  # Starlette / FastAPI
    app = VigilMiddleware(app)           # any ASGI app

**What is recorded.** Each HTTP request is counted once, when the app has returned (so a
streaming response is counted after its last chunk, with the status it started with), in
``vigil_http_requests_total{method,route,status}`` and
``vigil_http_request_duration_seconds{method,route}`` (see :mod:`vigil._http` for the label
rules). An app that raises before starting a response, or returns without one, counts as
``status="500"`` (what the server then sends) and its exception propagates. ``lifespan`` and
``websocket`` connections pass through untouched.

**How the route is found** (:func:`route_from_scope`), after the app ran: a string the app put in
``scope["vigil.route"]``; else the template of the route Starlette's router left in
``scope["route"]`` (FastAPI 0.137 and later keep the ``include_router`` prefixes out of it and in
``scope["fastapi"]["effective_route_context"]``, which is read instead), prefixed with the
templates of the mounts the request went through (``Mount("/orgs/{org}")`` leaves the raw
``/orgs/acme`` in ``root_path``: it is matched again against the router's mounts to get the
template back). A request that reached a mount but no route inside it (a mounted non-Starlette
app, or a 404 there) is labelled ``<mount>/{path}``, e.g. ``/static/{path}``. Routes are relative
to the app: a server's ``root_path`` is not part of them. Anything else (a 404 from the router,
a redirect to the slash-terminated path, an app without a router) is ``route="<unmatched>"``,
one series however many paths. ``route_of=`` replaces the finder for other frameworks; a finder
that raises counts the request as unmatched.

**Tracing.** Each request runs in a span ``trace_context("http", "HTTP <method>",
kind="server")``, renamed ``"<method> <route>"`` (``GET /items/{item_id}``) once the app has
routed it, the current span while the app runs, so every log line the handlers write carries its
trace id, and spans they start are its children. It continues an incoming
``traceparent``/``tracestate`` (unless a span of that trace is already current, as under
OpenTelemetry's own middleware, which is then the parent), and is a child of any current
OpenTelemetry span. Its metadata holds the method and path (never the query string); its name
holds the route template only, so the duration series it feeds stays bounded like the metrics.
The span ends ``"error"`` when the app raises; a 5xx response the app sends itself is the
metrics' to tell. ``response_trace_header="traceresponse"`` (or any name) adds the server span's
``traceparent`` value to each response; off by default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import nullcontext
from typing import Any

from prometheus_client import CollectorRegistry

from vigil._http import ROUTE_KEY, UNMATCHED_ROUTE, HttpMetrics, method_label, server_parent
from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.monitoring.context import SpanContext, current_span, use_span
from vigil.monitoring.propagation import format_traceparent
from vigil.monitoring.tracing import ExecutionTracer, trace_context

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "VigilMiddleware",
    "route_from_scope",
]

# The shapes Starlette's own type aliases have, so `app.add_middleware(VigilMiddleware)`
# type-checks without importing Starlette.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TRACE_HEADERS = (b"traceparent", b"tracestate")
_MAX_MOUNT_DEPTH = 32  # a bound on re-matching mounts, should a route tree ever contain itself


class VigilMiddleware:
    """Pure ASGI 3 middleware: request metrics and a server span for each HTTP request.

    ``registry`` defaults to the one vigil's exporter serves, ``tracer`` to
    :data:`vigil.monitoring.tracing.execution_tracer`, ``clock`` (for durations) to the system
    clock; ``route_of`` reads the route template from the scope after the app ran (default
    :func:`route_from_scope`); ``response_trace_header`` names a response header to carry the
    server span's ``traceparent`` value (default: none).
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry | None = None,
                 tracer: ExecutionTracer | None = None,
                 route_of: Callable[[Scope], str | None] | None = None,
                 response_trace_header: str | None = None,
                 clock: Clock | None = None) -> None:
        self.app = app
        self._metrics = HttpMetrics(registry)
        self._tracer = tracer
        self._route_of = route_of if route_of is not None else route_from_scope
        self._header = (None if response_trace_header is None
                        else response_trace_header.lower().encode("latin-1"))
        self._monotonic = (clock if clock is not None else SYSTEM_CLOCK).monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = method_label(scope.get("method"))
        status = "500"  # until the app starts a response: what the server sends if it never does
        server: SpanContext | None = None
        header = self._header

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(int(message["status"]))  # int(): an int subclass may print otherwise
                if header is not None and server is not None:
                    value = format_traceparent(server)
                    if value is not None:
                        message = {**message, "headers": [*message.get("headers", ()),
                                                          (header, value.encode("latin-1"))]}
            await send(message)

        parent = server_parent(_trace_headers(scope))
        metadata = {"http.request.method": scope.get("method"), "url.path": scope.get("path")}
        span = trace_context("http", f"HTTP {method}", metadata, tracer=self._tracer,
                             kind="server")
        route: str | None = None
        start = self._monotonic()
        try:
            # use_span(None) would hide a current OpenTelemetry span: only a real parent is set.
            with use_span(parent) if parent is not None else nullcontext():
                async with span:
                    server = current_span()
                    try:
                        await self.app(scope, receive, send_and_note)
                    finally:
                        # Known only now: the span takes the route's name, as the metrics do.
                        route = self._route(scope)
                        span.update(operation=f"{method} {route or UNMATCHED_ROUTE}")
        finally:
            seconds = self._monotonic() - start
            self._metrics.record(method, route, status, seconds)

    def _route(self, scope: Scope) -> str | None:
        try:
            return self._route_of(scope)
        except Exception:  # a broken finder must not turn a served request into an error
            return None


def _trace_headers(scope: Scope) -> dict[str, str]:
    """``traceparent`` and ``tracestate`` of the request; repeated lines joined with ","
    (RFC 9110's rule, and what W3C asks for ``tracestate``; two ``traceparent``\\ s so joined
    are invalid, as they should be)."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name in _TRACE_HEADERS:  # ASGI header names are lowercase bytes
            key, text = name.decode("latin-1"), value.decode("latin-1")
            found[key] = f"{found[key]},{text}" if key in found else text
    return found


def route_from_scope(scope: Scope) -> str | None:
    """The route template of a request Starlette or FastAPI handled, or ``None`` (unmatched).

    Call it after the app ran; see the module's docstring for the rules.
    """
    given = scope.get(ROUTE_KEY)
    if isinstance(given, str):
        return given
    # Mount.matches() sets app_root_path to the root_path it found (the server's) and extends
    # root_path by what it matched: their difference is what the mounts consumed.
    root_path, app_root = scope.get("root_path", ""), scope.get("app_root_path")
    consumed = (root_path[len(app_root):] if isinstance(app_root, str)
                and isinstance(root_path, str) and root_path.startswith(app_root) else "")
    walked = _mount_template(scope.get("router"), consumed)
    if walked is None:
        return None
    prefix, node = walked
    endpoint = _endpoint_template(scope)
    if endpoint is None:
        endpoint = _template_by_endpoint(node, scope, root_path)
    if endpoint is not None:
        return prefix + endpoint
    return prefix + "/{path}" if consumed else None


def _endpoint_template(scope: Scope) -> str | None:
    """The matched endpoint's template below the mounts; ``None`` for no endpoint or a mount."""
    route = scope.get("route")
    fastapi = scope.get("fastapi")
    effective = (fastapi.get("effective_route_context") if isinstance(fastapi, Mapping)
                 else None)
    if effective is not None:
        if getattr(effective, "original_route", None) is route:
            route = effective  # an APIRoute: the context's path_format has the include prefixes
        elif route is None:
            # FastAPI sets no scope["route"] for a Starlette Route or Mount it includes.
            route = getattr(effective, "starlette_route", None)
        # Otherwise the context is an outer one's (an included mount) and route is deeper.
    if route is None or _is_mount(route):
        return None
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) else None


def _template_by_endpoint(node: object, scope: Scope, root_path: str) -> str | None:
    """The template of the route under ``node`` that serves ``scope["endpoint"]`` at this path.

    FastAPI >= 0.137 sets no ``scope["route"]`` for a Starlette route added to the app itself
    (``app.add_route("/metrics", handler)``); its endpoint and path identify it.
    """
    target = scope.get("endpoint")
    path = scope.get("path")
    if target is None or not isinstance(path, str):
        return None
    below = path[len(root_path):] if path.startswith(root_path) else path
    for route in _routes(node):
        if _is_mount(route) or getattr(route, "endpoint", None) is not target:
            continue
        regex, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if regex is not None and isinstance(template, str) and regex.match(below):
            return template
    return None


def _is_mount(route: object) -> bool:
    """A Starlette ``Mount`` (or FastAPI's copy of one): a path prefix with routes below it."""
    return hasattr(route, "path_regex") and hasattr(route, "routes")


def _routes(node: object) -> Iterator[Any]:
    """The routes directly under a router, app or mount, FastAPI's included routers expanded.

    Duck-typed (``Any``): vigil imports neither Starlette nor FastAPI."""
    for route in getattr(node, "routes", None) or ():
        expand = getattr(route, "effective_route_contexts", None)
        if callable(expand):  # FastAPI >= 0.137 keeps each include_router() as one node
            for effective in expand():
                yield getattr(effective, "starlette_route", None) or effective
        else:
            yield route


def _mount_template(router: object, consumed: str) -> tuple[str, object] | None:
    """The template of the path ``consumed`` by mounts, matched again from ``router`` down,
    and the innermost mount (``router`` itself when nothing was consumed).

    As Starlette's router does, the first mount that matches wins at each level. ``None`` when
    no mount matches (one under a ``Host`` route, say): the request is then unmatched rather
    than labelled with raw path segments.
    """
    template, rest, node = "", consumed, router
    for _ in range(_MAX_MOUNT_DEPTH):
        if not rest:
            return template, node
        for mount in _routes(node):
            match = mount.path_regex.match(rest + "/") if _is_mount(mount) else None
            if match is not None:
                break
        else:
            return None
        # A mount's regex ends in "/(?P<path>.*)": what it leaves is "/" + that group.
        used = len(rest) + 1 - len("/" + match.group("path"))
        template += mount.path
        rest, node = rest[used:], mount
    return None
