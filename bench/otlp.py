"""Span export over OTLP/HTTP: vigil's ``SpanExport`` beside the SDK's ``BatchSpanProcessor``.

Both send with the same ``OTLPSpanExporter`` to one sink in this process (a loopback HTTP server
answering 200 to every export), so encoding and HTTP cost the same; what differs is what each
does per span on the traced code's path and in its export thread. A round is ``BATCH`` spans
timed on the traced path, then a ``force_flush`` timed on its own (the export thread's work for
those spans: conversion, encoding, the request); the figures are medians over rounds, per span.
The collector-down row points vigil at a port nobody listens on: once the queue is full, each
span is a counted drop.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.cases import MICRO, Result
from bench.harness import Budget

SAME_ATTRIBUTES = {"vigil.component": "Bench", "vigil.operation": "block"}
BATCH = 512  # spans per round: one OTLP request (the SDK's default max_export_batch_size)


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # an OTLP/HTTP receiver that keeps nothing
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Quiet:
    """The export's logger here: the collector-down row's failures are expected, not news."""

    def _drop(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        pass

    debug = info = warning = error = _drop


def _rounds(span: Callable[[], None], flush: Callable[[], object],
            rounds: int) -> tuple[float, float]:
    """Median seconds per span on the traced path, and per span in the flush after it."""
    traced, exported = [], []
    perf = time.perf_counter
    for _ in range(rounds):
        start = perf()
        for _ in range(BATCH):
            span()
        middle = perf()
        flush()
        traced.append((middle - start) / BATCH)
        exported.append((perf() - middle) / BATCH)
    return statistics.median(traced), statistics.median(exported)


def export_rows(budget: Budget) -> list[Result]:
    """``trace_context`` exported over OTLP, against the SDK's batch processor, and sharing
    OpenTelemetry's context, against vigil alone."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from prometheus_client import CollectorRegistry

    from bench.harness import measure, sync_runner
    from vigil.monitoring import context
    from vigil.monitoring.otlp import SpanExport
    from vigil.monitoring.tracing import ExecutionTracer, trace_context

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    rounds = 3 if budget.quick else 15
    # The collector-down row makes the exporter log each give-up; expected here, not news.
    exporter_log = logging.getLogger("opentelemetry.exporter")
    level = exporter_log.level
    exporter_log.setLevel(logging.CRITICAL)
    try:
        context.share_opentelemetry_context(False)
        off = ExecutionTracer(registry=CollectorRegistry())
        on = ExecutionTracer(registry=CollectorRegistry(), export=SpanExport(
            exporter=OTLPSpanExporter(endpoint=url), registry=CollectorRegistry(),
            logger=_Quiet(), schedule_delay=3600, max_batch_size=BATCH * 4))
        down = ExecutionTracer(registry=CollectorRegistry(), export=SpanExport(
            exporter=OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=1),
            registry=CollectorRegistry(), logger=_Quiet(), schedule_delay=3600,
            max_queue_size=BATCH))
        provider = TracerProvider(shutdown_on_exit=False)
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url),
                                       schedule_delay_millis=3_600_000,
                                       max_export_batch_size=BATCH * 4)
        provider.add_span_processor(processor)
        sdk = provider.get_tracer("bench").start_as_current_span

        def vigil_off() -> None:
            with trace_context("Bench", "block", tracer=off):
                pass

        def vigil_on() -> None:
            with trace_context("Bench", "block", tracer=on):
                pass

        def sdk_span() -> None:  # with the attributes vigil's spans carry: one payload size
            with sdk("Bench.block", attributes=SAME_ATTRIBUTES):
                pass

        vigil_traced, vigil_export = _rounds(vigil_on, lambda: on.force_flush(30), rounds)
        sdk_traced, sdk_export = _rounds(sdk_span, lambda: processor.force_flush(30000), rounds)
        baseline = _rounds(vigil_off, lambda: None, rounds)[0]
        for _ in range(BATCH * 2):  # fill the down collector's queue: from here spans drop
            with trace_context("Bench", "block", tracer=down):
                pass
        us = measure({
            "down": sync_runner("with tc('Bench', 'block', tracer=t):\n    pass",
                                {"tc": trace_context, "t": down}),
            "off": sync_runner("with tc('Bench', 'block', tracer=t):\n    pass",
                               {"tc": trace_context, "t": off}),
        }, budget)
        context.share_opentelemetry_context(True)
        shared = measure({
            "shared": sync_runner("with tc('Bench', 'block', tracer=t):\n    pass",
                                  {"tc": trace_context, "t": off}),
            "sdk": sync_runner("with span('block'):\n    pass",
                               {"span": TracerProvider(shutdown_on_exit=False)
                                .get_tracer("bench").start_as_current_span}),
        }, budget)
        processor.shutdown()  # type: ignore[no-untyped-call]
        for tracer in (on, down):
            if tracer.export is not None:
                tracer.export.shutdown(0)
    finally:
        exporter_log.setLevel(level)
        context.share_opentelemetry_context(True)
        server.shutdown()
        server.server_close()
    return [
        Result("`trace_context` span, exported over OTLP: traced code's share",
               vigil_traced * MICRO, "SDK span, BatchSpanProcessor + OTLPSpanExporter",
               sdk_traced * MICRO, "µs", 0.25),
        Result("export thread's work per span (convert, encode, send)", vigil_export * MICRO,
               "SDK BatchSpanProcessor + OTLPSpanExporter, same sink", sdk_export * MICRO, "µs"),
        Result("`trace_context` span, exported over OTLP: traced code's share",
               vigil_traced * MICRO, "`trace_context` span, export off", baseline * MICRO, "µs"),
        Result("`trace_context` span, collector down (queue full: counted drop)",
               us["down"] * MICRO, "`trace_context` span, export off", us["off"] * MICRO, "µs"),
        Result("`trace_context`, sharing OpenTelemetry's context", shared["shared"] * MICRO,
               "OpenTelemetry SDK span, no processor", shared["sdk"] * MICRO, "µs", 0.5),
    ]
