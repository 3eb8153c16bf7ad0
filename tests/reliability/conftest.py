"""Shared pieces of the reliability suite: real exporters on real sockets, leak counters.

Every server here is real: the exporter is ``start_exporter(port=0, app=create_app(...))`` on a
loopback socket with fresh collaborators (its own registry, AlertManager, tracer, monitor), and
Prometheus/Alertmanager are the Debian binaries run by ``vigil_exporter.stack.LocalStack``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client import CollectorRegistry

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil_exporter.app import create_app
from vigil_exporter.server import ExporterHandle, start_exporter

WAIT = 10.0  # real seconds a test waits for another thread or a server before failing
WEBHOOK = "/alertmanager/webhook"
# A heavy variant: deselected by default (pyproject addopts -m "not heavy"), longer timeout.
HEAVY = (pytest.mark.heavy, pytest.mark.timeout(900))


def sizes(default: int, heavy: int, unit: str = "examples") -> list[Any]:
    """Parameters for a test's size: ``default`` in every run, ``heavy`` under ``-m heavy``."""
    return [pytest.param(default, id=f"{default}-{unit}"),
            pytest.param(heavy, id=f"{heavy}-{unit}", marks=HEAVY)]


@dataclass
class LiveExporter:
    """An exporter serving on a real loopback socket, with its own collaborators."""

    handle: ExporterHandle
    registry: CollectorRegistry
    manager: AlertManager
    tracer: ExecutionTracer
    monitor: PerformanceMonitor
    settings: ExporterSettings
    app: Any
    received: list[Alert] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.handle.url

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def delivered(self) -> list[Alert]:
        """What the handler received once the store's deliveries and the handlers caught up."""
        assert self.app.state.delivery.flush(WAIT)
        assert self.manager.flush(WAIT)
        return list(self.received)

    def healthy(self) -> bool:
        """``/healthz`` answers 200 over a fresh connection."""
        with httpx.Client(timeout=WAIT) as client:
            return client.get(self.url + "/healthz").status_code == 200


def live_exporter(stack: contextlib.ExitStack, *, manager: AlertManager | None = None,
                  registry: CollectorRegistry | None = None, **settings: Any) -> LiveExporter:
    """Start an exporter on 127.0.0.1:<free port>; ``stack`` stops it and its manager.

    Its alert store lives in a fresh folder unless ``state_dir`` is given.
    """
    if "state_dir" not in settings:
        settings["state_dir"] = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="vigil-state-"))
    # The raw requests of this suite say "Host: vigil" (post_bytes and the hand-written ones);
    # 127.0.0.1 and localhost are answered by default.
    settings.setdefault("allowed_hosts", ("vigil",))
    registry = registry if registry is not None else CollectorRegistry()
    manager = manager if manager is not None else AlertManager(registry=registry)
    stack.callback(manager.close)
    tracer = ExecutionTracer(registry=registry)
    monitor = PerformanceMonitor(registry=registry)
    exporter_settings = ExporterSettings(**settings)
    app = create_app(settings=exporter_settings, registry=registry, alert_manager=manager,
                     tracer=tracer, monitor=monitor)
    handle = start_exporter(port=0, app=app, settings=exporter_settings)
    stack.callback(handle.stop)
    live = LiveExporter(handle, registry, manager, tracer, monitor, exporter_settings, app)
    manager.register_handler(live.received.append)
    return live


@pytest.fixture
def exporter() -> Iterator[Callable[..., LiveExporter]]:
    """Builds live exporters (settings as keyword arguments); all stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **settings: live_exporter(stack, **settings)


# --- raw HTTP over a socket -----------------------------------------------------------------


def raw_request(url: str, data: bytes, *, timeout: float = WAIT) -> tuple[int, bytes, bool]:
    """Send ``data`` as is on a new connection; (status, whole answer, server closed it).

    For what an HTTP client will not send: wrong lengths, invalid bytes, stalled bodies.
    """
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        # The server may answer and close before reading everything: read the answer anyway.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_answer(sock, timeout)


def read_answer(sock: socket.socket, timeout: float = WAIT) -> tuple[int, bytes, bool]:
    """Read one HTTP answer from ``sock``; (status, raw bytes, whether the peer closed).

    An answer with ``Connection: close`` must be followed by the end of the stream; one
    without it must leave the connection open (checked without waiting).
    """
    deadline = time.monotonic() + timeout
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            fields = head.lower()
            if b"content-length:" in fields:
                length = int(fields.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                if len(body) >= length:
                    break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no complete answer within {timeout:.0f}s: {answer[:200]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break  # closed: whatever came is the answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 "), f"no HTTP answer: {answer[:200]!r}"
    closing = b"\r\nconnection: close\r\n" in answer.partition(b"\r\n\r\n")[0].lower() + b"\r\n"
    return int(answer[9:12]), answer, _peer_closed(sock, deadline) if closing else False


def _peer_closed(sock: socket.socket, deadline: float) -> bool:
    """Whether the peer ends the stream (it does at once after ``Connection: close``)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def post_bytes(body: bytes, *, path: str = WEBHOOK, content_type: str = "application/json",
               extra_headers: str = "") -> bytes:
    """A complete HTTP/1.1 POST request carrying ``body`` with its Content-Length."""
    head = (f"POST {path} HTTP/1.1\r\nHost: vigil\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra_headers}\r\n")
    return head.encode("latin-1") + body


# --- leaks ----------------------------------------------------------------------------------

VIGIL_THREAD_PREFIXES = ("vigil-", "AnyIO worker thread", "asyncio_")


@dataclass(frozen=True)
class Footprint:
    """What a process holds that a leak would grow: threads by name, fds, inet sockets."""

    threads: Counter[str]
    fds: int
    sockets: int

    @classmethod
    def now(cls) -> Footprint:
        names: Counter[str] = Counter()
        for thread in threading.enumerate():
            # Worker threads are numbered ("asyncio_0"); count them by kind.
            names[thread.name.rstrip("0123456789_-")] += 1
        proc = psutil.Process()
        return cls(names, len(os.listdir("/proc/self/fd")), len(proc.net_connections("inet")))

    def vigil_threads(self) -> Counter[str]:
        return Counter({name: n for name, n in self.threads.items()
                        if name.startswith(VIGIL_THREAD_PREFIXES)})


def settle(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (readiness, not a wait-out)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
