"""``GET /healthz`` (liveness: always 200) and ``GET /readyz`` (readiness: 200 while the
webhook's store is open and its delivery loop runs, else 503 saying which is missing).

Both are open to any ``Origin`` and need no API credentials
(:data:`vigil_exporter.policy.OPEN_PATHS`), so an orchestrator's probe always gets through.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from vigil_exporter.delivery import DeliveryLoop
from vigil_exporter.models import ErrorResponse, StatusResponse
from vigil_exporter.responses import SafeJSONResponse
from vigil_exporter.responses import error_response as _error

__all__ = ["add_health_routes"]


def add_health_routes(app: FastAPI) -> None:
    """``/healthz`` and ``/readyz``; readiness reads ``app.state`` (set by the app's lifespan)."""

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
