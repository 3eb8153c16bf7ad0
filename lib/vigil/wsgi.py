"""Request metrics and a server span for any WSGI app (Flask, Django, ...).

::

    from vigil.wsgi import VigilWSGIMiddleware

    app.wsgi_app = VigilWSGIMiddleware(app.wsgi_app)          # Flask
    application = VigilWSGIMiddleware(get_wsgi_application())  # Django's wsgi.py

**What is recorded.** The same two families as :mod:`vigil.asgi`:
``vigil_http_requests_total{method,route,status}`` and
``vigil_http_request_duration_seconds{method,route}`` (see :mod:`vigil._http` for the label
rules). A request is recorded once, when the server calls the response's ``close()`` (PEP 3333
says it must, after the body is sent or the client went away), so the duration covers the whole
body, streamed or not. ``status`` is the code given to ``start_response``; an app that raises
before any body byte left (so the server sends its own 500) counts as ``"500"``, and the exception
propagates. Wrapping the response hides ``wsgi.file_wrapper`` responses from a server's
sendfile shortcut: they are still sent, by iteration.

**How the route is found** (:func:`route_from_environ`), when the app calls ``start_response``
(routing is over by then, and Flask clears its request from the environ before the body is
sent), or at the end for an app that never calls it: a string in
``environ["vigil.route"]``; else Flask's matched rule (``request.url_rule.rule``, read from the
request Werkzeug keeps in ``environ["werkzeug.request"]``, so Flask is never imported), e.g.
``/items/<int:item_id>``. Anything else is ``route="<unmatched>"``, one series however many paths:
a plain WSGI app has no routes to tell. Give ``route_of=`` a function of the environ for other
frameworks, or set ``environ["vigil.route"]`` from the framework. Django, in a middleware listed
in ``MIDDLEWARE``::

    class VigilRoute:
        def __init__(self, get_response):
            self.get_response = get_response

        def __call__(self, request):
            return self.get_response(request)

        def process_view(self, request, view, args, kwargs):
            # resolver_match.route is the URL pattern, e.g. "items/<int:pk>/"
            request.environ["vigil.route"] = request.resolver_match.route

A finder that raises counts the request as unmatched.

**Tracing.** As in :mod:`vigil.asgi`: a span ``trace_context("http", "HTTP <method>",
kind="server")``, renamed ``"<method> <route>"`` when the request is recorded, that continues an
incoming ``traceparent``/``tracestate`` (``HTTP_TRACEPARENT``, ``HTTP_TRACESTATE``) and is the
current span while the app runs, including while the body is iterated and closed, so log lines
written there carry its trace id. The request runs in its own copy of the context: the span is
never left current in the server's thread, even by a server that forgets ``close()``. It ends
``"error"`` when the app raises. ``response_trace_header=`` adds the span's ``traceparent``
value to the response under that name; off by default. """

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from contextvars import Token
from types import TracebackType
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry

from vigil._http import ROUTE_KEY, UNMATCHED_ROUTE, HttpMetrics, method_label, server_parent
from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.monitoring.context import SpanContext, attach, current_span, detach
from vigil.monitoring.propagation import format_traceparent
from vigil.monitoring.tracing import ExecutionTracer, TraceScope, trace_context

__all__ = ["VigilWSGIMiddleware", "route_from_environ"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class VigilWSGIMiddleware:
    """WSGI middleware: request metrics and a server span for each request.

    ``registry`` defaults to the one vigil's exporter serves, ``tracer`` to
    :data:`vigil.monitoring.tracing.execution_tracer`, ``clock`` (for durations) to the system
    clock; ``route_of`` reads the route template from the environ when the app calls
    ``start_response`` (default :func:`route_from_environ`); ``response_trace_header`` names
    a response header to carry the server span's ``traceparent`` value (default: none).
    """

    def __init__(self, app: WSGIApplication, *, registry: CollectorRegistry | None = None,
                 tracer: ExecutionTracer | None = None,
                 route_of: Callable[[WSGIEnvironment], str | None] | None = None,
                 response_trace_header: str | None = None,
                 clock: Clock | None = None) -> None:
        self.app = app
        self._metrics = HttpMetrics(registry)
        self._tracer = tracer
        self._route_of = route_of if route_of is not None else route_from_environ
        self._header = response_trace_header
        self._monotonic = (clock if clock is not None else SYSTEM_CLOCK).monotonic

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(self, environ)
        # Its own context: the span is current in it alone, entered and left around each step.
        context = contextvars.copy_context()
        context.run(request.begin)
        try:
            body = context.run(self.app, environ, request.wrap(start_response))
            chunks = context.run(iter, body)
        except BaseException as exc:
            context.run(request.end, exc)
            raise
        return _Body(body, chunks, context, request)

    def _route(self, environ: WSGIEnvironment) -> str | None:
        try:
            return self._route_of(environ)
        except Exception:  # a broken finder must not turn a served request into an error
            return None


class _Request:
    """One request's state, from the app call to the response's ``close()``."""

    __slots__ = ("done", "environ", "method", "middleware", "parent", "route", "scope", "sent",
                 "server", "start", "status")

    def __init__(self, middleware: VigilWSGIMiddleware, environ: WSGIEnvironment) -> None:
        self.middleware = middleware
        self.environ = environ
        self.method = method_label(environ.get("REQUEST_METHOD"))
        self.status = "500"  # until start_response: what the server sends if it never comes
        self.route: str | None = None
        self.sent = False  # a body byte went out: the status can no longer become a 500
        self.done = False
        self.parent: Token[SpanContext | None] | None = None
        self.scope: TraceScope | None = None
        self.server: SpanContext | None = None
        self.start = 0.0

    def begin(self) -> None:
        """Enter the server span (in the request's context)."""
        # attach() and TraceScope rather than use_span()'s generator: should a server never
        # call close(), the garbage collector would close that generator in another context.
        environ = self.environ
        parent = server_parent({"traceparent": environ.get("HTTP_TRACEPARENT", ""),
                                "tracestate": environ.get("HTTP_TRACESTATE", "")})
        if parent is not None:  # attach(None) would hide a current OpenTelemetry span
            self.parent = attach(parent)
        metadata = {"http.request.method": environ.get("REQUEST_METHOD"),
                    "url.path": environ.get("PATH_INFO")}
        self.scope = trace_context("http", f"HTTP {self.method}", metadata,
                                   tracer=self.middleware._tracer, kind="server")
        self.scope.__enter__()
        self.server = current_span()
        self.start = self.middleware._monotonic()

    def wrap(self, start_response: StartResponse) -> StartResponse:
        """``start_response`` noting the status and route (and adding the trace header)."""
        header = self.middleware._header

        def start(status: str, headers: list[tuple[str, str]],
                  exc_info: _ExcInfo | None = None) -> Callable[[bytes], object]:
            self.status = status.partition(" ")[0]
            # Routing is over once a response starts, and a framework's request state may be
            # gone by the end (Flask clears environ["werkzeug.request"] before the body is sent).
            self.route = self.middleware._route(self.environ)
            value = format_traceparent(self.server) if header is not None else None
            if header is not None and value is not None:
                headers = [*headers, (header, value)]
            write = start_response(status, headers, exc_info)

            def write_and_note(data: bytes) -> object:  # the legacy write() path sends too
                self.sent = self.sent or bool(data)
                return write(data)

            return write_and_note

        return start

    def end(self, error: BaseException | None) -> None:
        """Leave the span and record the request, once (in the request's context)."""
        if self.done:
            return
        self.done = True
        seconds = self.middleware._monotonic() - self.start
        status = self.status if error is None or self.sent else "500"
        route = self.route if self.route is not None else self.middleware._route(self.environ)
        if self.scope is not None:
            # Known only now: the span takes the route's name, as the metrics do.
            self.scope.update(operation=f"{self.method} {route or UNMATCHED_ROUTE}")
            if error is None:
                self.scope.__exit__(None, None, None)
            else:
                self.scope.__exit__(type(error), error, error.__traceback__)
        if self.parent is not None:
            detach(self.parent)
        self.middleware._metrics.record(self.method, route, status, seconds)


class _Body:
    """The app's response iterable, stepped through in the request's context."""

    __slots__ = ("_body", "_chunks", "_context", "_request")

    def __init__(self, body: Iterable[bytes], chunks: Iterator[bytes],
                 context: contextvars.Context, request: _Request) -> None:
        self._body = body
        self._chunks = chunks
        self._context = context
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = self._context.run(next, self._chunks)
        except StopIteration:
            raise
        except BaseException as exc:
            self._context.run(self._request.end, exc)
            raise
        if chunk:
            self._request.sent = True
        return chunk

    def close(self) -> None:
        error: BaseException | None = None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._context.run(close)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._context.run(self._request.end, error)


def route_from_environ(environ: WSGIEnvironment) -> str | None:
    """The route template of a request, or ``None`` (unmatched); see the module's docstring."""
    given = environ.get(ROUTE_KEY)
    if isinstance(given, str):
        return given
    rule = getattr(getattr(environ.get("werkzeug.request"), "url_rule", None), "rule", None)
    return rule if isinstance(rule, str) else None
