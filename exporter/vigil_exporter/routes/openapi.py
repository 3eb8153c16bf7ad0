"""The OpenAPI description's shared parts: the documented error answers every route picks
from (:data:`ERRORS`, :func:`pick`), and the HTTP policy and credentials written into the
document once every route is registered (:func:`add_security_description`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vigil_exporter.auth import Credentials
from vigil_exporter.models import ErrorResponse
from vigil_exporter.policy import OPEN_PATHS

__all__ = ["ERRORS", "add_security_description", "pick"]

ERRORS: dict[int | str, dict[str, Any]] = {
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


def pick(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented answers of ``codes``, for a route's ``responses=``."""
    return {code: ERRORS[code] for code in codes}


def add_security_description(app: FastAPI, path: str, auth: Credentials,
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
                            "description": ERRORS[code]["description"], "content": error})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
