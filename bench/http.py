"""Request middleware: ``VigilMiddleware`` beside starlette-exporter's, prometheus-fastapi-
instrumentator's and OpenTelemetry's ASGI middlewares, each added to the same Starlette app.

No sockets and no HTTP client: each request is the ASGI app called directly (a fresh copy of
one prepared ``GET /items/42`` scope, a ``receive`` that returns an empty body, a ``send`` that
keeps nothing), awaited in one event loop by :func:`~bench.harness.async_runner`. So a figure is
Starlette's routing and response plus the middleware, nothing of a server's or client's. Every
subject is its own ``Starlette`` app with one route, ``/items/{item_id}``, returning a small
``PlainTextResponse``, the middleware added with ``add_middleware`` (inside Starlette's error
middleware, as users add it); the bare app is the baseline, and each middleware's cost is its
app's figure minus the bare app's, measured in the same interleaved repeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bench.cases import MICRO, Result
from bench.harness import Budget, async_runner, measure

if TYPE_CHECKING:
    from starlette.applications import Starlette

# One request as a server hands it over: http 1.1, a route parameter, a few headers.
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench.local"), (b"user-agent", b"bench/1"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> dict[str, Any]:
    return _REQUEST


async def _send(message: Any) -> None:
    pass


def _app() -> Starlette:
    """A fresh Starlette app with the one route (its middleware stack is built on first call)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['item_id']}")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def _request(app: Starlette) -> Callable[[], Awaitable[None]]:
    """One request to ``app``: what the runner awaits ``n`` times."""

    def call() -> Awaitable[None]:
        return app(dict(SCOPE), _receive, _send)  # a fresh scope: apps write to it

    return call


def http_rows(budget: Budget) -> list[Result]:
    """``VigilMiddleware``'s cost per request against its peers', and the request's total."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator
    from starlette_exporter import PrometheusMiddleware

    from vigil.asgi import VigilMiddleware
    from vigil.monitoring import context
    from vigil.monitoring.tracing import ExecutionTracer

    bare = _app()
    vigil = _app()
    registry = CollectorRegistry()
    vigil.add_middleware(VigilMiddleware, registry=registry,
                         tracer=ExecutionTracer(registry=registry))
    exporter = _app()  # starlette-exporter registers on prometheus_client's global registry
    exporter.add_middleware(PrometheusMiddleware, group_paths=True)
    instrumentator = _app()
    Instrumentator(registry=CollectorRegistry()).instrument(instrumentator)
    otel = _app()  # as documented: a server span, and an internal span per message sent
    otel.add_middleware(OpenTelemetryMiddleware,
                        tracer_provider=TracerProvider(shutdown_on_exit=False),
                        meter_provider=MeterProvider(shutdown_on_exit=False))
    otel_server = _app()  # one span per request, as vigil makes
    otel_server.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"],
                               tracer_provider=TracerProvider(shutdown_on_exit=False),
                               meter_provider=MeterProvider(shutdown_on_exit=False))

    loop = asyncio.new_event_loop()
    try:
        # vigil alone, as in a process without OpenTelemetry (imported here only as a peer).
        context.share_opentelemetry_context(False)
        us = {name: seconds * MICRO for name, seconds in measure({
            "bare": async_runner(_request(bare), loop),
            "vigil": async_runner(_request(vigil), loop),
            "exporter": async_runner(_request(exporter), loop),
            "instrumentator": async_runner(_request(instrumentator), loop),
            "otel": async_runner(_request(otel), loop),
            "otel_server": async_runner(_request(otel_server), loop),
        }, budget).items()}
    finally:
        context.share_opentelemetry_context(True)
        loop.close()
    added = {name: us[name] - us["bare"] for name in us}
    case = "`VigilMiddleware` per request (added to a Starlette route)"
    return [
        Result(case, added["vigil"], "starlette-exporter `PrometheusMiddleware`, group_paths",
               added["exporter"], "µs", 1.0),
        Result(case, added["vigil"], "prometheus-fastapi-instrumentator, default metrics",
               added["instrumentator"], "µs", 1.0),
        Result(case, added["vigil"], "OpenTelemetry ASGI middleware, SDK tracer without "
               "processor", added["otel"], "µs", 0.5),
        Result(case, added["vigil"], "OpenTelemetry ASGI middleware, server span only "
               "(`exclude_spans`)", added["otel_server"], "µs", 0.5),
        Result("Starlette request with `VigilMiddleware` (total)", us["vigil"],
               "the same request, no middleware", us["bare"], "µs"),
    ]
