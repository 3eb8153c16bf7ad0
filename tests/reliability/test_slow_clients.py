"""Slow and greedy clients over real loopback sockets: each is cut off, and others are served.

The exporter here is ``start_exporter(port=0, app=create_app(...))`` (the ``exporter`` fixture),
with deadlines of about a second set through its settings so the tests are quick. The clients
drip-feed on their own schedule (that is the only sleeping); everything else polls with a
deadline. What is proven:

- request heads dripped one header line every 0.2 s are cut at ``exporter.head_timeout`` (408,
  closed), measured per connection, while ``/healthz`` answers;
- a body dripped one byte every 0.2 s is cut at ``exporter.request_timeout`` (408, closed): a
  deadline for the whole body, not for each chunk; so is a body the app never reads;
- clients that never read a large answer are aborted after ``exporter.write_timeout`` and the
  process lets go of the buffered answers (RSS measured);
- ``exporter.max_connections`` bounds the server's connections and file descriptors: idle
  connections past it are closed at once, a new client still gets ``/healthz``; when every
  slot holds a request in progress, a new connection gets a quick 503;
- ``accept()`` failing for lack of file descriptors (a child process with a lowered
  RLIMIT_NOFILE) is logged at most once a second here, every error counted in
  ``vigil_exporter_accept_errors_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.conftest import WAIT, WEBHOOK, LiveExporter, settle, sizes
from vigil.config import ExporterSettings
from vigil_exporter.server import start_exporter
from vigil_exporter.transport import APP_GRACE

FIRING = (Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
          / "firing.json").read_bytes()
DRIP = 0.2  # seconds between two pieces a slow client sends
DEADLINE = 1.0  # the head/body/write deadlines the tests configure
MARGIN = 1.0  # how late past its deadline a cut may come on a busy loopback (measured: <0.1 s)
CLOSED = "vigil_exporter_connections_closed_total"


# --- clients that drip ----------------------------------------------------------------------


@dataclass
class _Client:
    """One raw connection: when it opened, what it received, when the server ended it."""

    sock: socket.socket
    opened: float
    answer: bytes = b""
    cut: float | None = None

    @property
    def seconds_to_cut(self) -> float:
        assert self.cut is not None
        return self.cut - self.opened


def _address(live: LiveExporter) -> tuple[str, int]:
    return live.handle.host, live.handle.port


def _open(address: tuple[str, int], count: int, first: bytes = b"") -> list[_Client]:
    clients = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=WAIT)
        opened = time.monotonic()
        if first:
            sock.sendall(first)
        sock.setblocking(False)
        clients.append(_Client(sock, opened))
    return clients


def _drip(clients: list[_Client], piece: Callable[[int], bytes], *, until: float) -> None:
    """Send ``piece(n)`` to every open client each DRIP seconds; note when each is closed.

    Returns once the server has closed all of them, or at ``until`` (monotonic seconds).
    """
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    n, next_piece = 0, time.monotonic() + DRIP
    try:
        while selector.get_map() and time.monotonic() < until:
            for key, _ in selector.select(max(0.0, min(next_piece, until) - time.monotonic())):
                client = key.data
                try:
                    chunk = client.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    client.answer += chunk
                    continue
                client.cut = time.monotonic()
                selector.unregister(client.sock)
            if time.monotonic() >= next_piece:
                data = piece(n)
                n, next_piece = n + 1, next_piece + DRIP
                for key in list(selector.get_map().values()):
                    # Closed by the server meanwhile: the read side notes when.
                    with contextlib.suppress(BlockingIOError, BrokenPipeError,
                                             ConnectionResetError):
                        key.fileobj.send(data)  # type: ignore[union-attr]
    finally:
        selector.close()


def _close(clients: list[_Client]) -> None:
    for client in clients:
        client.sock.close()


def _figures(what: str, clients: list[_Client]) -> list[float]:
    cut = sorted(c.seconds_to_cut for c in clients if c.cut is not None)
    if cut:
        print(f"\n{what}: {len(cut)}/{len(clients)} cut; seconds to cut: "
              f"min {cut[0]:.3f}, median {statistics.median(cut):.3f}, max {cut[-1]:.3f}")
    return cut


def _in_background(target: Callable[[], None]) -> Callable[[], None]:
    """Run ``target`` on a thread; returns a join that re-raises what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(WAIT * 6)
        assert not thread.is_alive()
        if errors:
            raise errors[0]

    return join


def _health_latency(live: LiveExporter) -> float:
    started = time.monotonic()
    with httpx.Client(timeout=WAIT) as client:
        assert client.get(live.url + "/healthz").status_code == 200
    return time.monotonic() - started


# --- slow request heads ---------------------------------------------------------------------


@pytest.mark.parametrize("count", sizes(100, 400, "connections"))
def test_slowloris_heads_are_cut_at_the_head_timeout(
        exporter: Callable[..., LiveExporter], count: int) -> None:
    """Connections dripping a header line every 0.2 s are each closed with 408 head_timeout
    after they opened (not before, at most a margin after), while /healthz answers."""
    live = exporter(head_timeout=DEADLINE)
    clients = _open(_address(live), count, b"GET /healthz HTTP/1.1\r\nHost: vigil\r\n")
    try:
        join = _in_background(lambda: _drip(
            clients, lambda n: f"X-Drip-{n}: x\r\n".encode(),
            until=time.monotonic() + DEADLINE + MARGIN + WAIT))
        latency = _health_latency(live)
        still_open = sum(c.cut is None for c in clients)
        join()  # the drip ends once the server closed every connection (or at its limit)
    finally:
        _close(clients)
    print(f"\n/healthz answered in {latency * 1000:.1f} ms with {still_open} slow heads open")
    assert still_open == count  # it was answered while every slow client was connected
    cut = _figures(f"{count} slow heads, head_timeout={DEADLINE}s", clients)
    assert len(cut) == count
    assert cut[0] >= DEADLINE * 0.9  # the deadline cut them, nothing earlier
    assert cut[-1] <= DEADLINE + MARGIN
    timed_out = [c for c in clients if c.answer.startswith(b"HTTP/1.1 408 ")]
    print(f"{len(timed_out)}/{count} read the 408 before the close")
    assert len(timed_out) >= count * 0.9, clients[0].answer[:300]
    assert b"request head not received within 1 s" in timed_out[0].answer
    assert live.sample(CLOSED, reason="head_timeout") == count
    assert live.healthy()


def test_idle_connection_is_closed_without_an_answer(
        exporter: Callable[..., LiveExporter]) -> None:
    """A connection that sends nothing is closed at head_timeout, silently (no 408 to read as
    the answer to a request it never sent)."""
    live = exporter(head_timeout=DEADLINE)
    clients = _open(_address(live), 1)
    try:
        _drip(clients, lambda n: b"", until=time.monotonic() + DEADLINE + MARGIN + WAIT)
    finally:
        _close(clients)
    (seconds,) = _figures("idle connection", clients)
    assert DEADLINE * 0.9 <= seconds <= DEADLINE + MARGIN
    assert clients[0].answer == b""


def test_head_deadline_restarts_after_each_answer(
        exporter: Callable[..., LiveExporter]) -> None:
    """On a keep-alive connection the next head has head_timeout from the end of the previous
    answer: a first request answered at once, then a second head dripped, is cut."""
    live = exporter(head_timeout=DEADLINE)
    clients = _open(_address(live), 1, b"GET /healthz HTTP/1.1\r\nHost: vigil\r\n\r\n"
                                       b"GET /healthz HTTP/1.1\r\n")
    try:
        _drip(clients, lambda n: f"X-Drip-{n}: x\r\n".encode(),
              until=time.monotonic() + DEADLINE + MARGIN + WAIT)
    finally:
        _close(clients)
    (seconds,) = _figures("second head on a keep-alive connection", clients)
    assert DEADLINE * 0.9 <= seconds <= DEADLINE + MARGIN
    first, _, rest = clients[0].answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408 " in rest


# --- slow request bodies --------------------------------------------------------------------


def test_body_dripped_byte_by_byte_is_cut_at_the_request_timeout(
        exporter: Callable[..., LiveExporter]) -> None:
    """A webhook body sent one byte every 0.2 s (each gap far under request_timeout) gets 408
    and is closed request_timeout after its head: the deadline is for the whole body."""
    live = exporter(request_timeout=DEADLINE)
    head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(FIRING)}\r\n\r\n").encode()
    clients = _open(_address(live), 1, head)
    try:
        _drip(clients, lambda n: FIRING[n:n + 1],
              until=time.monotonic() + DEADLINE + MARGIN + WAIT)
    finally:
        _close(clients)
    (seconds,) = _figures("body dripped 1 byte / 0.2 s", clients)
    assert DEADLINE * 0.9 <= seconds <= DEADLINE + MARGIN
    answer = clients[0].answer
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"request body not received within 1 s" in answer
    assert live.sample("vigil_webhook_requests_total", code="408") == 1
    assert live.delivered() == []


def test_body_the_app_never_reads_is_cut_too(exporter: Callable[..., LiveExporter]) -> None:
    """A GET carrying a dripped body is answered at once (the route ignores bodies); the
    connection, which would otherwise stay open draining it, is closed at request_timeout."""
    live = exporter(request_timeout=DEADLINE)
    head = b"GET /healthz HTTP/1.1\r\nHost: vigil\r\nContent-Length: 100000\r\n\r\n"
    clients = _open(_address(live), 1, head)
    try:
        _drip(clients, lambda n: b"x", until=time.monotonic() + DEADLINE + MARGIN + WAIT)
    finally:
        _close(clients)
    (seconds,) = _figures("unread body dripped 1 byte / 0.2 s", clients)
    assert DEADLINE * 0.9 <= seconds <= DEADLINE + MARGIN
    assert clients[0].answer.startswith(b"HTTP/1.1 200 ")
    assert live.sample(CLOSED, reason="body_timeout") == 1


def test_app_that_neither_reads_nor_answers_gets_408_from_the_server() -> None:
    """An app stuck before reading a dripped body: the server answers 408 itself once
    request_timeout and the app's grace have passed, and the app sees a disconnect."""
    seen: list[str] = []
    stuck: dict[str, Any] = {}  # the app's loop and the event it waits on

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        stuck["loop"], stuck["event"] = asyncio.get_running_loop(), asyncio.Event()
        await stuck["event"].wait()  # busy elsewhere, not reading the body
        seen.append((await receive())["type"])

    registry = CollectorRegistry()
    settings = ExporterSettings(request_timeout=0.5)
    with start_exporter(port=0, app=app, settings=settings, registry=registry) as handle:
        head = b"POST /x HTTP/1.1\r\nHost: vigil\r\nContent-Length: 1000\r\n\r\n"
        clients = _open((handle.host, handle.port), 1, head)
        try:
            _drip(clients, lambda n: b"x", until=time.monotonic() + WAIT)
        finally:
            if stuck:
                stuck["loop"].call_soon_threadsafe(stuck["event"].set)
            _close(clients)
        (seconds,) = _figures("body nobody reads, app stuck", clients)
        assert 0.5 + APP_GRACE - 0.1 <= seconds <= 0.5 + APP_GRACE + MARGIN
        assert clients[0].answer.startswith(b"HTTP/1.1 408 "), clients[0].answer
        assert b"request body not received within 0.5 s" in clients[0].answer
        assert settle(lambda: seen == ["http.disconnect"])
    assert registry.get_sample_value(CLOSED, {"reason": "body_timeout"}) == 1


# --- clients that never read their answer ---------------------------------------------------

ANSWER_MIB = 40  # above glibc's largest mmap threshold (32 MiB): a freed copy leaves the RSS
READERS = 5


class _LargeExposition:
    """A collector whose families add up to ``mib`` MiB of exposition text (long HELP lines)."""

    def __init__(self, mib: int = ANSWER_MIB) -> None:
        self.mib = mib
        self.help = "x" * ((1 << 20) - 64)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for i in range(self.mib):
            yield GaugeMetricFamily(f"big_{i}", self.help, value=i)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _rss(*, trim: bool = True) -> int:
    """This process's resident memory; with ``trim``, of what something still references.

    glibc keeps freed heap pages for reuse (rendering a 40 MiB exposition frees ~40 MiB of
    pieces); ``malloc_trim`` hands them back, so what stays resident is memory still held.
    """
    if trim:
        gc.collect()
        _LIBC.malloc_trim(0)
    rss: int = psutil.Process().memory_info().rss
    return rss


def test_answers_nobody_reads_are_dropped_after_the_write_timeout(
        exporter: Callable[..., LiveExporter]) -> None:
    """Five clients ask for a 40 MiB /metrics and never read: each connection is aborted after
    write_timeout, and the process no longer holds the answers (traced memory and RSS)."""
    registry = CollectorRegistry()
    registry.register(_LargeExposition())
    live = exporter(registry=registry, write_timeout=DEADLINE)
    answer_bytes = ANSWER_MIB << 20
    with httpx.Client(timeout=WAIT * 3) as client:  # warm-up: one answer read in full
        assert len(client.get(live.url + "/metrics").content) >= answer_bytes
    # What Python objects hold, exactly (tracemalloc), and what the kernel sees (RSS): glibc may
    # keep freed pages even after malloc_trim, so RSS is measured and shown, traced memory is
    # what decides.
    tracemalloc.start()
    readers = []
    try:
        baseline, traced_baseline = _rss(), tracemalloc.get_traced_memory()[0]
        for _ in range(READERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # what the kernel holds
            sock.connect(_address(live))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
            readers.append(sock)
        started = time.monotonic()
        peak = baseline

        def dropped() -> bool:
            nonlocal peak
            peak = max(peak, _rss(trim=False))
            return live.sample(CLOSED, reason="write_timeout") == READERS

        assert settle(dropped, WAIT * 3), \
            f"{live.sample(CLOSED, reason='write_timeout')} of the unread answers dropped"
        aborted = time.monotonic() - started
        traced_peak = tracemalloc.get_traced_memory()[1] - traced_baseline
        traced = traced_baseline

        def released() -> bool:
            nonlocal traced
            traced = tracemalloc.get_traced_memory()[0]
            return traced - traced_baseline < answer_bytes // 4

        # Without the write timeout every unread answer stays (+226 MiB of RSS measured).
        assert settle(released, WAIT), f"still holding +{(traced - traced_baseline) >> 20} MiB"
        after = _rss()
    finally:
        tracemalloc.stop()
        for sock in readers:
            sock.close()
    print(f"\n{READERS} unread {ANSWER_MIB} MiB answers, all aborted {aborted:.2f} s after the "
          f"requests: traced memory peak +{traced_peak >> 20} MiB, after "
          f"+{(traced - traced_baseline) >> 20} MiB; RSS baseline {baseline >> 20} MiB, peak "
          f"+{(peak - baseline) >> 20} MiB, after +{(after - baseline) >> 20} MiB")
    assert traced_peak >= 2 * answer_bytes  # the answers were held while unread
    assert settle(lambda: live.sample("vigil_exporter_connections") == 0)
    assert live.healthy()


def test_a_slow_but_steady_reader_is_not_cut(exporter: Callable[..., LiveExporter]) -> None:
    """The write timeout is for no progress, not for the whole answer: a client taking at most
    64 KiB every 20 ms of an 8 MiB answer reads it all though that takes over write_timeout."""
    registry = CollectorRegistry()
    registry.register(_LargeExposition(8))
    live = exporter(registry=registry, write_timeout=DEADLINE)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(_address(live))
    started = time.monotonic()
    received = 0
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n")
        sock.settimeout(WAIT)
        stop = threading.Event()
        while chunk := sock.recv(64 << 10):
            received += len(chunk)
            stop.wait(0.02)  # the client's own pace
    finally:
        sock.close()
    seconds = time.monotonic() - started
    print(f"\nslow reader: {received >> 20} MiB in {seconds:.2f} s with write_timeout="
          f"{DEADLINE} s")
    assert received >= 8 << 20
    assert seconds > 2 * DEADLINE
    assert live.sample(CLOSED, reason="write_timeout") == 0


# --- the connection cap ---------------------------------------------------------------------


def _fds() -> int:
    return psutil.Process().num_fds()


def test_idle_connections_past_the_cap_are_closed_and_healthz_gets_through(
        exporter: Callable[..., LiveExporter]) -> None:
    """With max_connections=50, 200 idle connections leave the server holding at most 50 (the
    oldest idle ones are closed at once as new ones come), fds stay bounded, and a fresh
    client's /healthz is answered."""
    cap, count = 50, 200
    live = exporter(max_connections=cap, head_timeout=60.0)  # the cap, not a timeout, acts
    before = _fds()
    started = time.monotonic()
    clients = _open(_address(live), count)
    try:
        def closed() -> list[_Client]:
            _drip([c for c in clients if c.cut is None], lambda n: b"",
                  until=time.monotonic() + 0.05)
            return [c for c in clients if c.cut is not None]

        assert settle(lambda: len(closed()) >= count - cap, WAIT)
        seconds = time.monotonic() - started
        for client in closed():
            client.sock.close()
        still_open = [c for c in clients if c.cut is None]
        server_side = _fds() - before - len(still_open)
        print(f"\n{count} idle connections, max_connections={cap}: {count - len(still_open)} "
              f"closed by the server {seconds:.2f} s after the first opened; server-side fds "
              f"{server_side}; connections {live.sample('vigil_exporter_connections'):.0f}")
        assert len(still_open) <= cap
        assert server_side <= cap + 5
        assert live.sample("vigil_exporter_connections") <= cap
        latency = _health_latency(live)
        print(f"/healthz answered in {latency * 1000:.1f} ms with the cap reached")
        assert live.sample(CLOSED, reason="evicted") >= count - cap
    finally:
        _close(clients)


def test_new_connection_gets_503_when_every_slot_holds_a_request(
        exporter: Callable[..., LiveExporter]) -> None:
    """When all max_connections connections are inside a request (their bodies pending), a new
    connection is answered 503 and closed at once, and served again once they end."""
    cap = 20
    live = exporter(max_connections=cap, request_timeout=60.0)
    head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(FIRING)}\r\n\r\n").encode()
    busy = _open(_address(live), cap, head)
    try:
        # The server has read every head once it holds each connection in a request.
        assert settle(lambda: live.sample("vigil_exporter_connections") == cap)
        extra = _open(_address(live), 1, b"GET /healthz HTTP/1.1\r\nHost: vigil\r\n\r\n")
        try:
            _drip(extra, lambda n: b"", until=time.monotonic() + WAIT)
        finally:
            _close(extra)
        (seconds,) = _figures("connection past a full cap", extra)
        assert seconds < 0.5
        assert extra[0].answer.startswith(b"HTTP/1.1 503 "), extra[0].answer[:300]
        assert b"Retry-After" in extra[0].answer or b"retry-after" in extra[0].answer
        assert live.sample(CLOSED, reason="over_capacity") == 1
    finally:
        _close(busy)
    assert settle(live.healthy)


# --- accept() out of file descriptors -------------------------------------------------------

_CHILD = textwrap.dedent("""
    import json, os, resource, sys, tempfile
    from prometheus_client import CollectorRegistry
    import vigil
    from vigil.config import ExporterSettings
    from vigil.monitoring.alerts import AlertManager
    from vigil.monitoring.metrics import PerformanceMonitor
    from vigil.monitoring.tracing import ExecutionTracer
    from vigil_exporter import transport
    from vigil_exporter.app import create_app
    from vigil_exporter.server import start_exporter

    transport.LOG_INTERVAL = float(sys.argv[1])
    vigil.configure_logging("INFO")  # as `vigil serve` does: every log line is JSON on stdout
    registry = CollectorRegistry()
    settings = ExporterSettings(state_dir=tempfile.mkdtemp(), head_timeout=60.0)
    app = create_app(settings=settings, registry=registry,
                     alert_manager=AlertManager(registry=registry),
                     tracer=ExecutionTracer(registry=registry),
                     monitor=PerformanceMonitor(registry=registry))
    handle = start_exporter(port=0, app=app, settings=settings)
    # Something else took the descriptors: a few are left for connections.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    print(json.dumps({"port": handle.port}), flush=True)
    sys.stdin.readline()
    handle.stop()
""")


def _accept_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "accept" in line.lower()]


def test_accept_errors_are_logged_at_most_once_per_interval_and_counted() -> None:
    """In a child whose fd limit is reached, accept() fails thousands of times; the log gets
    at most one line per interval (1 s here) reporting how many, and the metric counts each."""
    interval = 1.0
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(interval)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    lines: list[str] = []
    stdout, stdin = child.stdout, child.stdin
    assert stdout is not None
    assert stdin is not None
    try:
        port = json.loads(stdout.readline())["port"]
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                                  daemon=True)
        reader.start()
        clients = _open(("127.0.0.1", port), 40)  # the rest wait in the listen queue
        started = time.monotonic()
        try:
            assert settle(lambda: len(_accept_lines(lines)) >= 3, WAIT * 2), lines[-5:]
            storm = time.monotonic() - started
        finally:
            _close(clients)
        logged = list(_accept_lines(lines))

        def counted() -> float:
            with httpx.Client(timeout=WAIT) as client:
                text = client.get(f"http://127.0.0.1:{port}/metrics").text
            return sum(s.value for f in text_string_to_metric_families(text)
                       for s in f.samples if s.name == "vigil_exporter_accept_errors_total")

        total = 0.0

        def answered() -> bool:
            nonlocal total
            try:
                total = counted()
            except httpx.HTTPError:
                return False
            return True

        assert settle(answered, WAIT)
        # The last window's summary line comes at its end: every error is then accounted for.
        def reported() -> float:
            return float(sum(json.loads(line)["metadata"]["errors"]
                             for line in _accept_lines(lines) if line.startswith("{")))

        assert settle(lambda: reported() == counted(), interval + WAIT)
        total = counted()
    finally:
        stdin.write("stop\n")
        stdin.flush()
        child.wait(WAIT * 2)
    print(f"\naccept() errors: {total:.0f} counted, {len(logged)} lines logged in "
          f"{storm:.2f} s of fd exhaustion (interval {interval} s); "
          f"{len(lines)} output lines in all")
    assert total > 10 * len(logged)
    assert len(logged) <= storm / interval + 2
    assert not [line for line in lines if "Traceback" in line or "out of system resource" in
                line]
