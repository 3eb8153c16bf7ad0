"""vigil_exporter.app in-process: every route, every error code, the webhook end to end."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import math
import shutil
import sqlite3
import subprocess
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import TypeAdapter

from vigil.config import ExporterSettings
from vigil.error_handling.breaker import CircuitBreaker
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.logs import StructuredLogger, get_recent_logs
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock
from vigil_exporter.app import (
    MAX_TREE_DEPTH,
    AlertInfo,
    BreakerInfo,
    LogEntry,
    MetricStats,
    RequestLimitsMiddleware,
    TraceEntry,
    TraceNode,
    create_app,
    json_safe,
    render_metrics,
)
from vigil_exporter.delivery import DeliveryLoop
from vigil_exporter.store.sqlite import SQLiteStore

with warnings.catch_warnings():
    # Starlette prefers the httpx2 fork for its TestClient; httpx is what is installed.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
FIRING = (FIXTURES / "firing.json").read_bytes()
RESOLVED = (FIXTURES / "resolved.json").read_bytes()
WEBHOOK = "/alertmanager/webhook"
WAIT = 5.0  # real seconds a test waits for worker threads before failing (never slept)
TOKEN = "t0ken-s3cret-value"
PASSWORD = "pa55-w0rd-s3cret"


@dataclass
class Harness:
    """One app on fresh collaborators, its client, and what its handler received."""

    registry: CollectorRegistry
    manager: AlertManager
    tracer: ExecutionTracer
    monitor: PerformanceMonitor
    client: TestClient
    received: list[Alert] = field(default_factory=list)

    @property
    def delivery(self) -> DeliveryLoop:
        delivery: DeliveryLoop = self.client.app.state.delivery  # type: ignore[attr-defined]
        return delivery

    def delivered(self) -> list[Alert]:
        assert self.delivery.flush(WAIT)
        return self.received

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def post(self, body: bytes = FIRING, **headers: str) -> Any:
        return self.client.post(WEBHOOK, content=body,
                                headers={"Content-Type": "application/json", **headers})


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    """Builds apps on a fresh registry, AlertManager (fake clock), tracer and monitor."""
    stack = contextlib.ExitStack()

    def build(*, lifespan: bool = True, store: Any = None,
              manager: AlertManager | None = None, tracer: Any = None,
              **settings: Any) -> Harness:
        registry = CollectorRegistry()
        clock = FakeClock()
        manager = manager or AlertManager(registry=registry, clock=clock)
        stack.callback(manager.close)
        tracer = tracer or ExecutionTracer(registry=registry, clock=clock)
        monitor = PerformanceMonitor(registry=registry)
        # TestClient sends "Host: testserver", which is no default name of the exporter.
        settings.setdefault("allowed_hosts", ("testserver",))
        app = create_app(settings=ExporterSettings(**settings), registry=registry,
                         alert_manager=manager, tracer=tracer, monitor=monitor,
                         store=store)
        client = TestClient(app)
        harness = Harness(registry, manager, tracer, monitor, client)
        manager.register_handler(harness.received.append)
        if lifespan:
            stack.enter_context(client)
        return harness

    with stack:
        yield build


def assert_error(response: Any, status: int, contains: str = "") -> dict[str, Any]:
    """The response has ``status`` and the JSON error shape, its line containing ``contains``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}
    assert isinstance(body["error"], str)
    assert "\n" not in body["error"]
    assert isinstance(body["detail"], list)
    assert contains in body["error"], body["error"]
    return body


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- health ------------------------------------------------------------------------------


def test_healthz_is_always_ok(make: Callable[..., Harness]) -> None:
    """/healthz answers 200 {"status": "ok"}, even before the lifespan ran."""
    assert make(lifespan=False).client.get("/healthz").json() == {"status": "ok"}
    assert make().client.get("/healthz").json() == {"status": "ok"}


def test_readyz_follows_the_delivery_loop(make: Callable[..., Harness]) -> None:
    """/readyz is 200 while the delivery loop runs and 503 with a reason after it stopped."""
    harness = make()
    assert harness.client.get("/readyz").json() == {"status": "ready"}
    harness.delivery.stop(WAIT)
    assert_error(harness.client.get("/readyz"), 503, "delivery loop is not running")


def test_lifespan_closes_only_the_store_it_opened(make: Callable[..., Harness],
                                                   tmp_path: Path) -> None:
    """A store passed in stays open after the app; one the app opened is closed with it."""
    own = SQLiteStore(tmp_path / "own", ExporterSettings())
    harness = make(lifespan=False, store=own)
    with harness.client:
        assert harness.client.get("/readyz").status_code == 200
        assert harness.client.app.state.store is own  # type: ignore[attr-defined]
    assert own.stats().pending_alerts == 0  # still usable
    own.close()

    made = make(lifespan=False, state_dir=str(tmp_path / "made"))
    with made.client:
        delivery = made.delivery
        assert delivery.alive
        assert (tmp_path / "made" / "alerts.sqlite3").exists()
    assert not delivery.alive
    with pytest.raises(sqlite3.ProgrammingError):
        made.client.app.state.store.stats()  # type: ignore[attr-defined]


# --- the JSON API ------------------------------------------------------------------------


def test_api_breakers_lists_live_breakers(make: Callable[..., Harness]) -> None:
    """/api/breakers shows name, state, failure_count, counts and seconds_until_probe."""
    harness = make()
    clock = FakeClock()
    name = f"test-breaker-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, name=name,
                             clock=clock, registry=harness.registry,
                             alert_manager=harness.manager)
    with contextlib.suppress(ValueError):
        breaker.call(_raise)
    clock.advance(10.0)
    response = harness.client.get("/api/breakers")
    assert response.status_code == 200
    entries = TypeAdapter(list[BreakerInfo]).validate_python(response.json())
    (mine,) = [e for e in entries if e.name == name]
    assert mine.state == "OPEN"
    assert mine.failure_count == 1
    assert mine.counts["failure"] == 1
    assert mine.seconds_until_probe == pytest.approx(20.0)


def _raise() -> None:
    raise ValueError("down")


def test_api_traces_lists_recent_entries_with_limit(make: Callable[..., Harness]) -> None:
    """/api/traces returns completed entries newest first, at most ``limit``."""
    harness = make()
    for i in range(3):
        with trace_context("Comp", f"op{i}", tracer=harness.tracer):
            pass
    response = harness.client.get("/api/traces", params={"limit": 2})
    entries = TypeAdapter(list[TraceEntry]).validate_python(response.json())
    assert [e.operation for e in entries] == ["op2", "op1"]
    assert len(harness.client.get("/api/traces").json()) == 3


@pytest.mark.parametrize(("path", "param", "value", "expected"), [
    ("/api/traces", "limit", "0", "query parameter limit: Input should be greater than or "
                                  'equal to 1 (got "0")'),
    ("/api/traces", "limit", "1001", "less than or equal to 1000"),
    ("/api/traces", "limit", "ten", "query parameter limit: Input should be a valid integer"),
    ("/api/logs", "limit", "-5", "query parameter limit"),
    ("/api/logs", "level", "LOUD", "query parameter level: Input should be one of DEBUG"),
    ("/api/alerts", "limit", "1e3", "query parameter limit"),
    ("/api/alerts", "status", "burning", "query parameter status: Input should be one of "
                                         "firing, resolved"),
    ("/api/alerts", "severity", "meh", "query parameter severity"),
])
def test_bad_query_values_are_422_with_one_readable_line(
        make: Callable[..., Harness], path: str, param: str, value: str, expected: str) -> None:
    """Bad limits and filters: 422, {"error": one line, "detail": FastAPI's list}."""
    body = assert_error(make().client.get(path, params={param: value}), 422, expected)
    assert body["detail"][0]["loc"] == ["query", param]


def test_api_trace_tree_nests_children(make: Callable[..., Harness]) -> None:
    """/api/traces/{id} returns the entry with its descendants under children."""
    harness = make()
    with trace_context("Agent", "run", tracer=harness.tracer) as root, \
            trace_context("Tool", "call", tracer=harness.tracer):
        pass
    tree = TraceNode.model_validate(harness.client.get(f"/api/traces/{root}").json())
    assert (tree.operation, [c.operation for c in tree.children]) == ("run", ["call"])
    assert not tree.truncated


def test_api_trace_unknown_id_is_404(make: Callable[..., Harness]) -> None:
    """An unknown trace id: 404 with a message naming it."""
    assert_error(make().client.get("/api/traces/0123456789abcdef"), 404,
                 'no trace entry with id "0123456789abcdef"')


def test_deep_trace_tree_is_cut_and_still_encodes(make: Callable[..., Harness]) -> None:
    """A tree deeper than MAX_TREE_DEPTH is cut there (truncated: true), not a 500."""
    harness = make()
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(trace_context("C", "level0", tracer=harness.tracer))
        for depth in range(1, MAX_TREE_DEPTH + 50):
            stack.enter_context(trace_context("C", f"level{depth}", tracer=harness.tracer))
    response = harness.client.get(f"/api/traces/{root}")
    assert response.status_code == 200
    node, depth = response.json(), 1
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth == MAX_TREE_DEPTH
    assert node["truncated"] is True


def test_arbitrary_metadata_always_encodes(make: Callable[..., Harness]) -> None:
    """Objects, sets, NaN, bytes, lone surrogates and deep nesting in metadata: valid JSON."""
    harness = make()
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(2000):
        cursor["x"] = {}
        cursor = cursor["x"]

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    metadata: dict[Any, Any] = {"obj": object(), "set": {1}, "nan": math.nan, "inf": -math.inf,
                                "bytes": b"\xff", "surrogate": "a\ud800", "deep": deep,
                                3: "int key", "bad": Unprintable(), "big": 10 ** 5000}
    with trace_context("C", "op", metadata, tracer=harness.tracer):
        pass
    response = harness.client.get("/api/traces")
    assert response.status_code == 200
    (entry,) = json.loads(response.content)
    # vigil.jsonsafe's one rule, as in log lines and alerts
    assert (entry["metadata"]["nan"], entry["metadata"]["inf"]) == ("NaN", "-Infinity")
    assert entry["metadata"]["surrogate"] == "a\ufffd"
    assert entry["metadata"]["set"] == [1]
    assert entry["metadata"]["3"] == "int key"
    assert entry["metadata"]["bad"] == "<unprintable Unprintable>"
    assert entry["metadata"]["big"].startswith("<integer of")


def test_api_logs_filters_by_component_and_level(make: Callable[..., Harness]) -> None:
    """/api/logs returns recent entries, filtered by component and minimum level."""
    harness = make()
    component = f"test-{uuid.uuid4().hex[:8]}"
    logger = StructuredLogger(component, stream=io.StringIO(), registry=harness.registry)
    logger.info("one")
    logger.warning("two", {"k": "v"})
    logger.error("three")
    response = harness.client.get("/api/logs", params={"component": component,
                                                       "level": "warning"})
    entries = TypeAdapter(list[LogEntry]).validate_python(response.json())
    assert [e.message for e in entries] == ["three", "two"]
    warn = harness.client.get("/api/logs", params={"component": component, "level": "warn"})
    assert [e["message"] for e in warn.json()] == ["three", "two"]  # the stdlib's alias
    limited = harness.client.get("/api/logs", params={"component": component, "limit": 1})
    assert [e["message"] for e in limited.json()] == ["three"]


def test_api_alerts_filters_by_source_status_and_severity(make: Callable[..., Harness]) -> None:
    """/api/alerts returns recent alerts, filtered by source, status and severity."""
    harness = make()
    harness.manager.send_alert("high", "Db", "down", {"x": object()})
    harness.manager.send_alert("low", "Db", "slow")
    harness.post(FIRING)
    assert harness.delivery.flush(WAIT)
    everything = TypeAdapter(list[AlertInfo]).validate_python(
        harness.client.get("/api/alerts").json())
    assert [a.message for a in everything] == ["component x is erroring", "slow", "down"]
    from_am = harness.client.get("/api/alerts", params={"source": "alertmanager",
                                                       "status": "FIRING"}).json()
    assert [a["severity"] for a in from_am] == ["critical"]
    high = harness.client.get("/api/alerts", params={"severity": "High", "limit": 5}).json()
    assert [a["message"] for a in high] == ["down"]


def test_api_metric_stats_by_seed_name(make: Callable[..., Harness]) -> None:
    """/api/metrics/{name}/stats gives the statistics; a name never recorded is 404."""
    harness = make()
    for value in (10.0, 20.0, 30.0):
        harness.monitor.record_histogram("agent.step_ms", value)
    stats = MetricStats.model_validate(
        harness.client.get("/api/metrics/agent.step_ms/stats").json())
    assert (stats.name, stats.count, stats.max, stats.avg) == ("agent.step_ms", 3, 30.0, 20.0)
    assert_error(harness.client.get("/api/metrics/never.seen/stats"), 404,
                 'no metric named "never.seen"')


def test_unknown_route_and_method_are_json_errors(make: Callable[..., Harness]) -> None:
    """404 for an unknown path and 405 for a wrong method use the same error shape."""
    client = make().client
    assert_error(client.get("/nowhere"), 404, 'no route "/nowhere"')
    assert_error(client.get(WEBHOOK), 405, f'method GET not allowed on "{WEBHOOK}"')


class ExplodingTracer:
    """A tracer whose queries fail, to reach the catch-all handler."""

    def get_recent_traces(self, limit: int = 100) -> list[dict[str, Any]]:
        raise RuntimeError("tracer broke")


def test_unexpected_errors_are_logged_500_json(make: Callable[..., Harness]) -> None:
    """A bug behind a route: 500 JSON, logged with method and path; the app keeps serving."""
    harness = make(tracer=ExplodingTracer())
    assert_error(harness.client.get("/api/traces"), 500, "internal server error")
    assert harness.client.get("/healthz").status_code == 200
    logged = [e for e in get_recent_logs(50, component="vigil.exporter")
              if e["message"].startswith("unhandled error")]
    assert logged[0]["metadata"]["path"] == "/api/traces"
    assert logged[0]["exception"]["type"] == "RuntimeError"


# --- /metrics ----------------------------------------------------------------------------


def _record_exemplar(harness: Harness) -> str:
    @monitor_performance("work", monitor=harness.monitor)
    def work() -> None:
        pass

    with trace_context("C", "op", tracer=harness.tracer) as span_id:
        work()
    trace = harness.tracer.get_trace(span_id)
    assert trace is not None
    trace_id: str = trace["trace_id"]
    return trace_id


def test_metrics_text_format_by_default(make: Callable[..., Harness]) -> None:
    """Without an Accept header /metrics is the text format 0.0.4, without exemplars."""
    harness = make()
    trace_id = _record_exemplar(harness)
    response = harness.client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in response.headers
    assert 'vigil_function_calls_total{function="work"} 1.0' in response.text
    assert trace_id not in response.text


def test_metrics_openmetrics_when_asked_shows_exemplars(make: Callable[..., Harness]) -> None:
    """Accept: application/openmetrics-text gives OpenMetrics with the trace id exemplar."""
    harness = make()
    trace_id = _record_exemplar(harness)
    response = harness.client.get("/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert f'# {{trace_id="{trace_id}"}}' in response.text
    assert response.text.endswith("# EOF\n")


def test_metrics_gzip_when_accepted(make: Callable[..., Harness]) -> None:
    """Accept-Encoding: gzip gives a gzip body that decompresses to the exposition."""
    harness = make()
    harness.monitor.increment_counter("hits")
    with harness.client.stream("GET", "/metrics",
                               headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["vary"]
    assert b"hits_total 1.0" in gzip.decompress(raw)


def test_metrics_name_filter_and_garbled_accept(make: Callable[..., Harness]) -> None:
    """name[] limits the families; a malformed Accept version falls back instead of a 500."""
    harness = make()
    harness.monitor.increment_counter("hits")
    harness.monitor.increment_counter("misses")
    only = harness.client.get("/metrics", params={"name[]": "hits_total"}).text
    assert "hits_total" in only
    assert "misses" not in only
    garbled = harness.client.get("/metrics", headers={
        "Accept": "application/openmetrics-text; version=abc"})
    assert garbled.status_code == 200
    assert garbled.headers["content-type"].startswith("application/openmetrics-text")


class BlockingCollector(Collector):
    """A collector that holds the scrape until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.entered.set()
        assert self.release.wait(WAIT)
        yield GaugeMetricFamily("slow_gauge", "A gauge that takes its time.", value=1)


def test_scrape_does_not_block_other_requests(make: Callable[..., Harness]) -> None:
    """While /metrics renders (in a worker thread), other requests are answered."""
    harness = make()
    collector = BlockingCollector()
    harness.registry.register(collector)
    results: list[int] = []
    scrape = threading.Thread(target=lambda: results.append(
        harness.client.get("/metrics").status_code))
    scrape.start()
    try:
        assert collector.entered.wait(WAIT)
        assert harness.client.get("/healthz").status_code == 200  # the scrape still hangs
        assert not results
    finally:
        collector.release.set()
        scrape.join(WAIT)
    assert results == [200]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_promtool_check_metrics_is_clean(make: Callable[..., Harness]) -> None:
    """promtool check metrics prints nothing for the exposition of vigil's own metrics."""
    harness = make()
    _record_exemplar(harness)
    breaker = CircuitBreaker(failure_threshold=1, name=f"promtool-{uuid.uuid4().hex[:6]}",
                             clock=FakeClock(), registry=harness.registry,
                             alert_manager=harness.manager)
    with contextlib.suppress(ValueError):
        breaker.call(_raise)
    harness.post(FIRING)
    harness.post(b"{")
    assert harness.delivery.flush(WAIT)
    text = harness.client.get("/metrics").content
    result = subprocess.run(["promtool", "check", "metrics"], input=text,
                            capture_output=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


# --- the webhook -------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status"), [(FIRING, "firing"), (RESOLVED, "resolved")])
def test_fixture_round_trips_to_a_handler(make: Callable[..., Harness], body: bytes,
                                          status: str) -> None:
    """Alertmanager's captured payloads reach a handler as vigil alerts with the right fields."""
    harness = make()
    response = harness.post(body)
    assert response.json() == {"status": "accepted", "alerts": 1, "duplicates": 0}
    (alert,) = harness.delivered()
    assert alert.source == "alertmanager"
    assert alert.status == status
    assert alert.severity == "critical"  # severity="page"
    assert alert.component == "x"
    assert alert.message == "component x is erroring"
    assert alert.labels == {"alertname": "DemoErrors", "component": "x",
                            "instance": "127.0.0.1:39181", "job": "demo", "severity": "page"}
    assert alert.annotations == {"summary": "component x is erroring"}
    assert alert.fingerprint == "6cca1d5ee5a27a61"
    assert alert.metadata["receiver"] == "hook"
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="DemoErrors", status=status) == 1
    assert harness.sample("vigil_webhook_requests_total", code="200") == 1


def test_firing_then_resolved_both_reach_the_handler(make: Callable[..., Harness]) -> None:
    """The resolution of a delivered alert is delivered too."""
    harness = make()
    harness.post(FIRING)
    harness.post(RESOLVED)
    assert [a.status for a in harness.delivered()] == ["firing", "resolved"]


def test_redelivery_is_not_dispatched_twice(make: Callable[..., Harness]) -> None:
    """Alertmanager resending the same notification: 200 with duplicates, one handler call."""
    harness = make()
    harness.post(FIRING)
    again = harness.post(FIRING)
    assert again.json() == {"status": "accepted", "alerts": 0, "duplicates": 1}
    assert len(harness.delivered()) == 1
    assert harness.sample("vigil_webhook_duplicates_total") == 1


def test_custom_webhook_path(make: Callable[..., Harness]) -> None:
    """webhook_path moves the receiver; the default path is then unknown."""
    harness = make(webhook_path="/hooks/am")
    json_body = {"Content-Type": "application/json"}
    assert harness.client.post("/hooks/am", content=FIRING, headers=json_body).status_code == 200
    assert harness.client.post(WEBHOOK, content=FIRING, headers=json_body).status_code == 404
    assert harness.sample("vigil_webhook_requests_total", code="200") == 1


@pytest.mark.parametrize(("body", "status", "expected"), [
    (b"{not json", 400, "body is not valid JSON: Expecting property name enclosed in double "
                        "quotes at line 1 column 2"),
    (b'{"version": "4", "alerts": "\xc3\x28"}', 400, "not valid UTF-8"),
    (b"", 400, "body is empty"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (b'{"version": "4", "alerts": [{"status": "firing", "labels": {"severity": 1}}]}', 422,
     "alerts[0].labels.severity: expected a string, got number"),
    (b'{"version": "3", "alerts": []}', 422, "unsupported Alertmanager webhook version"),
])
def test_bad_payloads_are_4xx_and_dispatch_nothing(make: Callable[..., Harness], body: bytes,
                                                   status: int, expected: str) -> None:
    """Malformed JSON or UTF-8: 400; the wrong shape: 422 naming the path; nothing dispatched."""
    harness = make()
    assert_error(harness.post(body), status, expected)
    assert harness.delivered() == []
    assert harness.sample("vigil_webhook_requests_total", code=str(status)) == 1


def test_bearer_token_is_required_when_configured(make: Callable[..., Harness]) -> None:
    """Missing or wrong bearer token: 401 with WWW-Authenticate and nothing dispatched."""
    harness = make(webhook_bearer_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": basic("u", TOKEN)}, {"Authorization": TOKEN}):
        response = harness.post(FIRING, **headers)
        assert_error(response, 401, "credentials")
        assert response.headers["www-authenticate"] == 'Bearer realm="vigil"'
    assert harness.delivered() == []
    assert harness.sample("vigil_alertmanager_alerts_received_total",
                          alertname="DemoErrors", status="firing") == 0
    assert harness.sample("vigil_webhook_requests_total", code="401") == 5
    assert harness.post(FIRING, Authorization=f"bearer {TOKEN}").status_code == 200
    assert len(harness.delivered()) == 1


def test_basic_auth_is_required_when_configured(make: Callable[..., Harness]) -> None:
    """Wrong user, wrong password or malformed basic credentials: 401; the right pair: 200."""
    harness = make(webhook_username="alertmanager", webhook_password=PASSWORD)
    for header in (basic("alertmanager", "nope"), basic("other", PASSWORD),
                   basic("alertmanager", ""), "Basic !!!notbase64",
                   "Basic " + base64.b64encode(b"no-colon").decode(), f"Bearer {PASSWORD}"):
        response = harness.post(FIRING, Authorization=header)
        assert_error(response, 401)
        assert response.headers["www-authenticate"].startswith('Basic realm="vigil"')
    assert harness.delivered() == []
    assert harness.post(FIRING, Authorization=basic("alertmanager", PASSWORD)).status_code == 200
    assert len(harness.delivered()) == 1


def test_either_scheme_passes_when_both_are_configured(make: Callable[..., Harness]) -> None:
    """With a token and basic auth configured, either one is enough; the challenge names both."""
    harness = make(webhook_bearer_token=TOKEN, webhook_username="am", webhook_password=PASSWORD)
    challenge = harness.post(FIRING).headers["www-authenticate"]
    assert "Bearer" in challenge
    assert "Basic" in challenge
    assert harness.post(FIRING, Authorization=f"Bearer {TOKEN}").status_code == 200
    assert harness.post(RESOLVED, Authorization=basic("am", PASSWORD)).status_code == 200
    assert len(harness.delivered()) == 2


def test_secrets_are_never_logged(make: Callable[..., Harness],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Neither the configured secrets nor the Authorization headers sent appear in any log."""
    harness = make(webhook_bearer_token=TOKEN, webhook_username="am", webhook_password=PASSWORD)
    harness.post(FIRING, Authorization=f"Bearer {TOKEN}-wrong")
    harness.post(FIRING, Authorization=basic("am", PASSWORD + "-wrong"))
    harness.post(b"{", Authorization=f"Bearer {TOKEN}")
    harness.post(FIRING, Authorization=f"Bearer {TOKEN}")
    harness.delivered()
    logs = json.dumps(get_recent_logs(1000)) + capsys.readouterr().out
    assert "webhook request without valid credentials" in logs
    for secret in (TOKEN, PASSWORD, base64.b64encode(f"am:{PASSWORD}-wrong".encode()).decode()):
        assert secret not in logs


def test_body_over_the_limit_by_content_length_is_413(make: Callable[..., Harness]) -> None:
    """A Content-Length over max_body_bytes: 413 before anything is read or dispatched."""
    harness = make(max_body_bytes=100)
    assert_error(harness.post(FIRING), 413, "request body larger than 100 bytes")
    assert harness.delivered() == []
    assert harness.sample("vigil_webhook_requests_total", code="413") == 1


def test_chunked_body_over_the_limit_is_413(make: Callable[..., Harness]) -> None:
    """A body without Content-Length is counted as it is read: past the limit, 413."""
    harness = make(max_body_bytes=100)

    def chunks() -> Iterator[bytes]:
        yield FIRING[:50]
        yield FIRING[50:]

    response = harness.client.post(WEBHOOK, content=chunks(),
                                   headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "larger than 100 bytes")
    assert response.headers["connection"] == "close"
    assert harness.delivered() == []


def test_invalid_content_length_is_400(make: Callable[..., Harness]) -> None:
    """A Content-Length that is not a number: 400 from the middleware."""
    scope = _scope("POST", WEBHOOK, [(b"content-length", b"12abc")])
    messages = asyncio.run(_drive(make().client.app, scope, _chunks([b"{}"])))
    assert messages[0]["status"] == 400
    assert b"invalid Content-Length" in messages[1]["body"]


def test_store_full_is_503_and_the_retry_is_delivered(make: Callable[..., Harness]) -> None:
    """Back-pressure: a full store answers 503 with Retry-After; the retry gets through."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock())
    gate = threading.Event()
    entered = threading.Event()

    def slow(alert: Alert) -> None:
        entered.set()
        assert gate.wait(WAIT)

    manager.register_handler(slow)
    try:
        harness = make(manager=manager, store_max_alerts=2)
        assert harness.post(_payload("f1")).status_code == 200
        assert entered.wait(WAIT)  # the handler holds f1
        assert harness.post(_payload("f2")).status_code == 200  # fills the store
        refused = harness.post(_payload("f3"))
        assert_error(refused, 503, "store is full")
        assert refused.headers["retry-after"] == "5"
        gate.set()
        assert harness.delivery.flush(WAIT)
        assert harness.post(_payload("f3")).json() == {"status": "accepted", "alerts": 1,
                                                       "duplicates": 0}
        assert harness.delivery.flush(WAIT)
        assert [a.fingerprint for a in harness.received] == ["f1", "f2", "f3"]
        assert harness.sample("vigil_webhook_requests_total", code="503") == 1
    finally:
        gate.set()


def test_deliveries_name_the_alerts_a_handler_has_not_finished(
        make: Callable[..., Harness]) -> None:
    """/api/deliveries' open_alert_ids holds an alert while a handler is still on it (what the
    console's "pending" shows) and drops it once the handler returned ("delivered")."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock())
    gate, entered = threading.Event(), threading.Event()
    held: list[str] = []

    def slow(alert: Alert) -> None:
        held.append(alert.id)
        entered.set()
        assert gate.wait(WAIT)

    manager.register_handler(slow)
    try:
        harness = make(manager=manager)
        assert harness.post(_payload("f1")).status_code == 200
        assert entered.wait(WAIT)
        answer = harness.client.get("/api/deliveries").json()
        assert answer["open_alert_ids"] == held
        assert answer["pending_alerts"] == 1
        gate.set()
        assert harness.delivery.flush(WAIT)
        assert harness.client.get("/api/deliveries").json()["open_alert_ids"] == []
    finally:
        gate.set()


def test_stopping_app_is_503(make: Callable[..., Harness]) -> None:
    """Once the app stops accepting, the webhook answers 503 so Alertmanager keeps the alert."""
    harness = make()
    harness.client.app.state.accepting = False  # type: ignore[attr-defined]
    assert_error(harness.post(FIRING), 503, "not accepting")


def test_without_its_lifespan_the_first_request_starts_the_store(
        make: Callable[..., Harness], tmp_path: Path) -> None:
    """An app whose lifespan never ran (mounted in another) opens its store and starts its
    delivery loop on its first request: the webhook commits and delivers, /readyz is 200."""
    harness = make(lifespan=False, state_dir=str(tmp_path / "lazy"))
    try:
        assert harness.post(FIRING).status_code == 200
        assert (tmp_path / "lazy" / "alerts.sqlite3").exists()
        assert harness.delivered()  # the handler got the notification's alerts
        assert harness.client.get("/readyz").json() == {"status": "ready"}
    finally:
        harness.delivery.stop(WAIT)


def test_mounted_in_a_fastapi_app_the_webhook_works(tmp_path: Path) -> None:
    """app.mount("/vigil", create_app()): the parent's lifespan runs, the mounted one's never
    does, and yet the webhook at /vigil/... commits and hands alerts to the handlers."""
    from fastapi import FastAPI

    registry = CollectorRegistry()
    manager = AlertManager(registry=registry, clock=FakeClock())
    received: list[Alert] = []
    manager.register_handler(received.append)
    parent = FastAPI()
    vigil_app = create_app(settings=ExporterSettings(allowed_hosts=("testserver",)),
                           registry=registry, alert_manager=manager,
                           tracer=ExecutionTracer(registry=registry),
                           monitor=PerformanceMonitor(registry=registry),
                           state_dir=str(tmp_path / "mounted"))
    parent.mount("/vigil", vigil_app)
    try:
        with TestClient(parent) as client:
            answer = client.post("/vigil" + WEBHOOK, content=FIRING,
                                 headers={"Content-Type": "application/json"})
            assert answer.status_code == 200, answer.text
            delivery: DeliveryLoop = vigil_app.state.delivery
            assert delivery.flush(WAIT)
            assert received
            assert client.get("/vigil/readyz").json() == {"status": "ready"}
            assert client.get("/vigil/metrics").status_code == 200
    finally:
        vigil_app.state.delivery.stop(WAIT)
        manager.close()


def test_a_failing_store_is_503_not_500(make: Callable[..., Harness], tmp_path: Path) -> None:
    """A store that raises (disk full, locked) makes the webhook ask for a retry."""

    class Broken(SQLiteStore):
        def accept(self, *args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

    store = Broken(tmp_path / "broken", ExporterSettings())
    try:
        harness = make(store=store)
        assert_error(harness.post(FIRING), 503, "store failed")
        assert harness.received == []
    finally:
        store.close()


def _payload(fingerprint: str) -> bytes:
    """FIRING for another alert: its own fingerprint and labels (the store's identity)."""
    data = json.loads(FIRING)
    data["alerts"][0]["fingerprint"] = fingerprint
    data["alerts"][0]["labels"]["instance"] = fingerprint
    return json.dumps(data).encode()


# --- the middleware, driven directly -----------------------------------------------------


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None
           ) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers or [],
            "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 9464)}


def _chunks(chunks: list[bytes], *, stall: bool = False) -> Callable[[], Any]:
    """An ASGI receive that yields ``chunks`` then, with ``stall``, never completes."""
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk,
                    "more_body": bool(pending) or stall}
        if stall:
            await asyncio.Event().wait()  # a client that stops sending
        return {"type": "http.disconnect"}

    return receive


async def _drive(app: Any, scope: dict[str, Any], receive: Callable[[], Any]
                 ) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), WAIT)
    return sent


async def _echo_body(scope: Any, receive: Any, send: Any) -> None:
    """A tiny ASGI app that reads the whole body and answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _limits(**options: Any) -> RequestLimitsMiddleware:
    settings: dict[str, Any] = {"max_body_bytes": 10, "request_timeout": 0.05,
                                "logger": _QuietLogger()}
    settings.update(options)
    return RequestLimitsMiddleware(_echo_body, **settings)


class _QuietLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        self.records.append((message, dict(metadata or {})))

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              exc_info: Any = None) -> None:
        self.records.append((message, dict(metadata or {})))


def test_middleware_passes_bodies_within_the_limit() -> None:
    """A body of exactly max_body_bytes in several chunks reaches the app whole."""
    sent = asyncio.run(_drive(_limits(), _scope("POST", "/x"), _chunks([b"12345", b"67890"])))
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"10")


def test_middleware_counts_chunked_bytes_413() -> None:
    """Chunks adding up past the limit: 413 with Connection: close, the app cut short."""
    sent = asyncio.run(_drive(_limits(), _scope("POST", "/x"),
                              _chunks([b"123456", b"78901", b"never read"])))
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"] == "request body larger than 10 bytes"


def test_middleware_times_out_a_stalled_body_408() -> None:
    """A client that stops sending its body gets 408 after request_timeout, connection closed."""
    logger = _QuietLogger()
    middleware = _limits(logger=logger)
    sent = asyncio.run(_drive(middleware, _scope("POST", "/x"), _chunks([b"12"], stall=True)))
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert "not received within 0.05 s" in json.loads(sent[1]["body"])["error"]
    assert logger.records[0][1] == {"method": "POST", "path": "/x", "status": 408,
                                    "error": "request body not received within 0.05 s"}


def test_stalled_webhook_body_is_408_through_the_app(make: Callable[..., Harness]) -> None:
    """The whole app, not only the middleware: a stalled webhook body is 408 and counted."""
    harness = make(request_timeout=0.05)
    scope = _scope("POST", WEBHOOK, [(b"content-type", b"application/json")])
    sent = asyncio.run(_drive(harness.client.app, scope, _chunks([FIRING[:20]], stall=True)))
    assert sent[0]["status"] == 408
    assert harness.delivered() == []
    assert harness.sample("vigil_webhook_requests_total", code="408") == 1


def test_middleware_answers_500_for_app_errors_and_reports_status() -> None:
    """An app that raises before answering: 500 JSON, logged; on_response sees every status."""
    statuses: list[int] = []

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("bug")

    logger = _QuietLogger()
    middleware = RequestLimitsMiddleware(broken, max_body_bytes=10, request_timeout=1.0,
                                         logger=logger,
                                         on_response=lambda scope, code: statuses.append(code))
    sent = asyncio.run(_drive(middleware, _scope("GET", "/x"), _chunks([b""])))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "internal server error", "detail": []}
    assert statuses == [500]
    assert logger.records[0][1]["error_type"] == "KeyError"


# --- OpenAPI -----------------------------------------------------------------------------


def test_openapi_lists_every_route_with_its_answers(make: Callable[..., Harness]) -> None:
    """/openapi.json documents every route, its response models and the webhook body."""
    schema = make().client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {"/metrics", "/healthz", "/readyz", "/api/breakers", "/api/traces",
                          "/api/traces/{trace_id}", "/api/logs", "/api/alerts",
                          "/api/metrics/{name}/stats", "/api/deliveries", WEBHOOK}
    webhook = paths[WEBHOOK]["post"]
    assert set(webhook["responses"]) >= {"200", "400", "401", "408", "413", "422", "503"}
    body_schema = webhook["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["properties"]["version"]["enum"] == ["4"]
    for path in ("/api/traces", "/api/logs", "/api/alerts"):
        error = paths[path]["get"]["responses"]["422"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "404" in paths["/api/traces/{trace_id}"]["get"]["responses"]
    assert {"TraceNode", "BreakerInfo", "AlertInfo", "LogEntry", "MetricStats"} <= set(
        schema["components"]["schemas"])
    assert "securitySchemes" not in schema["components"]


def test_openapi_describes_configured_credentials(make: Callable[..., Harness]) -> None:
    """With credentials configured the webhook operation lists its security schemes."""
    schema = make(webhook_bearer_token=TOKEN, webhook_username="am",
                  webhook_password=PASSWORD).client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "basicAuth"}
    assert schema["paths"][WEBHOOK]["post"]["security"] == [{"bearerAuth": []},
                                                            {"basicAuth": []}]
    assert TOKEN not in json.dumps(schema)


def test_json_safe_never_raises() -> None:
    """json_safe turns anything into values json.dumps(allow_nan=False) accepts."""
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    value = json_safe({"cycle": cyclic, "nan": math.nan, (1, 2): {3}, "obj": object()})
    json.dumps(value, allow_nan=False)
    assert value["nan"] == "NaN"  # vigil.jsonsafe rule
    assert value["(1, 2)"] == [3]


def test_metrics_serves_the_default_registry_with_the_applications_metrics() -> None:
    """/metrics of an app built with the defaults serves prometheus_client's default registry:
    a metric the application registered there, prometheus_client's process_* and vigil's own,
    each family once."""
    from prometheus_client import REGISTRY, Counter

    from vigil.monitoring.metrics import performance_monitor

    assert performance_monitor.registry is REGISTRY
    name = f"shop_orders_{uuid.uuid4().hex[:8]}"
    orders = Counter(name, "Orders placed.")
    try:
        orders.inc(3)

        @monitor_performance("default_registry_probe")
        def probe() -> int:
            return 1

        probe()
        body, _ = render_metrics(REGISTRY, "text/plain", "")
        text = body.decode()
        assert f"{name}_total 3.0" in text
        assert "process_cpu_seconds_total" in text or "python_gc_objects_collected_total" in text
        assert 'vigil_function_calls_total{function="default_registry_probe"} 1.0' in text
        helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
        assert len(helps) == len(set(helps))
    finally:
        REGISTRY.unregister(orders)
