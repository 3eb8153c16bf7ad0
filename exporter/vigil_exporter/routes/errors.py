"""The exception handlers: every 4xx and 5xx in the one JSON error shape, with one readable line.

``{"error": "<one line>", "detail": [...]}`` (:func:`~vigil_exporter.responses.error_response`):
Starlette's 404 and 405 name the path (and the method, HEAD for a HEAD answered by its GET
route), a 422 on a parameter says where, what and the value received, with FastAPI's
validation errors in ``detail``. A refusal raised by
:class:`~vigil_exporter.middleware.RequestLimitsMiddleware`'s ``receive`` inside a route is
logged here, as the middleware logs the ones it answers itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.middleware import RequestRejected
from vigil_exporter.policy import HEAD_SCOPE_KEY
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short

__all__ = ["add_error_handlers"]


def add_error_handlers(app: FastAPI, logger: StructuredLogger) -> None:
    """Answer HTTP errors, validation errors and anything else in the one error shape."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if isinstance(exc, RequestRejected):  # raised by RequestLimitsMiddleware's receive
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
