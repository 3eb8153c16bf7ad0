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
  the application put there) go through :func:`~vigil_exporter.responses.json_safe`
  (:mod:`vigil.jsonsafe`'s rule:
  unknown objects become their text, non-finite floats ``"NaN"``/``"Infinity"``, lone
  surrogates U+FFFD, nesting past :data:`~vigil_exporter.responses.MAX_JSON_DEPTH`
  ``"[TOO DEEP]"``). A trace tree is cut below :data:`~vigil_exporter.queries.MAX_TREE_DEPTH`
  levels (the cut node has ``truncated: true``);
  a whole W3C trace keeps within ``api_max_bytes`` by leaving out whole trees.
- **Nothing slow runs on the event loop**: ``/metrics`` renders in a worker thread (a scrape of
  10k series takes ~100 ms), the JSON API's queries run in the thread pool, and webhook bodies
  are parsed there.
- **Every request is bounded** by
  :class:`~vigil_exporter.middleware.RequestLimitsMiddleware`: a body over
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

Where each part lives (this module is the factory; the names in ``__all__`` are re-exported
from their homes so that ``from vigil_exporter.app import ...`` keeps working):

- :mod:`vigil_exporter.models`: the pydantic response models (the OpenAPI description);
- :mod:`vigil_exporter.queries`: vigil's buffers read into the JSON API's answers;
- :mod:`vigil_exporter.negotiation`: the ``Accept`` handling of ``/metrics`` (q values, and
  prometheus_client's encoder minus its crash on a garbled ``version=``);
- :mod:`vigil_exporter.middleware`: request limits, the last-resort 500, the start of a
  mounted app; :mod:`vigil_exporter.policy`: Host, Origin, credentials, security headers;
- :mod:`vigil_exporter.lifecycle`: the webhook's store and delivery loop, with the lifespan;
- :mod:`vigil_exporter.routes`: one module per group of routes, the exception handlers and
  the OpenAPI document's shared parts; :mod:`vigil_exporter.responses`: the JSON encoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from vigil import __version__
from vigil.config import ExporterSettings, get_config
from vigil.monitoring import alerts as vigil_alerts
from vigil.monitoring import metrics as vigil_metrics
from vigil.monitoring import tracing as vigil_tracing
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil_exporter.auth import Credentials, WebhookAuth
from vigil_exporter.console import console_router
from vigil_exporter.lifecycle import StoreLifecycle
from vigil_exporter.middleware import RequestLimitsMiddleware, StartWhenMounted
from vigil_exporter.models import (
    AlertInfo,
    BreakerInfo,
    DeadLetterInfo,
    DeliveriesInfo,
    ErrorResponse,
    LogEntry,
    MetricStats,
    ProcessInfo,
    StatusResponse,
    TraceById,
    TraceEntry,
    TraceNode,
    TraceTree,
    WebhookAccepted,
)
from vigil_exporter.negotiation import metrics_media_range
from vigil_exporter.policy import HTTPPolicyMiddleware, add_docs_routes
from vigil_exporter.queries import MAX_TREE_DEPTH
from vigil_exporter.responses import MAX_JSON_DEPTH, json_safe
from vigil_exporter.routes.api import API_LIMIT_DEFAULT, API_LIMIT_MAX, add_api_routes
from vigil_exporter.routes.errors import add_error_handlers
from vigil_exporter.routes.health import add_health_routes
from vigil_exporter.routes.metrics import add_metrics_route, render_metrics
from vigil_exporter.routes.openapi import add_security_description
from vigil_exporter.routes.webhook import (
    RETRY_AFTER_SECONDS,
    add_webhook_route,
    webhook_request_counter,
)
from vigil_exporter.store import AlertStore

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
    count_webhook = webhook_request_counter(registry, settings.webhook_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lifecycle.start)
        app.state.lifespan = True
        try:
            yield
        finally:
            await run_in_threadpool(lifecycle.stop)

    # No /docs and /redoc unless asked (their scripts come from a CDN); no trailing-slash
    # redirects (Starlette builds their Location from the Host header).
    app = FastAPI(title="vigil exporter", version=__version__, lifespan=lifespan,
                  description=_DESCRIPTION.format(webhook_path=settings.webhook_path),
                  docs_url=None, redoc_url=None, redirect_slashes=False)
    # The lifespan above runs only once the app serves, so it finds this bound.
    lifecycle = StoreLifecycle(app.state, settings=settings, registry=registry,
                               manager=manager, logger=logger, store=store,
                               state_dir=state_dir)
    app.state.lifespan = False  # set by the lifespan; StartWhenMounted reads it
    app.state.registry = registry  # the server's connection metrics go there too (server.py)

    # Added first, so it runs inside RequestLimitsMiddleware: its refusals are counted and
    # its failures answered like the routes'.
    app.add_middleware(HTTPPolicyMiddleware, settings=settings, logger=logger)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes,
                       request_timeout=settings.request_timeout, logger=logger,
                       on_response=count_webhook)
    add_error_handlers(app, logger)
    add_metrics_route(app, registry)
    add_health_routes(app)
    add_api_routes(app, manager, tracer, monitor, settings)
    app.include_router(console_router(settings, monitor))  # GET /: the HTML console
    add_webhook_route(app, settings, auth, manager, registry, logger)
    if settings.docs_enabled:
        add_docs_routes(app)
    add_security_description(app, settings.webhook_path, auth, Credentials.for_api(settings))
    # Last, so outermost: mounted in another app (app.mount("/vigil", create_app())) this
    # app's lifespan never runs, Starlette does not pass it on; its first request starts it.
    app.add_middleware(StartWhenMounted, state=app.state, start=lifecycle.start,
                       stop=lifecycle.stop, logger=logger)
    return app
