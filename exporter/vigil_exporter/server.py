"""Run the exporter app with uvicorn: embedded in a background thread, or in the foreground.

Why uvicorn (with FastAPI): it serves requests concurrently on an event loop, closes idle
keep-alive connections and caps the size of incomplete request heads, and FastAPI publishes an
OpenAPI description of the JSON API (``/openapi.json``) that schemathesis can fuzz. The
body-size limit and the body deadline are the app's own middleware (uvicorn has neither).

What uvicorn lacks at the connection level, :mod:`vigil_exporter.transport` adds through
uvicorn's own seams (``Config(http=<protocol class>)`` and a ``Server`` subclass): a deadline
for the request head (``exporter.head_timeout``) and a backstop for the body's
(``exporter.request_timeout``), a write timeout for answers nobody reads
(``exporter.write_timeout``), a connection cap below the open-file limit
(``exporter.max_connections``), and accept() errors logged at most once per interval. Its
metrics go to the registry the app serves (``app.state.registry``, else vigil's default).

The socket is bound here, before uvicorn starts, so ``port=0`` works (the handle reports the
port the kernel picked) and a port already in use fails at once with a clear error.

**Stopping** is graceful both ways: uvicorn stops accepting connections and lets open requests
finish, then the app's lifespan ends, which makes the webhook answer 503 and gives running
alert handler calls ``exporter.shutdown_timeout`` seconds; the alerts they did not get to stay
in the store. ``vigil serve`` does this on SIGTERM and SIGINT and then exits 0 (uvicorn alone
would re-raise the signal and die with 143 or 130); an embedded exporter on
:meth:`ExporterHandle.stop`.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from vigil.config import ExporterSettings, get_config
from vigil.monitoring import instruments
from vigil_exporter.transport import ACCEPT_BATCH, LISTEN_QUEUE, ConnectionGuard, GuardedServer

__all__ = ["ExporterHandle", "bind_socket", "start_exporter"]

_STARTUP_TIMEOUT = 15.0
_DEFAULT_MAX_CONNECTIONS = ExporterSettings.max_connections
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
    sock.listen(LISTEN_QUEUE)
    return sock


def _registry_of(app: Any) -> CollectorRegistry:
    """Where the server's metrics go: the registry the app serves, else vigil's default."""
    registry = getattr(getattr(app, "state", None), "registry", None)
    if isinstance(registry, CollectorRegistry):
        return registry
    return instruments.default_registry()


def uvicorn_config(app: Any, settings: ExporterSettings, *, log_level: str = "warning",
                   guard: ConnectionGuard | None = None) -> uvicorn.Config:
    """The uvicorn settings vigil uses, foreground or embedded.

    ``guard`` (default: a new one reporting to the app's registry) supplies the h11 protocol
    with the connection limits.
    """
    if guard is None:
        guard = ConnectionGuard(settings, _registry_of(app))
    return uvicorn.Config(
        app,
        http=guard.protocol_class(),
        backlog=ACCEPT_BATCH,  # GuardedServer listens with LISTEN_QUEUE again once started
        log_level=log_level,
        access_log=False,
        log_config=None,  # leave logging to the application (vigil.configure_logging)
        lifespan="on",
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=5,  # open requests; handler calls: exporter.shutdown_timeout
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
        server_header=False,
    )


def make_server(app: Any, settings: ExporterSettings, *, log_level: str = "warning",
                registry: CollectorRegistry | None = None) -> uvicorn.Server:
    """A uvicorn server for ``app`` with vigil's settings and connection limits.

    The limits' metrics go to ``registry``, by default the app's (see :func:`_registry_of`).
    """
    guard = ConnectionGuard(settings, registry if registry is not None else _registry_of(app))
    if guard.max_connections < settings.max_connections and \
            settings.max_connections != _DEFAULT_MAX_CONNECTIONS:
        guard.logger.warning(
            f"exporter.max_connections lowered from {settings.max_connections} to "
            f"{guard.max_connections} to stay below the open-file limit",
            {"max_connections": guard.max_connections})
    return GuardedServer(uvicorn_config(app, settings, log_level=log_level, guard=guard), guard)


@dataclass
class ExporterHandle:
    """A running embedded exporter: where it listens, and how to stop it."""

    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _socket: socket.socket = field(repr=False)
    _shutdown_timeout: float = field(default=10.0, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop serving gracefully and free the port; returns whether the server ended in time.

        The webhook answers 503 from the start of the stop; running alert handler calls get
        ``exporter.shutdown_timeout`` seconds (the default ``timeout`` leaves room for that).
        """
        if timeout is None:
            timeout = self._shutdown_timeout + 10.0
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
        return not self._thread.is_alive()

    def __enter__(self) -> ExporterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_exporter(port: int | None = None, host: str | None = None, *, app: Any = None,
                   settings: ExporterSettings | None = None, state_dir: str | None = None,
                   log_level: str = "warning",
                   registry: CollectorRegistry | None = None) -> ExporterHandle:
    """Serve the exporter from a daemon thread of this process; returns once it accepts.

    ``port``/``host`` default to ``exporter.port``/``exporter.host`` (``127.0.0.1``: loopback
    unless told otherwise). ``app`` defaults to :func:`vigil_exporter.app.create_app` with the
    process-wide registry, tracer and alert manager, its webhook store in ``state_dir``
    (default: ``exporter.state_dir``, else ``$XDG_STATE_HOME/vigil``). The connection
    metrics (``vigil_exporter_connections`` ...) go to ``registry``, by default the app's.
    """
    settings = settings if settings is not None else get_config().exporter
    bind_host = host if host is not None else settings.host
    sock = bind_socket(bind_host, port if port is not None else settings.port)
    bound_port: int = sock.getsockname()[1]
    if app is None:
        from vigil_exporter.app import create_app

        app = create_app(settings=settings, state_dir=state_dir)
    server = make_server(app, settings, log_level=log_level, registry=registry)
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
                          _thread=thread, _socket=sock,
                          _shutdown_timeout=settings.shutdown_timeout)


@contextmanager
def _signals_end_the_server(server: uvicorn.Server) -> Iterator[list[int]]:
    """SIGTERM and SIGINT stop ``server`` gracefully, and are not re-raised after.

    uvicorn installs its own handlers while it serves and, once shut down, raises the signal
    it caught again, reaching the handler that was there before: ours, which does nothing
    then. So a signalled ``vigil serve`` ends with status 0 after a complete shutdown instead
    of being killed by the re-raised signal. A second SIGINT still forces uvicorn's exit.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)
        server.should_exit = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve_forever(settings: ExporterSettings, *, host: str | None = None,
                  port: int | None = None, app: Any = None, log_level: str = "info",
                  state_dir: str | None = None,
                  registry: CollectorRegistry | None = None) -> list[int]:
    """Serve in the foreground until SIGINT/SIGTERM (the ``vigil serve`` command).

    Returns the signals that ended it (empty when the server stopped by itself).
    """
    sock = bind_socket(host if host is not None else settings.host,
                       port if port is not None else settings.port)
    if app is None:
        from vigil_exporter.app import create_app

        app = create_app(settings=settings, state_dir=state_dir)
    server = make_server(app, settings, log_level=log_level, registry=registry)
    try:
        with _signals_end_the_server(server) as caught:
            server.run(sockets=[sock])
        if not server.started and not caught:
            raise RuntimeError("the exporter did not start (see the log line above)")
        return caught
    finally:
        sock.close()
