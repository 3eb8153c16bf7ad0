"""vigil.monitoring.otlp: vigil's spans over OTLP/HTTP, decoded by a receiver on loopback.

No OpenTelemetry Collector binary is installable here; :mod:`tests.otlp_receiver` stands in for
one and decodes each ``ExportTraceServiceRequest`` with ``opentelemetry-proto``. What sends is
the real ``OTLPSpanExporter`` (``vigil[otel]``), configured by the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from prometheus_client import CollectorRegistry
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, free_port

import vigil
from vigil.config import ConfigError, load_config
from vigil.monitoring.context import continue_trace, format_traceparent
from vigil.monitoring.otlp import SpanExport, export_wanted
from vigil.monitoring.sampling import Sampler
from vigil.monitoring.tracing import ExecutionTracer, trace_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class Warnings:
    """Records what the export logs."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any] | None]] = []

    def warning(self, message: str, *, metadata: dict[str, Any] | None = None) -> None:
        self.lines.append((message, metadata))


@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _rig(rx: OtlpReceiver, **kwargs: Any) -> tuple[ExecutionTracer, CollectorRegistry, Warnings]:
    """A tracer exporting to ``rx``, with its own registry and log capture."""
    registry = CollectorRegistry()
    logger = Warnings()
    exporter = kwargs.pop("exporter", None) or OTLPSpanExporter(endpoint=rx.traces_url, timeout=2)
    sampler = kwargs.pop("sampler", None)
    export = SpanExport(exporter=exporter, registry=registry, logger=logger,
                        schedule_delay=kwargs.pop("schedule_delay", 60.0), **kwargs)
    tracer = ExecutionTracer(registry=registry, export=export, sampler=sampler)
    return tracer, registry, logger


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in spans}


def test_spans_arrive_with_their_parents_ids_and_resource(rx: OtlpReceiver,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested trace arrives whole: one trace id, each parent's span id, the service name."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    tracer, registry, _ = _rig(rx)
    with trace_context("Orchestrator", "request", tracer=tracer) as root_id, \
            trace_context("Agent", "plan", tracer=tracer) as child_id, \
            trace_context("Tool", "search", tracer=tracer) as leaf_id:
        pass
    assert tracer.force_flush(10)
    spans = _by_name(rx.wait_for(3))
    root, child, leaf = spans["Orchestrator.request"], spans["Agent.plan"], spans["Tool.search"]
    entry = tracer.get_trace(root_id)
    assert entry is not None
    assert {root.trace_id, child.trace_id, leaf.trace_id} == {entry["trace_id"]}
    assert (root.span_id, child.span_id, leaf.span_id) == (root_id, child_id, leaf_id)
    assert (root.parent_span_id, child.parent_span_id, leaf.parent_span_id) == (
        "", root_id, child_id)
    assert root.resource["service.name"] == "checkout"
    assert root.scope == "vigil"
    assert root.kind == "SPAN_KIND_INTERNAL"
    assert root.start_ns <= child.start_ns <= leaf.start_ns <= leaf.end_ns <= root.end_ns
    assert registry.get_sample_value("vigil_traces_exported_total") == 3


def test_a_configured_service_name_wins_over_otel_service_name(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """monitoring.logging.service names the spans' service as it names the log lines'."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    vigil.configure(load_config(overrides={"monitoring": {"logging": {"service": "billing"}}}))
    tracer, _, _ = _rig(rx)
    with trace_context("C", "op", tracer=tracer):
        pass
    assert tracer.force_flush(10)
    assert rx.wait_for(1)[0].resource["service.name"] == "billing"


def test_metadata_becomes_redacted_attributes(rx: OtlpReceiver) -> None:
    """Metadata keys are attributes: scalars and lists as they are, secrets redacted, the
    rest as JSON text, lone surrogates replaced; vigil's own attributes are added."""

    class Opaque:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    tracer, _, _ = _rig(rx)
    metadata = {"user_id": "u-1", "count": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"],
                "api_token": "s3cret", "nested": {"password": "hunter2", "k": 1},
                "url": "https://bob:pw@example.com/x", "bad": "x\udcff", "none": None,
                "huge": 2**70, "mixed": [1, "a"], "opaque": Opaque()}
    with trace_context("C", "op", metadata, tracer=tracer):
        pass
    assert tracer.force_flush(10)
    attributes = rx.wait_for(1)[0].attributes
    assert attributes["user_id"] == "u-1"
    assert attributes["count"] == 3
    assert attributes["ratio"] == 0.5
    assert attributes["ok"] is True
    assert attributes["tags"] == ["a", "b"]
    assert attributes["api_token"] == "[REDACTED]"
    assert "hunter2" not in str(attributes["nested"])
    assert attributes["url"] == "https://[REDACTED]@example.com/x"
    assert attributes["bad"] == "x\ufffd"
    assert "none" not in attributes
    assert attributes["huge"] == str(2**70)
    assert attributes["mixed"] == '[1, "a"]'
    assert attributes["opaque"] == "<unprintable Opaque>"
    assert (attributes["vigil.component"], attributes["vigil.operation"]) == ("C", "op")
    assert "vigil.status" not in attributes  # success: the span status (unset) says it


def test_an_error_is_the_span_status_and_an_exception_event(rx: OtlpReceiver) -> None:
    """A body that raises exports status ERROR with the message and an exception event."""
    tracer, _, _ = _rig(rx)
    with pytest.raises(ValueError, match="missing"), trace_context("C", "fails", tracer=tracer):
        raise ValueError("missing \ud800 key")
    span_id = tracer.start_trace("C", "manual")
    tracer.end_trace(span_id, status="error")
    assert tracer.force_flush(10)
    spans = _by_name(rx.wait_for(2))
    fails = spans["C.fails"]
    assert fails.status_code == "STATUS_CODE_ERROR"
    assert "missing" in fails.status_message
    assert "\ufffd" in fails.status_message
    assert fails.events == (("exception", {"exception.type": "ValueError",
                                           "exception.message": fails.status_message}),)
    manual = spans["C.manual"]
    assert (manual.status_code, manual.status_message, manual.events) == (
        "STATUS_CODE_ERROR", "error", ())


def test_a_continued_trace_is_a_server_span_with_the_callers_parent_and_tracestate(
        rx: OtlpReceiver) -> None:
    """Under continue_trace the first entry is SERVER, its parent the caller's span, and the
    caller's tracestate goes along; a child inside is INTERNAL."""
    tracer, _, _ = _rig(rx)
    headers = {"traceparent": f"00-{TRACE}-{REMOTE_SPAN}-01", "tracestate": "congo=t61rcWkgMzE"}
    with continue_trace(headers), trace_context("Api", "handle", tracer=tracer), \
            trace_context("Db", "query", tracer=tracer):
        pass
    assert tracer.force_flush(10)
    spans = _by_name(rx.wait_for(2))
    handle, query = spans["Api.handle"], spans["Db.query"]
    assert (handle.trace_id, handle.parent_span_id, handle.kind) == (
        TRACE, REMOTE_SPAN, "SPAN_KIND_SERVER")
    assert (query.parent_span_id, query.kind) == (handle.span_id, "SPAN_KIND_INTERNAL")
    assert handle.trace_state == query.trace_state == "congo=t61rcWkgMzE"


def test_unsampled_spans_give_ids_but_are_not_exported(rx: OtlpReceiver) -> None:
    """A caller's 00 flag and an always_off sampler keep spans out of the export, while the
    entries still have ids and traceparent says 00."""
    tracer, registry, _ = _rig(rx)
    with continue_trace(f"00-{TRACE}-{REMOTE_SPAN}-00"), \
            trace_context("C", "unsampled", tracer=tracer) as unsampled:
        assert format_traceparent() == f"00-{TRACE}-{unsampled}-00"
    with trace_context("C", "sampled", tracer=tracer):
        pass
    off, off_registry, _ = _rig(rx, sampler=Sampler("always_off"))
    with trace_context("C", "off", tracer=off) as off_id:
        pass
    assert tracer.force_flush(10)
    assert off.force_flush(10)
    assert [span.name for span in rx.wait_for(1)] == ["C.sampled"]
    assert tracer.get_trace(unsampled) is not None
    assert off.get_trace(off_id) is not None
    assert registry.get_sample_value("vigil_traces_exported_total") == 1
    assert off_registry.get_sample_value("vigil_traces_exported_total") == 0


def test_a_full_batch_is_sent_without_waiting_for_the_schedule(rx: OtlpReceiver) -> None:
    """max_batch_size ended entries wake the thread: they arrive long before the 60 s delay."""
    tracer, _, _ = _rig(rx, max_batch_size=4)
    for _ in range(4):
        with trace_context("C", "op", tracer=tracer):
            pass
    assert len(rx.wait_for(4, timeout=10)) == 4  # no force_flush: the batch itself woke it
    assert rx.requests == 1


def test_a_slow_collector_costs_the_traced_code_only_counted_drops() -> None:
    """While the collector holds a request, spans keep ending: the queue fills to its cap,
    the rest are dropped and counted exactly, and everything queued goes once it answers."""
    hold = threading.Event()
    with OtlpReceiver(hold=hold) as rx:
        tracer, registry, _ = _rig(rx, max_queue_size=10, max_batch_size=5)
        for _ in range(5):  # one full batch: the thread takes it and waits on the collector
            with trace_context("C", "first", tracer=tracer):
                pass
        rx.wait_for_arrivals(1)
        for _ in range(100):
            with trace_context("C", "more", tracer=tracer):
                pass
        assert registry.get_sample_value(
            "vigil_traces_dropped_total", {"reason": "export_queue_full"}) == 90
        assert rx.requests == 0
        hold.set()
        assert tracer.force_flush(10)
        assert len(rx.wait_for(15)) == 15
        assert registry.get_sample_value("vigil_traces_exported_total") == 15


def test_a_collector_that_is_down_counts_failed_batches_and_logs_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection refused: the batch is dropped as export_failed after the exporter's own
    retries, the failure is logged once, and the next batch is tried again."""
    port = free_port()
    registry = CollectorRegistry()
    logger = Warnings()
    export = SpanExport(exporter=OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces",
                                                  timeout=0.3),
                        registry=registry, logger=logger, schedule_delay=60.0)
    tracer = ExecutionTracer(registry=registry, export=export)
    for _ in range(2):
        with trace_context("C", "op", tracer=tracer):
            pass
        assert tracer.force_flush(10)
    assert registry.get_sample_value(
        "vigil_traces_dropped_total", {"reason": "export_failed"}) == 2
    assert registry.get_sample_value("vigil_traces_exported_total") == 0
    failures = [m for m, _ in logger.lines if m.startswith("span export failed")]
    assert len(failures) == 1


def test_a_collector_answering_503_is_a_failed_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector refusing with 503 (after the exporter's retries) counts the batch failed."""
    with OtlpReceiver(status=503) as rx:
        tracer, registry, _ = _rig(
            rx, exporter=OTLPSpanExporter(endpoint=rx.traces_url,
                                          timeout=0.3))
        with trace_context("C", "op", tracer=tracer):
            pass
        assert tracer.force_flush(10)
        assert registry.get_sample_value(
            "vigil_traces_dropped_total", {"reason": "export_failed"}) == 1


def test_export_wanted_follows_the_otel_variables() -> None:
    """auto exports when an OTLP endpoint is set, unless the SDK is disabled or another
    exporter is named; otlp and none decide alone."""
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert export_wanted("auto", endpoint)
    assert export_wanted("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert not export_wanted("auto", {})
    assert not export_wanted("auto", {**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not export_wanted("auto", {**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    assert export_wanted("auto", {**endpoint, "OTEL_TRACES_EXPORTER": "console, otlp"})
    assert export_wanted("otlp", {})
    assert not export_wanted("none", endpoint)


def test_the_default_tracer_exports_when_the_endpoint_is_set(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, configure() turns export on for a tracer built
    from the config; monitoring.tracing.export: none turns it off again."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    tracer = ExecutionTracer(registry=CollectorRegistry())
    assert tracer.export is not None
    with trace_context("C", "from-env", tracer=tracer):
        pass
    assert tracer.force_flush(10)
    assert [span.name for span in rx.wait_for(1)] == ["C.from-env"]
    tracer.reconfigure(load_config(overrides={"monitoring": {"tracing": {"export": "none"}}}))
    assert tracer.export is None


def test_a_wrong_export_value_names_the_key_and_the_choices() -> None:
    """monitoring.tracing.export accepts auto, otlp, none; anything else is a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={"monitoring": {"tracing": {"export": "jaeger"}}})
    assert "export" in str(caught.value)
    assert "otlp" in str(caught.value)


def test_bad_batch_variables_warn_and_keep_the_sdk_defaults() -> None:
    """An OTEL_BSP_* value that is not a positive integer is named in a warning; the
    BatchSpanProcessor default stays, and the batch never exceeds the queue."""
    logger = Warnings()
    export = SpanExport(registry=CollectorRegistry(), logger=logger, environ={
        "OTEL_BSP_MAX_QUEUE_SIZE": "ten", "OTEL_BSP_SCHEDULE_DELAY": "-5",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"})
    assert (export.max_queue_size, export.schedule_delay, export.max_batch_size) == (
        2048, 5.0, 2048)
    messages = " ".join(m for m, _ in logger.lines)
    assert "OTEL_BSP_MAX_QUEUE_SIZE" in messages
    assert "'ten'" in messages
    assert "OTEL_BSP_SCHEDULE_DELAY" in messages


def _run_script(code: str, env: dict[str, str],
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [os.path.join(ROOT, "lib"), os.path.join(ROOT, "exporter"), ROOT])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_vigil_only_program_exports_its_spans_at_exit(rx: OtlpReceiver) -> None:
    """A program using only vigil's API, with OTEL_EXPORTER_OTLP_ENDPOINT set and a schedule
    delay longer than its life, delivers its spans when the interpreter exits."""
    result = _run_script("""
        import vigil
        with vigil.trace_context("Script", "main"):
            with vigil.trace_context("Script", "step"):
                pass
        print("done")
    """, {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "600000",
          "OTEL_SERVICE_NAME": "script"})
    assert result.returncode == 0, result.stderr
    spans = _by_name(rx.wait_for(2))
    assert spans["Script.step"].parent_span_id == spans["Script.main"].span_id
    assert spans["Script.main"].resource["service.name"] == "script"


def test_exit_waits_at_most_the_flush_timeout_for_a_hung_collector() -> None:
    """A collector that never answers holds the exit only exit_flush_timeout seconds, and
    the spans left behind are reported on the way out."""
    hold = threading.Event()
    with OtlpReceiver(hold=hold) as rx:
        result = _run_script("""
            import time, vigil
            with vigil.trace_context("Script", "main"):
                pass
            started = time.monotonic()
            import atexit
            atexit.register(lambda: print("exit took", round(time.monotonic() - started, 1)))
        """, {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "600000",
              "OTEL_EXPORTER_OTLP_TIMEOUT": "30",
              "VIGIL_MONITORING_TRACING_EXIT_FLUSH_TIMEOUT": "0.5"},
            timeout=30)
        hold.set()
    assert result.returncode == 0, result.stderr
    assert "spans not yet exported" in result.stdout + result.stderr
    took = float(result.stdout.split("exit took")[1].split()[0])
    assert took < 10  # 0.5 s of flush plus the thread's join; the exporter's 30 s never


@pytest.mark.parametrize("missing", ["opentelemetry.exporter", "opentelemetry"])
def test_without_the_extra_export_says_how_to_install_it_and_counts_drops(missing: str) -> None:
    """With the exporter package (or all of OpenTelemetry) missing, the first export logs the
    pip command once and each span is counted as a failed export; the program runs on."""
    result = _run_script("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.startswith('MISSING_'):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, Block())
        import vigil
        from vigil.monitoring.tracing import execution_tracer
        for _ in range(3):
            with vigil.trace_context("Script", "main"):
                pass
        print("flushed", execution_tracer.force_flush(10))
        print("failed", execution_tracer.registry.get_sample_value(
            "vigil_traces_dropped_total", {"reason": "export_failed"}))
    """.replace("'MISSING_'", repr(missing)),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_SCHEDULE_DELAY": "10"})
    assert result.returncode == 0, result.stderr
    assert "flushed True" in result.stdout
    assert "failed 3.0" in result.stdout
    assert result.stdout.count("pip install 'vigil[otel]'") == 1


def test_import_vigil_imports_no_opentelemetry() -> None:
    """Without any OTEL_* variable, importing vigil, tracing, logging and propagating import no
    OpenTelemetry and start no export thread, and all of it works with OpenTelemetry absent."""
    result = _run_script("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.startswith("opentelemetry"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, Block())
        import threading, vigil
        with vigil.trace_context("Script", "main") as span_id:
            vigil.StructuredLogger("script").info("inside")
            assert vigil.inject_traceparent({})["traceparent"].split("-")[2] == span_id
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")
                     or m == "vigil.monitoring._otel_bridge"))
        print(sorted(t.name for t in threading.enumerate() if "otlp" in t.name))
    """, {k: "" for k in os.environ if k.startswith("OTEL_")})
    assert result.returncode == 0, result.stderr
    line, modules, threads = result.stdout.splitlines()[:3]
    assert json.loads(line)["message"] == "inside"
    assert (modules, threads) == ("[]", "[]")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_exports_its_own_spans_only(rx: OtlpReceiver) -> None:
    """After a fork the child's queue is empty and it starts its own thread: the parent's
    queued entries are not sent twice, and the child's spans arrive."""
    tracer, _, _ = _rig(rx)
    with trace_context("Parent", "before-fork", tracer=tracer):
        pass
    pid = os.fork()
    if pid == 0:  # the child: export its own span, then leave without running atexit hooks
        code = 1
        try:
            with trace_context("Child", "after-fork", tracer=tracer):
                pass
            code = 0 if tracer.force_flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [span.name for span in rx.wait_for(1)] == ["Child.after-fork"]
    assert tracer.force_flush(10)
    assert sorted(span.name for span in rx.wait_for(2)) == ["Child.after-fork",
                                                            "Parent.before-fork"]


def test_the_readmes_traces_example_is_one_trace_at_the_collector(rx: OtlpReceiver) -> None:
    """README "Traces": the OpenTelemetry app using vigil, run as the README says, delivers
    one trace whose spans chain checkout > Payments.charge > card-api, and its log line
    carries that trace's id."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        readme = file.read()
    code = readme.split("```python\n# app.py:", 1)[1].split("```", 1)[0]
    result = _run_script("# app.py:" + code, {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
                                              "OTEL_SERVICE_NAME": "shop"})
    assert result.returncode == 0, result.stderr
    spans = _by_name(rx.wait_for(3))
    checkout, charge, card = spans["checkout"], spans["Payments.charge"], spans["card-api"]
    assert checkout.trace_id == charge.trace_id == card.trace_id
    assert charge.parent_span_id == checkout.span_id
    assert card.parent_span_id == charge.span_id
    assert {s.resource["service.name"] for s in spans.values()} == {"shop"}
    line = json.loads(next(out for out in result.stdout.splitlines() if "charging" in out))
    assert (line["trace_id"], line["span_id"]) == (checkout.trace_id, charge.span_id)


def test_a_scope_given_a_kind_exports_that_kind(rx: OtlpReceiver) -> None:
    """trace_context(..., kind="client") exports a CLIENT span and kind="server" a SERVER one,
    with no remote parent needed; a plain entry stays INTERNAL."""
    tracer, _, _ = _rig(rx)
    with trace_context("Api", "handle", tracer=tracer, kind="server"), \
            trace_context("Http", "call", tracer=tracer, kind="client"), \
            trace_context("Lib", "work", tracer=tracer):
        pass
    assert tracer.force_flush(10)
    kinds = {span.name: span.kind for span in rx.wait_for(3)}
    assert kinds == {"Api.handle": "SPAN_KIND_SERVER", "Http.call": "SPAN_KIND_CLIENT",
                     "Lib.work": "SPAN_KIND_INTERNAL"}
