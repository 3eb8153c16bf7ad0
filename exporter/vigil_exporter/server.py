"""Run the exporter app with uvicorn: embedded in a background thread, or in the foreground.

Why uvicorn (with FastAPI): it serves requests concurrently on an event loop, closes idle
keep-alive connections and caps incomplete request heads, and FastAPI publishes an OpenAPI
description of the JSON API (``/openapi.json``) that schemathesis can fuzz. The body-size limit
and the slow-body timeout are the app's own middleware (uvicorn has neither).

The socket is bound here, before uvicorn starts, so ``port=0`` works (the handle reports the
port the kernel picked) and a port already in use fails at once with a clear error.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from vigil.config import ExporterSettings, get_config

__all__ = ["ExporterHandle", "bind_socket", "start_exporter"]

_STARTUP_TIMEOUT = 15.0
# Seconds an idle keep-alive connection stays open; Prometheus reconnects cheaply.
_KEEP_ALIVE = 5


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    return sock


def uvicorn_config(app: Any, settings: ExporterSettings, *, log_level: str = "warning"
                   ) -> uvicorn.Config:
    """The uvicorn settings vigil uses, foreground or embedded."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        log_config=None,  # leave logging to the application (vigil.configure_logging)
        lifespan="on",
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=5,
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
        server_header=False,
    )


@dataclass
class ExporterHandle:
    """A running embedded exporter: where it listens, and how to stop it."""

    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _socket: socket.socket = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop serving and free the port; returns whether the server thread ended in time."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
        return not self._thread.is_alive()

    def __enter__(self) -> ExporterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_exporter(port: int | None = None, host: str | None = None, *, app: Any = None,
                   settings: ExporterSettings | None = None,
                   log_level: str = "warning") -> ExporterHandle:
    """Serve the exporter from a daemon thread of this process; returns once it accepts.

    ``port``/``host`` default to ``exporter.port``/``exporter.host`` (``127.0.0.1``: loopback
    unless told otherwise). ``app`` defaults to :func:`vigil_exporter.app.create_app` with the
    process-wide registry, tracer and alert manager.
    """
    settings = settings if settings is not None else get_config().exporter
    bind_host = host if host is not None else settings.host
    sock = bind_socket(bind_host, port if port is not None else settings.port)
    bound_port: int = sock.getsockname()[1]
    if app is None:
        from vigil_exporter.app import create_app

        app = create_app(settings=settings)
    server = uvicorn.Server(uvicorn_config(app, settings, log_level=log_level))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="vigil-exporter", daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise RuntimeError(f"the exporter did not start on {bind_host}:{bound_port}")
        time.sleep(0.01)  # polling a flag uvicorn sets; there is no event to wait on
    return ExporterHandle(host=bind_host, port=bound_port, _server=server,
                          _thread=thread, _socket=sock)


def serve_forever(settings: ExporterSettings, *, host: str | None = None,
                  port: int | None = None, app: Any = None, log_level: str = "info") -> None:
    """Serve in the foreground until SIGINT/SIGTERM (the ``vigil serve`` command)."""
    sock = bind_socket(host if host is not None else settings.host,
                       port if port is not None else settings.port)
    if app is None:
        from vigil_exporter.app import create_app

        app = create_app(settings=settings)
    try:
        uvicorn.Server(uvicorn_config(app, settings, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()
