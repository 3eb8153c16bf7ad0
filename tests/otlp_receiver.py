"""An in-process OTLP/HTTP trace receiver on 127.0.0.1, standing in for an OpenTelemetry Collector.

No collector binary can be installed on this machine, so tests that export spans point their
exporter here instead: ``OtlpReceiver`` serves ``POST /v1/traces`` on a free loopback port,
decodes each ``ExportTraceServiceRequest`` with ``opentelemetry-proto`` (the same generated
classes the SDK's exporter encodes with) and keeps the spans as plain ``ReceivedSpan`` values::

    with OtlpReceiver() as rx:
        exporter = OTLPSpanExporter(endpoint=rx.traces_url)
        ...  # (or set OTEL_EXPORTER_OTLP_ENDPOINT to rx.endpoint)
        spans = rx.wait_for(2)

It answers like a collector's OTLP/HTTP receiver: 200 with an empty serialized
``ExportTraceServiceResponse`` for an accepted export, 404 for another path, 405 for another
method, 415 for a content type other than ``application/x-protobuf`` (or an unknown
``Content-Encoding``; gzip and deflate are inflated), 400 for a body that does not decode.
Two fault modes imitate a collector in trouble: ``status`` answers every export with that code
(e.g. 503) without recording it, and ``hold`` makes every request wait on an Event before it
is answered (a slow collector). It prints nothing.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["OtlpReceiver", "ReceivedSpan", "decode_request", "free_port"]

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
HOLD_LIMIT = 60.0  # seconds a held request waits at most before it is answered anyway
_MAX_BODY = 64 * 1024 * 1024  # the SDK exporter's own default max_request_size


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it: ids in lowercase hex, enums by name."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # 16 hex digits, "" for a root span
    name: str
    kind: str  # e.g. "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER"
    attributes: dict[str, object]
    status_code: str  # e.g. "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"
    status_message: str
    events: tuple[tuple[str, dict[str, object]], ...]  # (name, attributes) in order
    resource: dict[str, object]  # the resource's attributes
    scope: str  # the instrumentation scope's name
    start_ns: int
    end_ns: int
    flags: int
    trace_state: str


class _BadRequest(Exception):
    """A request the receiver refuses; carries the status and the short text it answers with."""

    def __init__(self, status: HTTPStatus, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _decode_value(value: AnyValue) -> object:
    """An OTLP AnyValue as the Python value it stands for (None when it is empty)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return value.bytes_value
    if which == "array_value":
        return [_decode_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _decode_attributes(value.kvlist_value.values)
    # string_value_strindex points into a profiles string table; traces have none.
    raise ValueError(f"AnyValue {which} has no meaning in a trace export")


def _decode_attributes(pairs: Iterable[KeyValue]) -> dict[str, object]:
    """Repeated KeyValue as a dict (a repeated key keeps its last value)."""
    result: dict[str, object] = {}
    for pair in pairs:
        result[pair.key] = _decode_value(pair.value)
    return result


class _ProtoEnum(Protocol):
    def Name(self, number: int) -> str: ...


def _enum_name(enum: _ProtoEnum, number: int) -> str:
    """The name of an enum value, or its number as text when this proto does not know it."""
    try:
        return enum.Name(number)
    except ValueError:
        return str(number)


def decode_request(body: bytes) -> list[ReceivedSpan]:
    """Every span of a serialized ExportTraceServiceRequest. Raises ValueError if undecodable."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as error:  # google.protobuf.message.DecodeError
        raise ValueError(f"not an ExportTraceServiceRequest: {error}") from error
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=_enum_name(Span.SpanKind, span.kind),
                    attributes=_decode_attributes(span.attributes),
                    status_code=_enum_name(Status.StatusCode, span.status.code),
                    status_message=span.status.message,
                    events=tuple((event.name, _decode_attributes(event.attributes))
                                 for event in span.events),
                    resource=dict(resource),
                    scope=scope,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    flags=span.flags,
                    trace_state=span.trace_state,
                ))
    return spans


class _Handler(BaseHTTPRequestHandler):
    """Answers one request for the OtlpReceiver that owns the server."""

    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Print nothing: the receiver is quiet."""

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        receiver = self.server.receiver
        receiver._arrived({key.lower(): value for key, value in self.headers.items()})
        try:
            body = self._read_body()
        except _BadRequest as refused:
            self._hold(receiver)
            self._answer(refused.status, refused.text.encode(), "text/plain; charset=utf-8")
            return
        self._hold(receiver)
        try:
            spans = self._decode(body)
        except _BadRequest as refused:
            self._answer(refused.status, refused.text.encode(), "text/plain; charset=utf-8")
            return
        status = receiver.status
        if status != HTTPStatus.OK:
            self._answer(status, f"receiver answers {status}".encode(),
                         "text/plain; charset=utf-8")
            return
        receiver._record(spans)
        self._answer(HTTPStatus.OK, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("GET", "HEAD", "DELETE"):
                return b""
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if not 0 <= size <= _MAX_BODY:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        return self.rfile.read(size)

    def _decode(self, body: bytes) -> list[ReceivedSpan]:
        if self.path.split("?", 1)[0] != TRACES_PATH:
            raise _BadRequest(HTTPStatus.NOT_FOUND, f"not found: {self.path}")
        if self.command != "POST":
            raise _BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, f"{TRACES_PATH} takes POST")
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != PROTOBUF:
            raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                              f"unsupported content type {content_type!r}, send {PROTOBUF}")
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("identity", ""):
                raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                  f"unsupported content encoding {encoding!r}")
        except (OSError, EOFError, zlib.error) as error:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad {encoding} body: {error}") from error
        try:
            return decode_request(body)
        except ValueError as error:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(error)) from error

    def _hold(self, receiver: OtlpReceiver) -> None:
        hold = receiver.hold
        if hold is not None:
            hold.wait(HOLD_LIMIT)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "POST")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer (daemon handler threads) that knows its receiver."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when a client hangs up mid-answer (e.g. an exporter that timed out)."""


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on ``127.0.0.1`` (a free port), run in a daemon thread.

    Use it as a context manager; ``endpoint`` is the base URL (for
    ``OTEL_EXPORTER_OTLP_ENDPOINT``) and ``traces_url`` the signal URL (for
    ``OTLPSpanExporter(endpoint=...)``). ``status`` and ``hold`` may be set at construction
    or later, as attributes: they apply to requests that arrive afterwards.
    """

    def __init__(self, *, status: int = 200, hold: threading.Event | None = None) -> None:
        self.status = status
        self.hold = hold
        self._condition = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._requests = 0
        self._headers: list[dict[str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OtlpReceiver:
        """Bind a free loopback port and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("OtlpReceiver already started")
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"otlp-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release any held request, shut the server down and join its thread."""
        if self.hold is not None:
            self.hold.set()
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10.0)
        self._server = self._thread = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (once started)."""
        if self._server is None:
            raise RuntimeError("OtlpReceiver not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def endpoint(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``, as OTEL_EXPORTER_OTLP_ENDPOINT takes it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        """The trace signal's URL: ``endpoint + "/v1/traces"``."""
        return self.endpoint + TRACES_PATH

    @property
    def spans(self) -> list[ReceivedSpan]:
        """A copy of every span recorded so far, in arrival order."""
        with self._condition:
            return list(self._spans)

    @property
    def requests(self) -> int:
        """How many export requests were accepted (answered 200 and recorded)."""
        with self._condition:
            return self._requests

    @property
    def received_headers(self) -> list[dict[str, str]]:
        """The headers of every request that arrived (any path, method or outcome), in order;
        names lowercased. A request's headers are here before it is held or answered."""
        with self._condition:
            return [dict(headers) for headers in self._headers]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Wait until at least ``count`` spans were recorded and return them all.

        Raises AssertionError, saying how many arrived, if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._spans) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected at least {count} spans within {timeout}s, "
                        f"{len(self._spans)} arrived ({self._requests} export requests accepted)")
                self._condition.wait(remaining)
            return list(self._spans)

    def wait_for_arrivals(self, count: int, timeout: float = 10.0) -> list[dict[str, str]]:
        """Wait until at least ``count`` requests arrived (before any hold or answer); return
        their headers. Raises AssertionError, saying how many arrived, on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._headers) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected at least {count} requests within {timeout}s, "
                                         f"{len(self._headers)} arrived")
                self._condition.wait(remaining)
            return [dict(headers) for headers in self._headers]

    def _arrived(self, headers: dict[str, str]) -> None:
        with self._condition:
            self._headers.append(headers)
            self._condition.notify_all()

    def _record(self, spans: list[ReceivedSpan]) -> None:
        with self._condition:
            self._spans.extend(spans)
            self._requests += 1
            self._condition.notify_all()
