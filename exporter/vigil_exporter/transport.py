"""Connection limits uvicorn does not have: deadlines, a write timeout, a cap, quiet accept errors.

uvicorn's h11 protocol closes an idle keep-alive connection, but a client that sends its request
head one header line every few seconds, or its body one byte at a time, keeps its connection
(and its file descriptor) for as long as it likes; an answer a client never reads stays in the
transport's buffer; connections are accepted until the process runs out of descriptors, and
then asyncio logs every failed ``accept()`` with a traceback, thousands of times a second.
:class:`ConnectionGuard` adds, per server:

- **a head deadline**: the request line and headers must be complete ``exporter.head_timeout``
  seconds after the connection opened, or after the previous answer ended on a keep-alive
  connection. Past it: ``408`` (JSON, ``Connection: close``) when some of the head came, nothing
  when no byte did (an idle connection), and the connection is closed.
- **a body deadline**: the body must be complete ``exporter.request_timeout`` seconds after its
  head. The app's :class:`~vigil_exporter.middleware.RequestLimitsMiddleware` answers 408 itself at
  that deadline when the route reads the body; this is the backstop for the rest: a body the
  route never read (the answer is sent, the connection would stay open draining it) is cut at
  the deadline, an app that neither reads nor answers gets :data:`APP_GRACE` seconds more, then
  a 408 from here.
- **a write timeout**: while part of an answer waits in the transport's buffer (above its
  high-water mark, so asyncio paused the protocol for writing; or the connection is to close
  once flushed), the client must take some of it every ``exporter.write_timeout`` seconds
  (progress counted on the transport's buffer plus the kernel's send queue); otherwise the
  connection is aborted, which frees the buffered answer at once (nginx's ``send_timeout``).
- **a connection cap**: at most ``exporter.max_connections`` connections, lowered at start to
  the open-file limit minus :data:`FD_HEADROOM` so that ``accept()`` never runs out of
  descriptors. A connection past the cap makes room by closing the connection that has waited
  longest for a request head (idle keep-alive connections and slow heads: no request is lost);
  when every connection is inside a request, the new one gets ``503`` with ``Retry-After`` and
  is closed at once. So a health check gets through while hundreds of slow clients are open.
- **quiet accept errors**: ``accept()`` failing with EMFILE, ENFILE, ENOBUFS or ENOMEM is
  counted in ``vigil_exporter_accept_errors_total`` and logged at most once per
  :data:`LOG_INTERVAL` seconds with the number of failures (the event loop's exception handler;
  asyncio itself retries accepting a second later). Connections the limits close are counted in
  ``vigil_exporter_connections_closed_total{reason}`` and summed up in the log the same way.

The deadlines are total, measured on the event loop's clock from the moment each phase starts;
data arriving does not extend them. Use :func:`vigil_exporter.server.start_exporter` or
``vigil serve``: both build the uvicorn server through :class:`GuardedServer`.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import resource
import socket
import sys
import termios
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import h11
import uvicorn
from prometheus_client import CollectorRegistry
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from vigil.config import ExporterSettings
from vigil.monitoring.instruments import counter, gauge
from vigil.monitoring.logs import StructuredLogger

__all__ = [
    "ACCEPT_BATCH",
    "APP_GRACE",
    "CLOSE_REASONS",
    "FD_HEADROOM",
    "LISTEN_QUEUE",
    "LOG_INTERVAL",
    "ConnectionGuard",
    "GuardedH11Protocol",
    "GuardedServer",
    "connection_cap",
]

LOG_INTERVAL = 10.0  # seconds between two log lines about accept errors or closed connections
# Descriptors kept free below the open-file limit: two accept batches, and the process's own
# (store, log files, pipes, the event loop's: 10 to 30 measured).
FD_HEADROOM = 128
APP_GRACE = 1.0  # seconds an app has past the body deadline to answer its own 408
# uvicorn's ``backlog`` is both the listen() queue and how many accept() calls asyncio makes per
# loop turn, before any of the new connections can be looked at (and the cap applied): so up to
# two batches of descriptors (one accepted, one evicted and closing) come on top of the cap,
# which FD_HEADROOM must cover. Out of descriptors, each call of a batch fails and schedules its
# own retry a second later: with uvicorn's 2048 the loop spins (~16,000 failures a second
# measured, ~100 with 32). The server is given ACCEPT_BATCH, then listens with LISTEN_QUEUE
# again, so a burst of connections still queues in the kernel instead of having its SYNs
# dropped.
ACCEPT_BATCH = 32
LISTEN_QUEUE = 2048
RETRY_AFTER_SECONDS = 5  # what a 503 for a full server asks for
CLOSE_REASONS = ("head_timeout", "body_timeout", "write_timeout", "evicted", "over_capacity")
_ACCEPT_ERRORS = {errno.EMFILE: "EMFILE", errno.ENFILE: "ENFILE", errno.ENOBUFS: "ENOBUFS",
                  errno.ENOMEM: "ENOMEM"}
_ACCEPT_MESSAGE = "socket.accept() out of system resource"  # asyncio's, selector_events.py
_HEAD, _BODY = "head", "body"
# ioctl(SIOCOUTQ), Linux's name TIOCOUTQ: bytes in a socket's send queue the peer has not
# acknowledged.
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


def connection_cap(configured: int) -> int:
    """``configured``, lowered to the soft open-file limit minus :data:`FD_HEADROOM`.

    A limit too small for that headroom leaves half of it to connections.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    room = soft - FD_HEADROOM if soft > 2 * FD_HEADROOM else soft // 2
    return max(1, min(configured, room))


def _is_accept_retry(context: Mapping[str, Any]) -> bool:
    """Whether an exception context is one of asyncio's accept() retries (``_start_serving``)."""
    callback = getattr(context.get("handle"), "_callback", None)
    return getattr(callback, "__name__", "") == "_start_serving"


def _answer(status: int, reason: str, message: str,
            headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer in the app's error shape, ending the connection."""
    body = json.dumps({"error": message, "detail": []}).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
             f"content-length: {len(body)}", "connection: close",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Summary:
    """Log lines that could come thousands a second, written at most once per LOG_INTERVAL.

    The first event is logged at once; the ones after it are counted and logged together at the
    end of the interval, which starts a new interval while events keep coming.
    """

    def __init__(self, emit: Callable[[Counter[str]], None]) -> None:
        self._emit = emit
        self._pending: Counter[str] = Counter()
        self._window: asyncio.TimerHandle | None = None

    def note(self, loop: asyncio.AbstractEventLoop, kind: str) -> None:
        if self._window is not None:
            self._pending[kind] += 1
            return
        self._emit(Counter({kind: 1}))
        self._window = loop.call_later(LOG_INTERVAL, self._end_window, loop)

    def _end_window(self, loop: asyncio.AbstractEventLoop) -> None:
        self._window = None
        if self._pending:
            self.flush()
            self._window = loop.call_later(LOG_INTERVAL, self._end_window, loop)

    def flush(self) -> None:
        """Log what is counted and not yet logged (the end of an interval, or a stop)."""
        pending, self._pending = self._pending, Counter()
        if pending:
            self._emit(pending)

    def close(self) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        self.flush()


class ConnectionGuard:
    """One server's connection limits, metrics and log summaries (see the module docstring).

    Its :meth:`protocol_class` is what ``uvicorn.Config(http=...)`` takes; :class:`GuardedServer`
    installs its accept-error handler on the server's event loop. Everything but the metrics is
    used from that loop's thread only.
    """

    def __init__(self, settings: ExporterSettings, registry: CollectorRegistry, *,
                 logger: StructuredLogger | None = None) -> None:
        self.head_timeout = settings.head_timeout
        self.request_timeout = settings.request_timeout
        self.write_timeout = settings.write_timeout
        self.max_connections = connection_cap(settings.max_connections)
        self.logger = logger if logger is not None else \
            StructuredLogger("vigil.exporter", registry=registry)
        self.head_answer = _answer(408, "Request Timeout", "request head not received within "
                                   f"{self.head_timeout:g} s")
        # The same words as RequestLimitsMiddleware's 408.
        self.body_answer = _answer(408, "Request Timeout", "request body not received within "
                                   f"{self.request_timeout:g} s")
        self.busy_answer = _answer(503, "Service Unavailable", "too many open connections "
                                   f"(at most {self.max_connections}); retry later",
                                   {"retry-after": str(RETRY_AFTER_SECONDS)})
        self.open_connections = 0  # accepted and not yet lost (closing ones included)
        # Connections waiting for a request head, the longest waiting first: evicted first.
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self._open = gauge(registry, "vigil_exporter_connections",
                           "Open HTTP connections to the exporter.").metric
        gauge(registry, "vigil_exporter_max_connections",
              "The exporter's connection cap in force (exporter.max_connections, lowered to "
              "fit the open-file limit).").metric.set(
                  self.max_connections)
        self._closed = counter(registry, "vigil_exporter_connections_closed_total",
                               "Connections the exporter closed itself, by reason: head_timeout, "
                               "body_timeout, write_timeout, evicted, over_capacity.",
                               ["reason"])
        for reason in CLOSE_REASONS:
            self._closed.labels(reason)
        self._accept_errors = counter(registry, "vigil_exporter_accept_errors_total",
                                      "Failed accept() calls for lack of descriptors or memory "
                                      "(the connection waits in the listen queue).", ["error"])
        self._accept_errors.labels("EMFILE")
        self._accept_log = _Summary(self._log_accept_errors)
        self._close_log = _Summary(self._log_closed)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- wiring ------------------------------------------------------------------------------

    def protocol_class(self) -> type[GuardedH11Protocol]:
        """An h11 protocol class bound to this guard, for ``uvicorn.Config(http=...)``."""
        return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": self})

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle the accept errors of ``loop``; other exceptions go where they went before."""
        self._loop = loop
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if (context.get("message") == _ACCEPT_MESSAGE and isinstance(exc, OSError)
                    and exc.errno in _ACCEPT_ERRORS):
                self.accept_failed(loop, exc)
            elif isinstance(exc, ValueError | OSError) and _is_accept_retry(context):
                pass  # a retry asyncio scheduled after an accept error, run once the server
                # closed its socket (a stop during the errors): nothing is lost
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    def close(self) -> None:
        """Log the counts not logged yet (the server stopped)."""
        self._accept_log.close()
        self._close_log.close()

    # --- events ------------------------------------------------------------------------------

    def accept_failed(self, loop: asyncio.AbstractEventLoop, exc: OSError) -> None:
        name = _ACCEPT_ERRORS.get(exc.errno or 0, str(exc.errno))
        self._accept_errors.labels(name).inc()
        self._accept_log.note(loop, name)

    def connection_closed(self, loop: asyncio.AbstractEventLoop, reason: str) -> None:
        self._closed.labels(reason).inc()
        self._close_log.note(loop, reason)

    def opened(self) -> None:
        self.open_connections += 1
        self._open.inc()

    def lost(self) -> None:
        self.open_connections -= 1
        self._open.dec()

    def make_room(self) -> bool:
        """Close the connection waiting longest for a request head; False if there is none."""
        while self.waiting:
            victim, _ = self.waiting.popitem(last=False)
            if victim.evict():
                return True
        return False

    # --- log lines ---------------------------------------------------------------------------

    def _fd_limit(self) -> int | None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return None if soft == resource.RLIM_INFINITY else soft

    def _log_accept_errors(self, errors: Counter[str]) -> None:
        total = sum(errors.values())
        kinds = ", ".join(sorted(errors))
        self.logger.error(
            f"accept() failed {total} time{'s' if total != 1 else ''} ({kinds}): the process "
            "is out of file descriptors or memory; new connections wait in the listen queue "
            f"(logged at most once every {LOG_INTERVAL:g} s)",
            {"errors": total, "by_error": dict(errors), "open_connections": self.open_connections,
             "max_connections": self.max_connections, "fd_limit": self._fd_limit()},
            exc_info=False)

    def _log_closed(self, reasons: Counter[str]) -> None:
        total = sum(reasons.values())
        self.logger.warning(
            f"closed {total} connection{'s' if total != 1 else ''} at the exporter's limits "
            f"({', '.join(sorted(reasons))}; logged at most once every {LOG_INTERVAL:g} s)",
            {"connections": total, "by_reason": dict(reasons),
             "open_connections": self.open_connections, "max_connections": self.max_connections,
             "head_timeout": self.head_timeout, "request_timeout": self.request_timeout,
             "write_timeout": self.write_timeout})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines, write timeout and cap of its :attr:`guard`.

    The phase of a connection follows h11's view of the client: ``IDLE`` is waiting for a
    request head (the head deadline runs), ``SEND_BODY`` is inside a body (the body deadline
    runs), anything else needs no timer from here (the app is answering, or it is closing).
    """

    guard: ClassVar[ConnectionGuard]

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes the client had not taken at the last write check
        self._head_bytes = 0  # bytes of the next request head received so far
        self._grace_given = False
        self._ending = False  # closed by the guard: at most one reason counted

    # --- the connection's life ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        # Closing connections count until they are gone: one still flushing an answer holds
        # its descriptor. An evicted one goes within a loop turn.
        full = guard.open_connections >= guard.max_connections
        super().connection_made(transport)
        guard.opened()
        if full and not guard.make_room():
            self._end("over_capacity", guard.busy_answer)
            return
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._cancel_write_timer()
        self.guard.waiting.pop(self, None)
        self.guard.lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _HEAD:
            self._head_bytes += len(data)
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._follow()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_timer()
        if self.transport.is_closing():
            self._watch_writing()  # what is left must still be taken before it closes

    def evict(self) -> bool:
        """Close this connection (waiting for a head) to make room; False if already closing."""
        if self._ending or self.transport.is_closing():
            return False
        self._end("evicted", self.guard.busy_answer if self._head_bytes else b"")
        return True

    # --- phases and their deadlines ----------------------------------------------------------

    def _follow(self) -> None:
        """Start the deadline of the phase the connection is in now, if it changed."""
        if self._ending or self.transport.is_closing():
            phase = None
            self._watch_writing()  # closing once flushed: the client must take the rest
        elif self.conn.their_state is h11.IDLE:
            phase = _HEAD
        elif self.conn.their_state is h11.SEND_BODY:
            phase = _BODY
        else:
            phase = None
        if phase == self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if phase == _HEAD:
            self._head_bytes = len(self.conn.trailing_data[0])  # pipelined, not parsed yet
            self.guard.waiting[self] = None
            self._deadline = self.loop.call_later(self.guard.head_timeout, self._head_expired)
            return
        self.guard.waiting.pop(self, None)
        if phase == _BODY:
            self._grace_given = False
            self._deadline = self.loop.call_later(self.guard.request_timeout,
                                                  self._body_expired)

    def _head_expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            self._follow()
        else:
            self._end("head_timeout", self.guard.head_answer if self._head_bytes else b"")

    def _body_expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            self._follow()
            return
        cycle = self.cycle
        unanswered = cycle is not None and not cycle.response_started and not cycle.disconnected
        if unanswered and not self._grace_given:
            # The app's RequestLimitsMiddleware answers 408 at this deadline when the route
            # reads the body: let it, so the answer is counted and logged as the app's.
            self._grace_given = True
            self._deadline = self.loop.call_later(APP_GRACE, self._body_expired)
            return
        if unanswered:
            # As if the client went away: the app's receive() gets http.disconnect and what it
            # sends is dropped, so nothing follows the 408 written here.
            cycle.disconnected = True
            cycle.message_event.set()
        self._end("body_timeout", self.guard.body_answer if unanswered else b"")

    def _watch_writing(self) -> None:
        """Check every write_timeout seconds that the client takes some of what is unsent."""
        if self._write_timer is None and self.transport.get_write_buffer_size():
            self._unsent = self._unsent_bytes()
            self._write_timer = self.loop.call_later(self.guard.write_timeout,
                                                     self._check_writing)

    def _check_writing(self) -> None:
        self._write_timer = None
        if not self.transport.get_write_buffer_size():
            return  # all handed to the kernel: nothing of ours is held
        unsent = self._unsent_bytes()
        if unsent < self._unsent:  # the client took some: it has another write_timeout
            self._unsent = unsent
            self._write_timer = self.loop.call_later(self.guard.write_timeout,
                                                     self._check_writing)
            return
        self._count("write_timeout")
        self.transport.abort()  # drops the buffered answer; connection_lost follows

    def _unsent_bytes(self) -> int:
        """Bytes not yet taken by the client: the transport's buffer and the kernel's queue.

        The kernel's send queue (several MiB on loopback) drains while the transport's buffer
        waits for room in it, so the transport's alone would miss a client reading slowly.
        """
        unsent = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if _TIOCOUTQ is not None and sock is not None:
            try:
                queued = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
                unsent += int.from_bytes(queued, sys.byteorder, signed=True)
            except (OSError, ValueError):  # closed meanwhile, or not a TCP socket
                pass
        return unsent

    def _end(self, reason: str, answer: bytes) -> None:
        """Close the connection for ``reason`` once ``answer`` (if any) and what was unsent
        before it are flushed; a client that stops taking them is aborted (write timeout)."""
        self._count(reason)
        self._ending = True
        self._follow()  # no phase, no deadline, not waiting
        if answer:
            self.transport.write(answer)
        self.transport.close()
        self._watch_writing()

    def _count(self, reason: str) -> None:
        if not self._ending:
            self.guard.connection_closed(self.loop, reason)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None


class GuardedServer(uvicorn.Server):
    """uvicorn's server, with ``guard``'s accept-error handler on its event loop."""

    def __init__(self, config: Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.guard.install(asyncio.get_running_loop())
        await super().startup(sockets=sockets)
        for sock in sockets or ():
            sock.listen(LISTEN_QUEUE)  # uvicorn listened with its backlog (ACCEPT_BATCH)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets=sockets)
        finally:
            self.guard.close()
