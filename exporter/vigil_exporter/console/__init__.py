"""The exporter's live console: an HTML page at ``GET /`` over the JSON API.

For the developer on their own machine with no Prometheus, Grafana or trace backend: breakers
(state as colour and word, failures, time to the next probe, a sparkline of the last five
minutes), alerts (application and Alertmanager, firing/resolved, delivery state), functions
(calls, errors, latency percentiles), logs (filter by level, component, trace id) and a trace
page drawing the span tree as a waterfall. It polls the JSON API every few seconds and says so
when the data is stale or the exporter does not answer.

What this package serves (:func:`console_router`; none of it is in ``/openapi.json``):

- ``GET /``: ``static/index.html``; ``GET /console/{file}``: ``console.js``, ``console.css``,
  ``favicon.svg`` (:data:`ASSETS`; anything else 404). Everything comes from the package: no
  CDN, no web font, no build step. They are ``Cache-Control: no-cache`` with an ``ETag``
  (``If-None-Match`` gets 304). The page carries :data:`CONSOLE_CSP`: scripts, styles, images
  and ``fetch`` from the exporter only, no inline script or style, no eval, Trusted Types
  enforced (so no string can reach ``innerHTML``: the script builds the DOM with
  ``textContent``), no framing.
- ``GET /console/api/history``: :class:`~vigil_exporter.console.history.BreakerHistory`'s
  buckets per breaker (sampled on each request), a list within ``exporter.api_max_bytes``.
- ``GET /console/api/functions``: :func:`~vigil_exporter.console.functions.function_stats`,
  a list within ``exporter.api_max_bytes``.

The rest comes from ``/api/breakers``, ``/api/alerts``, ``/api/deliveries``, ``/api/logs``,
``/api/traces`` and ``/api/traces/{id}``, unchanged. The page and its URLs are relative, so
the console works where the app is mounted too (``/vigil/``). The app's
:class:`~vigil_exporter.policy.HTTPPolicyMiddleware` applies as to ``/api/*``: Host (421),
Origin (403) and, with ``exporter.api_*`` credentials, 401 (with basic auth the browser asks
once and sends them with every request the page makes; a bearer token cannot be typed into a
browser, so with only ``api_bearer_token`` set the console is for clients that add the header).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response

from vigil.config import ExporterSettings
from vigil.error_handling.breaker import CircuitBreaker, all_breakers
from vigil.monitoring.metrics import PerformanceMonitor
from vigil_exporter.console.functions import function_stats
from vigil_exporter.console.history import BreakerHistory
from vigil_exporter.responses import BudgetedListResponse
from vigil_exporter.responses import short as _short

__all__ = ["ASSETS", "CONSOLE_CSP", "Asset", "BreakerHistory", "console_router", "load_asset"]

CONSOLE_CSP = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    "require-trusted-types-for 'script'", "trusted-types 'none'"])

# The files under static/ that are served, and their media types. Anything else is a 404.
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_INDEX = "index.html"


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file, read once: its bytes, media type and ETag."""

    body: bytes
    media_type: str
    etag: str

    def response(self, request: Request, headers: dict[str, str] | None = None) -> Response:
        """200 with the file, or 304 when the client's ``If-None-Match`` names its ETag."""
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", **(headers or {})}
        wanted = request.headers.get("if-none-match", "")
        if self.etag in (tag.strip().removeprefix("W/") for tag in wanted.split(",")):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


@functools.cache  # read once per process, however many apps are built
def load_asset(name: str, media_type: str) -> Asset:
    """``static/<name>`` from the package (the checkout or the installed wheel)."""
    body = resources.files(__name__).joinpath("static", name).read_bytes()
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def console_router(settings: ExporterSettings, monitor: PerformanceMonitor, *,
                   history: BreakerHistory | None = None,
                   breakers: Callable[[], Iterable[CircuitBreaker]] = all_breakers
                   ) -> APIRouter:
    """The console's routes (module docs), for ``app.include_router``.

    ``history`` (default: a new :class:`BreakerHistory` on the system clock) keeps the
    sparklines; ``breakers`` lists the live breakers (default ``all_breakers``).
    """
    history = history if history is not None else BreakerHistory()
    index = load_asset(_INDEX, "text/html; charset=utf-8")
    assets = {name: load_asset(name, media_type) for name, media_type in ASSETS.items()}
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def console_page(request: Request) -> Response:
        return index.response(request, {"Content-Security-Policy": CONSOLE_CSP})

    # Plain ``def``: run in the thread pool, like the JSON API (snapshots and stats take locks).
    @router.get("/console/api/history")
    def console_history() -> Response:
        return BudgetedListResponse(history.sample(breakers()), settings.api_max_bytes,
                                    headers={"Vigil-Untracked": str(history.untracked)})

    @router.get("/console/api/functions")
    def console_functions() -> Response:
        return BudgetedListResponse(function_stats(monitor), settings.api_max_bytes)

    @router.get("/console/{name}")
    async def console_asset(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise HTTPException(404, f"no console file {_short(name)} (there are: "
                                     f"{', '.join(sorted(assets))})")
        return asset.response(request)

    return router
