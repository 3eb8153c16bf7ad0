"""The OTLP receiver test helper, proved against OpenTelemetry's own SDK and OTLP/HTTP exporter."""

from __future__ import annotations

import gzip
import http.client
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, decode_request, free_port

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    """A running receiver, stopped after the test."""
    with OtlpReceiver() as receiver:
        yield receiver


def _emit(exporter: OTLPSpanExporter) -> None:
    """A parent and a child span (attributes, an event, ERROR status) through a real provider."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rx-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    child_attributes: dict[str, AttributeValue] = {
        "text": "hello", "count": 3, "flag": True, "ratio": 0.25, "tags": ["a", "b"],
    }
    try:
        with (tracer.start_as_current_span("parent", attributes={"role": "outer"}),
              tracer.start_as_current_span("child", kind=SpanKind.SERVER,
                                           attributes=child_attributes) as child):
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    finally:
        provider.shutdown()


def _readable_spans(count: int = 1) -> Sequence[ReadableSpan]:
    """Finished SDK spans (ReadableSpan), for calling an exporter's export() directly."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "rx-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}"):
            pass
    provider.shutdown()
    return memory.get_finished_spans()


def _request(rx: OtlpReceiver, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    """One raw HTTP request to the receiver: (status, body, content type)."""
    connection = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        connection.close()


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in spans}


def test_sdk_spans_decode(rx: OtlpReceiver) -> None:
    """Spans from the real SDK and exporter arrive with ids, parentage, attributes and status."""
    _emit(OTLPSpanExporter(endpoint=rx.traces_url))

    spans = _by_name(rx.wait_for(2, timeout=5))
    assert set(spans) == {"parent", "child"}
    parent, child = spans["parent"], spans["child"]
    for span in (parent, child):
        assert TRACE_ID.match(span.trace_id)
        assert SPAN_ID.match(span.span_id)
        assert span.resource["service.name"] == "rx-test"
        assert span.scope == "t"
        assert 0 < span.start_ns <= span.end_ns
    assert child.trace_id == parent.trace_id
    assert child.parent_span_id == parent.span_id
    assert parent.parent_span_id == ""
    assert parent.kind == "SPAN_KIND_INTERNAL"
    assert child.kind == "SPAN_KIND_SERVER"
    assert parent.attributes == {"role": "outer"}
    assert child.attributes == {
        "text": "hello", "count": 3, "flag": True, "ratio": 0.25, "tags": ["a", "b"],
    }
    assert type(child.attributes["count"]) is int
    assert type(child.attributes["flag"]) is bool
    assert child.events == (("retry", {"attempt": 2}),)
    assert (child.status_code, child.status_message) == ("STATUS_CODE_ERROR", "boom")
    assert (parent.status_code, parent.status_message) == ("STATUS_CODE_UNSET", "")
    # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE, without IS_REMOTE: the SDK's encoder marks a local parent
    assert child.flags == 0x100
    assert child.trace_state == ""
    assert rx.requests == 2  # SimpleSpanProcessor: one export request per span
    assert rx.received_headers[0]["content-type"] == "application/x-protobuf"


def test_endpoint_env_var(rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """rx.endpoint works as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
    assert rx.traces_url == rx.endpoint + "/v1/traces"

    assert OTLPSpanExporter().export(_readable_spans()) is SpanExportResult.SUCCESS
    assert [span.name for span in rx.wait_for(1, timeout=5)] == ["span-0"]


def test_accepted_export_answers_empty_response(rx: OtlpReceiver) -> None:
    """An accepted export gets 200 and an empty serialized ExportTraceServiceResponse."""
    body = encode_spans(_readable_spans(2)).SerializeToString()
    status, answer, content_type = _request(rx, "POST", "/v1/traces", body, PROTOBUF)

    assert (status, content_type) == (200, "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(answer) == ExportTraceServiceResponse()
    assert [span.name for span in rx.spans] == ["span-0", "span-1"]
    assert rx.requests == 1


def test_status_mode_records_nothing() -> None:
    """status=503 answers every export 503, records nothing, and the exporter reports FAILURE."""
    with OtlpReceiver(status=503) as rx:
        # 503 is retryable; the first backoff (1 s +-20 % jitter) exceeds a 0.5 s budget, so the
        # exporter gives up after exactly one attempt instead of sleeping up to a second.
        exporter = OTLPSpanExporter(endpoint=rx.traces_url, timeout=0.5)
        started = time.monotonic()
        assert exporter.export(_readable_spans()) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 1
        exporter.shutdown()  # type: ignore[no-untyped-call]

        assert len(rx.received_headers) == 1  # it did reach the receiver, once
        assert rx.spans == []
        assert rx.requests == 0
        status, body, _ = _request(rx, "POST", "/v1/traces", b"", PROTOBUF)
        assert (status, body) == (503, b"receiver answers 503")


def test_status_attribute_switches_mode(rx: OtlpReceiver) -> None:
    """Setting rx.status after start applies to later requests, and setting it back recovers."""
    body = encode_spans(_readable_spans()).SerializeToString()
    rx.status = 500
    assert _request(rx, "POST", "/v1/traces", body, PROTOBUF)[0] == 500
    rx.status = 200
    assert _request(rx, "POST", "/v1/traces", body, PROTOBUF)[0] == 200
    assert rx.requests == 1
    assert len(rx.spans) == 1


def test_hold_blocks_the_answer_until_released() -> None:
    """With hold set, a request is not answered nor recorded until the Event is set."""
    hold = threading.Event()
    with OtlpReceiver(hold=hold) as rx:
        exporter = OTLPSpanExporter(endpoint=rx.traces_url, timeout=5)
        results: list[SpanExportResult] = []
        thread = threading.Thread(target=lambda: results.append(
            exporter.export(_readable_spans())), daemon=True)
        thread.start()

        rx.wait_for_arrivals(1, timeout=5)  # the request is in the handler, now held
        thread.join(timeout=0.2)
        assert thread.is_alive()
        assert rx.requests == 0
        assert rx.spans == []

        hold.set()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert results == [SpanExportResult.SUCCESS]
        assert [span.name for span in rx.wait_for(1, timeout=5)] == ["span-0"]
        assert rx.requests == 1
        exporter.shutdown()  # type: ignore[no-untyped-call]


def test_stop_releases_a_held_request() -> None:
    """stop() does not hang while a request is held: it sets the hold, then shuts down."""
    rx = OtlpReceiver(hold=threading.Event()).start()
    results: list[tuple[int, bytes, str]] = []
    thread = threading.Thread(target=lambda: results.append(
        _request(rx, "POST", "/v1/traces", b"", PROTOBUF)), daemon=True)
    thread.start()
    rx.wait_for_arrivals(1, timeout=5)

    started = time.monotonic()
    rx.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert results[0][0] == 200  # the held request was answered, not dropped


def test_wrong_path_and_method_are_refused(rx: OtlpReceiver) -> None:
    """A wrong path gets 404, a GET of /v1/traces 405, and the server keeps serving after."""
    body = encode_spans(_readable_spans()).SerializeToString()
    assert _request(rx, "POST", "/v1/logs", body, PROTOBUF)[0] == 404
    assert _request(rx, "GET", "/")[0] == 404
    status, text, content_type = _request(rx, "GET", "/v1/traces")
    assert status == 405
    assert text == b"/v1/traces takes POST"
    assert content_type.startswith("text/plain")
    assert rx.requests == 0

    assert OTLPSpanExporter(endpoint=rx.traces_url).export(_readable_spans()) \
        is SpanExportResult.SUCCESS
    assert len(rx.wait_for(1, timeout=5)) == 1


def test_wrong_content_type_is_415(rx: OtlpReceiver) -> None:
    """OTLP/JSON or a missing content type gets 415 and records nothing."""
    body = encode_spans(_readable_spans()).SerializeToString()
    assert _request(rx, "POST", "/v1/traces", b"{}", {"Content-Type": "application/json"})[0] \
        == 415
    assert _request(rx, "POST", "/v1/traces", body)[0] == 415
    headers = {**PROTOBUF, "Content-Encoding": "br"}
    assert _request(rx, "POST", "/v1/traces", body, headers)[0] == 415
    assert rx.spans == []


def test_garbage_body_is_400(rx: OtlpReceiver) -> None:
    """A body that is not an ExportTraceServiceRequest (or bad gzip) gets 400, nothing recorded."""
    status, text, _ = _request(rx, "POST", "/v1/traces", b"this is not protobuf", PROTOBUF)
    assert status == 400
    assert b"ExportTraceServiceRequest" in text
    gzipped = {**PROTOBUF, "Content-Encoding": "gzip"}
    assert _request(rx, "POST", "/v1/traces", b"not gzip", gzipped)[0] == 400
    assert rx.spans == []
    assert rx.requests == 0


def test_gzip_export_decodes(rx: OtlpReceiver) -> None:
    """A gzip-compressed export (and custom headers) from the real exporter is decoded."""
    exporter = OTLPSpanExporter(endpoint=rx.traces_url, compression=Compression.Gzip,
                                headers={"x-tenant": "team-a"})
    assert exporter.export(_readable_spans(2)) is SpanExportResult.SUCCESS

    assert [span.name for span in rx.wait_for(2, timeout=5)] == ["span-0", "span-1"]
    headers = rx.received_headers[-1]
    assert headers["content-encoding"] == "gzip"
    assert headers["x-tenant"] == "team-a"
    exporter.shutdown()  # type: ignore[no-untyped-call]


def test_raw_gzip_and_deflate_bodies(rx: OtlpReceiver) -> None:
    """The receiver inflates gzip and deflate bodies itself (not only what the exporter sends)."""
    body = encode_spans(_readable_spans()).SerializeToString()
    gzipped = {**PROTOBUF, "Content-Encoding": "gzip"}
    assert _request(rx, "POST", "/v1/traces", gzip.compress(body), gzipped)[0] == 200
    exporter = OTLPSpanExporter(endpoint=rx.traces_url, compression=Compression.Deflate)
    assert exporter.export(_readable_spans()) is SpanExportResult.SUCCESS
    assert len(rx.wait_for(2, timeout=5)) == 2
    assert rx.received_headers[-1]["content-encoding"] == "deflate"


def test_any_value_kinds_decode() -> None:
    """AnyValue kinds the SDK never sends for spans (bytes, kvlist, nested, empty) decode too."""
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(16)), bytes(range(8)), "s"
    values = {
        "raw": AnyValue(bytes_value=b"\x00\x01"),
        "map": AnyValue(kvlist_value=KeyValueList(values=[
            KeyValue(key="n", value=AnyValue(int_value=-1)),
            KeyValue(key="inner", value=AnyValue(array_value=ArrayValue(values=[
                AnyValue(double_value=1.5), AnyValue(bool_value=False)]))),
        ])),
        "empty": AnyValue(),
    }
    for key, value in values.items():
        span.attributes.add(key=key, value=value)

    [decoded] = decode_request(request.SerializeToString())
    assert decoded.attributes == {"raw": b"\x00\x01", "map": {"n": -1, "inner": [1.5, False]},
                                  "empty": None}
    assert (decoded.trace_id, decoded.span_id) == (bytes(range(16)).hex(), bytes(range(8)).hex())
    assert (decoded.kind, decoded.status_code, decoded.scope) == (
        "SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET", "")


def test_wait_for_names_how_many_arrived(rx: OtlpReceiver) -> None:
    """wait_for raises AssertionError naming the count that arrived once its deadline passes."""
    assert OTLPSpanExporter(endpoint=rx.traces_url).export(_readable_spans()) \
        is SpanExportResult.SUCCESS
    started = time.monotonic()
    with pytest.raises(AssertionError, match="1 arrived"):
        rx.wait_for(2, timeout=0.1)
    assert time.monotonic() - started < 1


def test_spans_is_a_copy(rx: OtlpReceiver) -> None:
    """rx.spans and rx.received_headers hand out copies the caller cannot corrupt."""
    body = encode_spans(_readable_spans()).SerializeToString()
    assert _request(rx, "POST", "/v1/traces", body, PROTOBUF)[0] == 200
    rx.spans.clear()
    rx.received_headers.clear()
    rx.received_headers[0:0] = [{}]
    assert len(rx.spans) == 1
    assert len(rx.received_headers) == 1


def test_free_port_is_unused() -> None:
    """free_port returns a loopback port that refuses connections (nothing listens there)."""
    port = free_port()
    assert 0 < port < 65536
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
