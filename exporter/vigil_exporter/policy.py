"""Who may ask the exporter what, and the HTTP hygiene of every answer.

:class:`HTTPPolicyMiddleware` sits in front of the routes (behind ``RequestLimitsMiddleware``,
which bounds bodies and answers the last-resort 500) and decides, before any routing:

1. **Host** (DNS rebinding: a page whose name now resolves to 127.0.0.1 is same-origin with
   the exporter as far as the browser knows, but its requests still carry its own name). The
   ``Host`` header must be one of the exporter's names: ``localhost``, ``127.0.0.1``,
   ``[::1]``, the bound address, the address the connection arrived on (an IP literal), and,
   when bound beyond loopback, the machine's hostname; plus ``exporter.allowed_hosts``
   (``.example.com`` matches the domain and its subdomains, ``*`` any host). The port is not
   compared (port mappings change it). Others get **421**; a malformed Host **400**.
2. **HEAD** is answered wherever GET is: the GET route runs and the body is dropped.
3. **Origin** (cross-site requests: browsers send ``Origin`` on every cross-origin fetch and
   form POST; Alertmanager and Prometheus send none). A request with an ``Origin`` that is not
   the exporter's own (the one its ``Host`` names) nor in ``exporter.allowed_origins`` gets
   **403** on every route but ``/healthz`` and ``/readyz``.
4. **API credentials**: with ``exporter.api_bearer_token`` or ``api_username`` +
   ``api_password`` set, every route but ``/healthz``, ``/readyz`` and the webhook (which has
   its own credentials) needs them: **401** with ``WWW-Authenticate``, before routing, so an
   unknown or trailing-slash path tells nothing either.
5. **Headers on every answer**: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
   ``Referrer-Policy: no-referrer``, ``Content-Security-Policy: default-src 'none';
   frame-ancestors 'none'`` (the docs pages set their own) and ``Cache-Control: no-store``
   unless the route set one.

Refusals are the JSON error shape and are logged (method, path and the refused Host or Origin;
never other headers). :func:`exposure_warning` is the start-up warning for an exporter bound
beyond loopback without credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.config import ExporterSettings, is_loopback_host
from vigil.monitoring.logger_protocol import Logger
from vigil_exporter.auth import Credentials
from vigil_exporter.responses import error_response, short

__all__ = [
    "LOOPBACK_NAMES",
    "OPEN_PATHS",
    "HTTPPolicyMiddleware",
    "HostPolicy",
    "OriginPolicy",
    "add_docs_routes",
    "exposure_warning",
]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # no Origin check, no API credentials
HEAD_SCOPE_KEY = "vigil.head"  # set on the scope of a HEAD request answered by its GET route

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")
_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
)


# --- Host -----------------------------------------------------------------------------------


def split_host(value: str) -> tuple[str, str] | None:
    """``host[:port]`` -> (canonical host, port or ""); None when malformed.

    Names are lower-cased without a trailing dot; IPv4 addresses in dotted form; IPv6 in
    brackets, compressed (``[0:0::1]`` -> ``[::1]``).
    """
    if value.startswith("["):
        inside, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        try:
            host = f"[{ipaddress.IPv6Address(inside).compressed}]"
        except ValueError:
            return None
        port = rest[1:]
    else:
        name, _, port = value.partition(":")
        if ":" in port:  # a bare IPv6 address is not a valid Host
            return None
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        if not _NAME.fullmatch(name):
            return None
        try:
            host = str(ipaddress.IPv4Address(name))
        except ValueError:
            host = name
    if port and not (port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        return None
    return host, port


def _canonical_entry(entry: str) -> str:
    """An allowed-hosts entry as :func:`split_host` spells hosts (bare IPv6 accepted)."""
    text = entry.strip()
    if ":" in text and not text.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(text).compressed}]"
        except ValueError:
            pass
    split = split_host(text)
    return split[0] if split is not None else text.lower()


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The ``Host`` names the exporter answers to."""

    names: frozenset[str]
    domains: tuple[str, ...] = ()  # ".example.com": the domain and its subdomains
    any_host: bool = False

    @classmethod
    def from_settings(cls, settings: ExporterSettings) -> HostPolicy:
        entries = [*LOOPBACK_NAMES, *settings.allowed_hosts]
        if settings.host not in ("0.0.0.0", "::", ""):
            entries.append(settings.host)
        if not is_loopback_host(settings.host):
            entries.append(socket.gethostname())
        names = {_canonical_entry(e) for e in entries if e != "*" and not e.startswith(".")}
        domains = tuple(e.lower().rstrip(".") for e in entries if e.startswith("."))
        return cls(frozenset(names), domains, "*" in settings.allowed_hosts)

    def allows(self, host: str, local_address: str | None = None) -> bool:
        """Whether canonical ``host`` is one of ours (``local_address``: where the connection
        arrived, accepted when ``host`` is that IP literal)."""
        if self.any_host or host in self.names:
            return True
        if any(host == d[1:] or host.endswith(d) for d in self.domains):
            return True
        if local_address is not None and (host.startswith("[") or host[:1].isdigit()):
            try:
                local = ipaddress.ip_address(local_address.strip("[]").split("%", 1)[0])
            except ValueError:
                return False
            spelled = f"[{local.compressed}]" if local.version == 6 else str(local)
            return host == spelled
        return False


# --- Origin ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The browser origins allowed besides the exporter's own."""

    origins: frozenset[str]
    any_origin: bool = False

    @classmethod
    def from_settings(cls, settings: ExporterSettings) -> OriginPolicy:
        return cls(frozenset(o.lower().rstrip("/") for o in settings.allowed_origins
                             if o != "*"), "*" in settings.allowed_origins)

    def allows(self, origin: str, host_header: str | None) -> bool:
        """Whether a request with ``Origin: origin`` and this ``Host`` may go on."""
        normal = origin.strip().lower().rstrip("/")
        if self.any_origin or normal in self.origins:
            return True
        scheme, sep, netloc = normal.partition("://")
        if not sep or host_header is None or "/" in netloc:
            return False  # "null" (sandboxed pages, file://) or not an origin at all
        theirs, ours = split_host(netloc), split_host(host_header)
        if theirs is None or ours is None:
            return False
        default = _DEFAULT_PORTS.get(scheme, "")
        return theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)


# --- the middleware -------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", ())
            if key.lower() == name]


class HTTPPolicyMiddleware:
    """ASGI middleware: Host, HEAD, Origin, API credentials and the security headers (module
    docs, in that order)."""

    def __init__(self, app: ASGIApp, *, settings: ExporterSettings, logger: Logger) -> None:
        self.app = app
        self.hosts = HostPolicy.from_settings(settings)
        self.origins = OriginPolicy.from_settings(settings)
        self.api = Credentials.for_api(settings)
        self.webhook_path = settings.webhook_path
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        hosts = _header(scope, b"host")
        refusal = self._host_refusal(scope, hosts)
        if refusal is None and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET", HEAD_SCOPE_KEY: True}
            send = self._without_body(send)
        if refusal is None:
            refusal = self._origin_refusal(scope, hosts[0] if hosts else None)
        if refusal is None:
            refusal = self._credentials_refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_refusal(self, scope: Scope, hosts: list[str]) -> Response | None:
        if not hosts:  # HTTP/1.0 without Host: no browser sends that
            return None
        if len(hosts) > 1:
            return self._refuse(400, "more than one Host header", scope)
        split = split_host(hosts[0])
        if split is None:
            return self._refuse(400, f"malformed Host header {short(hosts[0])}", scope)
        server = scope.get("server")
        if self.hosts.allows(split[0], str(server[0]) if server else None):
            return None
        return self._refuse(421, f"this exporter does not answer to the host "
                                 f"{short(split[0])}; add it to exporter.allowed_hosts if it "
                                 "is one of its names", scope, host=short(hosts[0]))

    def _origin_refusal(self, scope: Scope, host: str | None) -> Response | None:
        if scope["path"] in OPEN_PATHS:
            return None
        origins = _header(scope, b"origin")
        if not origins or all(self.origins.allows(o, host) for o in origins):
            return None
        return self._refuse(403, f"cross-origin request refused (Origin {short(origins[0])}); "
                                 "add the origin to exporter.allowed_origins to allow it",
                            scope, origin=short(origins[0]))

    def _credentials_refusal(self, scope: Scope) -> Response | None:
        path = scope["path"]
        if not self.api.enabled or path in OPEN_PATHS or path == self.webhook_path:
            return None
        authorization = _header(scope, b"authorization")
        if len(authorization) == 1 and self.api.check(authorization[0]):
            return None
        return self._refuse(401, "valid API credentials are required", scope,
                            headers={"WWW-Authenticate": self.api.challenge()},
                            credentials="missing" if not authorization else "invalid")

    def _refuse(self, status: int, message: str, scope: Scope, *,
                headers: Mapping[str, str] | None = None, **extra: str) -> Response:
        with contextlib.suppress(Exception):  # a broken logger must not break the answer
            self.logger.warning("request refused", {
                "method": scope.get("method"), "path": scope.get("path"), "status": status,
                "error": message, **extra})
        return error_response(status, message, headers=headers)

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_headers

    @staticmethod
    def _without_body(send: Send) -> Send:
        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the GET body is dropped; only its end is passed on
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        return send_head


# --- the start-up warning -------------------------------------------------------------------


def exposure_warning(settings: ExporterSettings, host: str | None = None) -> str | None:
    """One line when the exporter listens beyond loopback without webhook or API
    credentials (``host``: the address bound, default ``settings.host``); None otherwise."""
    bound = settings.host if host is None else host
    if is_loopback_host(bound):
        return None
    missing = []
    if not Credentials.from_settings(settings).enabled:
        missing.append("webhook credentials (anyone who reaches it can post alerts to the "
                       "handlers: set exporter.webhook_bearer_token, or webhook_username and "
                       "webhook_password)")
    if not Credentials.for_api(settings).enabled:
        missing.append("API credentials (anyone who reaches it can read /metrics and /api/*: "
                       "set exporter.api_bearer_token, or api_username and api_password)")
    if not missing:
        return None
    return f"listening on {bound} (beyond loopback) without " + " and without ".join(missing)


# --- the docs pages (exporter.docs_enabled) -------------------------------------------------

_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _csp(html: bytes, *, extra: Iterable[str] = ()) -> str:
    """A CSP for a docs page: its CDN scripts and styles, its inline scripts by hash."""
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
              for m in _INLINE_SCRIPT.findall(html.decode())]
    return "; ".join([
        "default-src 'none'", f"script-src {_CDN} {' '.join(hashes)}".strip(),
        f"style-src {_CDN} https://fonts.googleapis.com 'unsafe-inline'",
        "font-src https://fonts.gstatic.com", f"img-src 'self' data: {_CDN} "
        "https://fastapi.tiangolo.com", "connect-src 'self'", "worker-src blob:",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", *extra])


def add_docs_routes(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """``/docs`` (Swagger UI) and ``/redoc``, each with a CSP that allows only what it loads
    (jsDelivr's scripts and styles, its own inline script by hash). Not in the OpenAPI."""
    title = f"{app.title} - docs"

    def page(html: Response) -> Response:
        body = bytes(html.body)
        return Response(body, media_type="text/html",
                        headers={"Content-Security-Policy": _csp(body)})

    swagger = page(get_swagger_ui_html(openapi_url=openapi_url, title=title))
    redoc = page(get_redoc_html(openapi_url=openapi_url, title=title))

    async def docs(request: Request) -> Response:
        return Response(swagger.body, media_type="text/html", headers=_copy(swagger))

    async def redoc_page(request: Request) -> Response:
        return Response(redoc.body, media_type="text/html", headers=_copy(redoc))

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)


def _copy(response: Response) -> dict[str, str]:
    return {"Content-Security-Policy": response.headers["content-security-policy"]}
