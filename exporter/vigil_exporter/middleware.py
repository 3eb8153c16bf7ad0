"""The app's own ASGI middlewares: request limits with the last-resort 500, and the start of
the webhook's store when the app is mounted in another.

- :class:`RequestLimitsMiddleware` bounds every request: a body over ``max_body_bytes`` gets
  413 (by ``Content-Length`` before reading, by counting otherwise), a client whose body is
  not complete ``request_timeout`` seconds after its head gets 408 and its connection is
  closed; an exception out of the app before its response started is logged and answered 500.
- :class:`StartWhenMounted` starts the store and delivery loop on the first request when the
  app's lifespan never ran (Starlette does not pass a lifespan on to a mounted app).

Who may ask (Host, Origin, credentials) is :mod:`vigil_exporter.policy`'s middleware; the
connection-level limits (head and body deadlines, write timeout, connection cap) are
:mod:`vigil_exporter.transport`'s.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short

__all__ = ["RequestLimitsMiddleware", "RequestRejected", "StartWhenMounted"]


class RequestRejected(StarletteHTTPException):
    """Raised from ``receive``: a route that reads its body gets the right answer through the
    exception handlers, and the middleware answers it when it escapes them."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, headers={"Connection": "close"})


class RequestLimitsMiddleware:
    """ASGI middleware: body size limit, body receive timeout, and the last-resort 500.

    - ``Content-Length`` over ``max_body_bytes``: 413 before the app runs (malformed: 400).
    - Body bytes counted as the app reads them: past ``max_body_bytes``, 413.
    - The whole body must arrive within ``request_timeout`` seconds of the app's start (the end
      of the request head), however it is split: past that, 408 with ``Connection: close``, so
      a client that stops or trickles frees its connection. Once the body is complete,
      ``receive`` (waiting for a disconnect) is not timed.
    - An exception out of the app before its response started: logged, answered 500 JSON.

    ``on_response(scope, status)`` is called with the status of every response started.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, request_timeout: float,
                 logger: Logger | None = None,
                 on_response: Callable[[Scope, int], None] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.logger: Logger = (logger if logger is not None
                                          else StructuredLogger("vigil.exporter"))
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if self.on_response is not None:
                    self.on_response(scope, int(message["status"]))
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                raise RequestRejected(413, self._too_large())
            await self.app(scope, self._limited(receive), tracked_send)
        except RequestRejected as exc:
            self._log("warning", "request rejected", scope, status=exc.status_code,
                      error=exc.detail)
            if not started:
                await _error(exc.status_code, exc.detail, headers=exc.headers)(
                    scope, receive, tracked_send)
        except Exception as exc:
            self._log("error", "unhandled error while answering a request", scope,
                      exc_info=exc, error_type=type(exc).__name__)
            if not started:
                await _error(500, "internal server error")(scope, receive, tracked_send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        complete = False
        deadline = anyio.current_time() + self.request_timeout  # for the whole body

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                with anyio.fail_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestRejected(
                    408, f"request body not received within {self.request_timeout:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise RequestRejected(413, self._too_large())
                complete = not message.get("more_body", False)
            else:  # http.disconnect: nothing more will come
                complete = True
            return message

        return limited_receive

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"

    def _log(self, level: str, message: str, scope: Scope, *,
             exc_info: BaseException | None = None, **extra: Any) -> None:
        # Method and path only: headers (Authorization) and query strings are never logged.
        metadata = {"method": scope.get("method"), "path": scope.get("path"), **extra}
        try:
            if level == "error":
                self.logger.error(message, metadata, exc_info=exc_info)
            else:
                self.logger.warning(message, metadata)
        except Exception:  # pragma: no cover - a broken logger must not break the answer
            pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                raise RequestRejected(400, f"invalid Content-Length header {_short(text)}")
            return int(text)
    return None


class StartWhenMounted:
    """Starts the exporter's store and delivery loop on its first HTTP request when its own
    lifespan has not run (the app is mounted in another, whose lifespan Starlette does not
    pass on), and stops them at interpreter exit. A no-op when the lifespan ran."""

    def __init__(self, app: ASGIApp, *, state: Any, start: Callable[[], None],
                 stop: Callable[[], None], logger: StructuredLogger) -> None:
        self.app = app
        self._state = state  # the exporter app's: .lifespan says whether its lifespan ran
        self._start, self._stop = start, stop
        self._logger = logger
        self._checked = False
        self._lock = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._checked and scope["type"] == "http":
            async with self._lock:
                if not self._checked and not self._state.lifespan:
                    try:
                        await run_in_threadpool(self._start)
                    except Exception as exc:  # the store cannot open: 503s, and retry next time
                        self._logger.error("the exporter's alert store did not start (mounted "
                                           "app, started by its first request); retrying at "
                                           "the next request", exc_info=exc)
                    else:
                        atexit.register(self._stop)
                        self._checked = True
                else:
                    self._checked = True
        await self.app(scope, receive, send)
