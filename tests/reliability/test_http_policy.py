"""HTTP policy over real sockets: what a browser, a DNS-rebinding page or a stranger on the
network can make the exporter do, and the HTTP hygiene around it.

Every exporter here is a real one on 127.0.0.1:<free port> (``exporter`` / ``live_exporter``
from tests/reliability/conftest.py); raw requests go through ``raw_request`` so the Host and
Origin headers are exactly the ones written. What is proven:

- **browsers**: a cross-site POST to the webhook (text/plain, form-urlencoded, multipart or
  JSON, with a foreign ``Origin``) is refused with 403 and reaches no handler; a non-JSON body
  is 415 even without an Origin; cross-origin reads of /api/* are refused too;
- **DNS rebinding**: a ``Host`` that is not one of the exporter's names is 421 before routing,
  on every route; malformed ones are 400; the allowed names (with or without a port) work;
- **API credentials**: with ``api_bearer_token`` or ``api_username``/``api_password`` set,
  generated wrong credentials on /metrics and /api/* are 401 with WWW-Authenticate, the right
  ones 200, /healthz and /readyz stay open;
- **hygiene**: HEAD wherever GET is, Accept q-values on /metrics, no /docs by default,
  ``Cache-Control: no-store`` on JSON, security headers on HTML, no redirect built from Host;
- **log levels**: ``vigil serve --log-level WARNING`` prints no INFO line (vigil's or
  uvicorn's), and without the flag the config's ``monitoring.logging.level`` rules;
- **secrets** stay out of the API answers and the start warning names what is missing.

Heavy variants (``-m heavy``): 2,000 generated hosts and credentials instead of 150.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import string
import subprocess
import sys
import tempfile
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.durability.support import wait_ready
from tests.reliability.conftest import WAIT, WEBHOOK, LiveExporter, raw_request, sizes
from vigil.config import ExporterSettings
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil_exporter.app import create_app
from vigil_exporter.stack import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette prefers the httpx2 fork for its TestClient
    from fastapi.testclient import TestClient

FIRING = (Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
          / "firing.json").read_bytes()
EVIL = "https://evil.example"
TOKEN = "policy-api-token-Qm4x"
USER, PASSWORD = "prometheus", "policy-api-pass-7Yt1"
OPENMETRICS = "application/openmetrics-text"


def _request(method: str, path: str, *, host: str, headers: dict[str, str] | None = None,
             body: bytes = b"") -> bytes:
    """One raw HTTP/1.1 request with exactly this Host (and these headers)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _split(answer: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def _error_line(answer: bytes) -> str:
    """The JSON error shape's line, checking the shape."""
    headers, body = _split(answer)
    assert headers["content-type"].startswith("application/json"), answer[:300]
    error = json.loads(body)
    assert set(error) == {"error", "detail"}, error
    assert isinstance(error["error"], str)
    assert "\n" not in error["error"]
    return str(error["error"])


def _own(live: LiveExporter) -> str:
    return f"127.0.0.1:{live.handle.port}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- browsers: cross-site requests ----------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json"])
@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1"])
def test_cross_origin_posts_to_the_webhook_are_refused(
        exporter: Callable[..., LiveExporter], content_type: str, origin: str) -> None:
    """A browser's cross-site POST (any of the content types a form or fetch can send, from a
    foreign, opaque or other-port origin) gets 403 and no alert reaches the handlers."""
    live = exporter()
    status, answer, _ = raw_request(live.url, _request(
        "POST", WEBHOOK, host=_own(live), body=FIRING,
        headers={"Content-Type": content_type, "Origin": origin}))
    assert status == 403, answer[:300]
    assert "origin" in _error_line(answer).lower()
    assert live.delivered() == []
    assert live.manager.get_recent_alerts(10) == []


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/jsonx", "application/json-seq", ""])
def test_the_webhook_takes_only_json(exporter: Callable[..., LiveExporter],
                                     content_type: str) -> None:
    """A body that is not declared application/json (or has no Content-Type) is 415 in the
    JSON error shape, even without an Origin; nothing reaches the handlers."""
    live = exporter()
    headers = {"Content-Type": content_type} if content_type else {}
    status, answer, _ = raw_request(live.url, _request("POST", WEBHOOK, host=_own(live),
                                                       body=FIRING, headers=headers))
    assert status == 415, answer[:300]
    assert "application/json" in _error_line(answer)
    assert live.delivered() == []
    assert live.sample("vigil_webhook_requests_total", code="415") == 1


def test_json_from_the_own_origin_or_an_allowed_one_is_accepted(
        exporter: Callable[..., LiveExporter]) -> None:
    """The exporter's own origin, an origin in exporter.allowed_origins, no Origin at all
    (Alertmanager) and application/json with a charset are all accepted."""
    live = exporter(allowed_origins=("https://ops.example",))
    cases = [{"Origin": f"http://{_own(live)}"}, {"Origin": "https://OPS.example"}, {}]
    for extra in cases:
        body = FIRING.replace(b'"fingerprint": "', f'"fingerprint": "{len(extra)}'.encode())
        status, answer, _ = raw_request(live.url, _request(
            "POST", WEBHOOK, host=_own(live), body=body,
            headers={"Content-Type": "application/json; charset=utf-8", **extra}))
        assert status == 200, (extra, answer[:300])
    assert len(live.delivered()) >= 1


@pytest.mark.parametrize("path", ["/api/logs", "/api/alerts", "/api/breakers", "/metrics"])
def test_cross_origin_reads_are_refused(exporter: Callable[..., LiveExporter],
                                        path: str) -> None:
    """GET /api/* and /metrics with a foreign Origin (a page's fetch) is 403; health stays
    open to any origin (a status page may poll it)."""
    live = exporter()
    status, answer, _ = raw_request(live.url, _request("GET", path, host=_own(live),
                                                       headers={"Origin": EVIL}))
    assert status == 403, answer[:300]
    _error_line(answer)
    for health in ("/healthz", "/readyz"):
        status, answer, _ = raw_request(live.url, _request("GET", health, host=_own(live),
                                                           headers={"Origin": EVIL}))
        assert status == 200, answer[:300]


def test_allowed_origins_star_allows_any(exporter: Callable[..., LiveExporter]) -> None:
    """exporter.allowed_origins: ["*"] lets every origin through."""
    live = exporter(allowed_origins=("*",))
    status, answer, _ = raw_request(live.url, _request(
        "POST", WEBHOOK, host=_own(live), body=FIRING,
        headers={"Content-Type": "application/json", "Origin": EVIL}))
    assert status == 200, answer[:300]
    assert len(live.delivered()) == 1


# --- DNS rebinding: the Host header ---------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/logs"), ("GET", "/metrics"), ("POST", WEBHOOK), ("GET", "/no-such-route"),
    ("GET", "/metrics/"), ("HEAD", "/metrics")])
def test_a_foreign_host_is_misdirected(exporter: Callable[..., LiveExporter], method: str,
                                       path: str) -> None:
    """Host: evil.example (a DNS-rebinding page whose name now points at 127.0.0.1) gets 421
    on every route, before routing, and the webhook stores nothing."""
    live = exporter()
    status, answer, _ = raw_request(live.url, _request(
        method, path, host="evil.example", body=FIRING if method == "POST" else b"",
        headers={"Content-Type": "application/json"}))
    assert status == 421, answer[:300]
    if method != "HEAD":
        assert "evil.example" in _error_line(answer)
    assert "location" not in _split(answer)[0]
    assert live.delivered() == []


_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
_foreign_host = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.tuples(st.lists(_label, min_size=1, max_size=3).map(".".join),
              st.integers(1, 65535)).map(lambda hp: f"{hp[0]}:{hp[1]}"),
    st.sampled_from(["localhost.evil.example", "127.0.0.1.evil.example", "evil.localhost.com",
                     "0x7f000001", "[::2]", "10.0.0.1", "localhos", "vigil-evil"]),
).filter(lambda h: h.split(":")[0] not in ("localhost", "vigil", "127.0.0.1"))


@pytest.mark.parametrize("examples", sizes(150, 2000))
def test_generated_foreign_hosts_are_all_refused(exporter: Callable[..., LiveExporter],
                                                 examples: int) -> None:
    """Generated host names and addresses (with and without ports) that are not the
    exporter's: 421 on /api/logs every time, never a 2xx or a 5xx."""
    live = exporter()
    seen: list[int] = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(host=_foreign_host)
    def run(host: str) -> None:
        status, answer, _ = raw_request(live.url, _request("GET", "/api/logs", host=host))
        seen.append(status)
        assert status == 421, (host, answer[:300])

    run()
    assert len(seen) >= min(examples, 50)
    assert live.healthy()


@pytest.mark.parametrize("host", ["evil.example:abc", "a b", "user@127.0.0.1", "[::1",
                                  "127.0.0.1:99999", ""])
def test_a_malformed_host_is_400(exporter: Callable[..., LiveExporter], host: str) -> None:
    """A Host header that is not host[:port] is 400 in the JSON error shape (or h11's 400)."""
    live = exporter()
    status, answer, _ = raw_request(live.url, _request("GET", "/api/logs", host=host))
    assert status == 400, answer[:300]


def test_the_exporters_own_names_are_served(exporter: Callable[..., LiveExporter]) -> None:
    """localhost, 127.0.0.1 and [::1], with or without a port and in any case, are answered;
    so are names listed in exporter.allowed_hosts; '*' answers any name."""
    live = exporter(allowed_hosts=("vigil.example", "Metrics.Example."))
    port = live.handle.port
    for host in ("localhost", f"localhost:{port}", "LOCALHOST", "127.0.0.1",
                 f"127.0.0.1:{port}", "[::1]", f"[::1]:{port}", "localhost.",
                 "vigil.example", f"vigil.example:{port}", "metrics.example:9464"):
        status, answer, _ = raw_request(live.url, _request("GET", "/api/logs", host=host))
        assert status == 200, (host, answer[:300])
    anyone = exporter(allowed_hosts=("*",))
    status, answer, _ = raw_request(anyone.url, _request("GET", "/metrics", host="evil.example"))
    assert status == 200, answer[:300]


def test_testserver_is_not_allowed_by_default() -> None:
    """Starlette's TestClient name is not one of the default hosts (tests add it by setting)."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry)
    try:
        app = create_app(settings=ExporterSettings(), registry=registry, alert_manager=manager,
                         tracer=ExecutionTracer(registry=registry),
                         monitor=PerformanceMonitor(registry=registry))
        client = TestClient(app)
        assert client.get("/api/breakers").status_code == 421
        assert client.get("/api/breakers", headers={"Host": "localhost"}).status_code == 200
    finally:
        manager.close()


# --- API and /metrics credentials -----------------------------------------------------------


_printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40)
_wrong_credentials = st.one_of(
    st.none(),
    _printable,
    _printable.map(lambda t: f"Bearer {t}"),
    st.tuples(_printable, _printable).map(lambda up: _basic(*up)),
    st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.sampled_from([f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Token {TOKEN}",
                     _basic(USER, PASSWORD + "x"), _basic(USER, ""), _basic("", PASSWORD),
                     f"Bearer {PASSWORD}", "Bearer", "Basic "]),
).map(lambda value: None if value is None else value.strip())


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
@pytest.mark.parametrize("examples", sizes(150, 2000))
def test_api_and_metrics_credentials(exporter: Callable[..., LiveExporter], scheme: str,
                                     examples: int) -> None:
    """With API credentials set, generated missing, malformed and near-miss credentials get
    401 with WWW-Authenticate on /metrics and /api/* (and on a trailing-slash or unknown
    path: auth comes before routing); the right ones get 200; /healthz and /readyz need none."""
    live = (exporter(api_bearer_token=TOKEN) if scheme == "bearer"
            else exporter(api_username=USER, api_password=PASSWORD))
    paths = st.sampled_from(["/metrics", "/api/logs", "/api/alerts", "/api/breakers",
                             "/api/logs/", "/openapi.json", "/no-such-route"])
    tried = 0
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(authorization=_wrong_credentials, path=paths)
        def run(authorization: str | None, path: str) -> None:
            nonlocal tried
            headers = {} if authorization is None else {"Authorization": authorization}
            response = client.get(path, headers=headers)
            tried += 1
            assert response.status_code == 401, (authorization, path, response.text)
            assert response.headers["www-authenticate"].lower().startswith(scheme)
            assert "location" not in response.headers

        run()
        good = f"Bearer {TOKEN}" if scheme == "bearer" else _basic(USER, PASSWORD)
        for path in ("/metrics", "/api/logs", "/api/alerts", "/api/breakers"):
            assert client.get(path, headers={"Authorization": good}).status_code == 200, path
        for path in ("/healthz", "/readyz"):
            assert client.get(path).status_code == 200, path
        # The webhook keeps its own credentials (none here): API ones are not asked for.
        assert client.post(WEBHOOK, content=FIRING,
                           headers={"Content-Type": "application/json"}).status_code == 200
    assert tried >= min(examples, 50)


# --- HTTP hygiene ---------------------------------------------------------------------------


def test_head_is_answered_wherever_get_is(exporter: Callable[..., LiveExporter]) -> None:
    """HEAD on /metrics, /healthz, /readyz, /api/* and /openapi.json: 200 with GET's headers
    and no body; HEAD on the webhook is 405."""
    live = exporter()
    for path in ("/metrics", "/healthz", "/readyz", "/api/logs", "/api/alerts",
                 "/api/breakers", "/api/deliveries", "/openapi.json"):
        status, answer, _ = raw_request(live.url, _request("HEAD", path, host=_own(live)))
        headers, body = _split(answer)
        assert status == 200, (path, answer[:300])
        assert body == b"", path
        assert headers["content-type"], path
    status, answer, _ = raw_request(live.url, _request("HEAD", "/metrics", host=_own(live)))
    assert _split(answer)[0]["content-type"].startswith("text/plain")
    status, _, _ = raw_request(live.url, _request("HEAD", WEBHOOK, host=_own(live)))
    assert status == 405


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{OPENMETRICS};q=0", "text/plain"),
    (f"{OPENMETRICS};version=1.0.0;q=0", "text/plain"),
    (f"{OPENMETRICS};q=0.5, text/plain;q=0.9", "text/plain"),
    (f"text/plain;q=0.2, {OPENMETRICS};q=0.9", OPENMETRICS),
    (f"{OPENMETRICS};q=0.5, text/plain;q=0.5", "text/plain"),  # a tie goes to text
    (f"{OPENMETRICS};version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", OPENMETRICS),
    (f"{OPENMETRICS}", OPENMETRICS),
    (f"text/plain;q=0, {OPENMETRICS};q=0.1", OPENMETRICS),
    ("*/*", "text/plain"),
    ("application/*", OPENMETRICS),
    (f"application/*;q=0.9, {OPENMETRICS};q=0", "text/plain"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/plain"),
    ("", "text/plain"),
    (f"{OPENMETRICS};q=abc", "text/plain"),
])
def test_accept_q_values_are_honoured_on_metrics(exporter: Callable[..., LiveExporter],
                                                 accept: str, expected: str) -> None:
    """/metrics picks the highest-q acceptable format of text and OpenMetrics (q=0 means not
    acceptable, a tie goes to text, a bad q value is ignored)."""
    live = exporter()
    with httpx.Client(timeout=WAIT) as client:
        response = client.get(live.url + "/metrics", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(expected), (accept,
                                                                   response.headers)


def test_nothing_acceptable_is_406(exporter: Callable[..., LiveExporter]) -> None:
    """Accept refusing both formats (text/plain;q=0 and nothing else acceptable) is 406."""
    live = exporter()
    with httpx.Client(timeout=WAIT) as client:
        for accept in ("text/plain;q=0", f"text/plain;q=0, {OPENMETRICS};q=0", "*/*;q=0"):
            response = client.get(live.url + "/metrics", headers={"Accept": accept})
            assert response.status_code == 406, (accept, response.text)
            assert set(response.json()) == {"error", "detail"}


def test_docs_are_off_by_default_and_openapi_stays(exporter: Callable[..., LiveExporter]
                                                   ) -> None:
    """/docs and /redoc (which load their scripts from a CDN) are 404 unless
    exporter.docs_enabled; /openapi.json is served either way."""
    live = exporter()
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/docs/oauth2-redirect").status_code == 404
        assert client.get("/openapi.json").json()["info"]["title"] == "vigil exporter"


def test_html_pages_carry_security_headers(exporter: Callable[..., LiveExporter]) -> None:
    """With docs_enabled, /docs and /redoc come with a CSP (default-src 'none', no
    unsafe-eval), nosniff, X-Frame-Options DENY and no referrer."""
    live = exporter(docs_enabled=True)
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        for path in ("/docs", "/redoc"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html")
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp
            assert "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"


def test_every_answer_has_nosniff_and_json_is_not_cached(
        exporter: Callable[..., LiveExporter]) -> None:
    """Every answer (JSON, errors, /metrics) is nosniff; the JSON API's answers and errors
    are Cache-Control: no-store."""
    live = exporter()
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        for path in ("/api/logs", "/api/alerts", "/api/breakers", "/api/deliveries",
                     "/api/traces", "/api/traces/nope", "/no-such-route", "/healthz"):
            response = client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["cache-control"] == "no-store", path
        assert client.get("/metrics").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/metrics/", "/api/logs/", "/healthz/", "/api/alerts/"])
def test_no_redirect_is_built_from_the_host_header(exporter: Callable[..., LiveExporter],
                                                   path: str) -> None:
    """A trailing slash is 404 without a Location (Starlette would redirect to a URL made
    from the Host header); with a foreign Host it is 421, never a redirect."""
    live = exporter()
    for host, expected in ((_own(live), 404), ("evil.example", 421)):
        status, answer, _ = raw_request(live.url, _request("GET", path, host=host))
        assert status == expected, (host, answer[:300])
        assert "location" not in _split(answer)[0]


# --- secrets in the API answers -------------------------------------------------------------

SECRET = "S3CR3T-policy-9vQ"


def _secret_notification() -> bytes:
    note = json.loads(FIRING)
    alert = note["alerts"][0]
    alert["labels"]["api_token"] = SECRET + "-label"
    alert["annotations"]["db_password"] = SECRET + "-annotation"
    alert["annotations"]["Authorization"] = "Bearer " + SECRET + "-auth"
    return json.dumps(note).encode()


def test_secret_looking_labels_and_annotations_are_redacted_in_the_api(
        exporter: Callable[..., LiveExporter]) -> None:
    """Alert labels and annotations with secret-looking keys come out [REDACTED] in
    /api/alerts (as in the log lines); the handler still gets them as sent."""
    live = exporter()
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        assert client.post(WEBHOOK, content=_secret_notification(),
                           headers={"Content-Type": "application/json"}).status_code == 200
        (delivered,) = live.delivered()
        assert delivered.labels["api_token"] == SECRET + "-label"
        answer = client.get("/api/alerts").text
        logs = client.get("/api/logs", params={"limit": 1000}).text
    assert SECRET not in answer, answer
    assert "[REDACTED]" in answer
    assert SECRET not in logs


def test_url_credentials_are_masked_in_the_api(exporter: Callable[..., LiveExporter]) -> None:
    """user:password@ inside generatorURL is masked in /api/alerts (redact() masks URLs)."""
    live = exporter()
    note = json.loads(FIRING)
    note["alerts"][0]["generatorURL"] = f"http://admin:{SECRET}@prometheus:9090/graph?g0=1"
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        assert client.post(WEBHOOK, content=json.dumps(note).encode(),
                           headers={"Content-Type": "application/json"}).status_code == 200
        assert len(live.delivered()) == 1
        answer = client.get("/api/alerts").text
    assert SECRET not in answer, answer
    assert "prometheus:9090" in answer


# --- the start warning ----------------------------------------------------------------------


def _lifespan_lines(capsys: pytest.CaptureFixture[str], **settings: Any
                    ) -> list[dict[str, Any]]:
    """The JSON log lines written during a lifespan start and stop with these settings."""
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry)
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as state:
        app = create_app(settings=ExporterSettings(state_dir=state, **settings),
                         registry=registry, alert_manager=manager,
                         tracer=ExecutionTracer(registry=registry),
                         monitor=PerformanceMonitor(registry=registry))
        try:
            with TestClient(app):
                pass
        finally:
            manager.close()
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_listening_beyond_loopback_without_credentials_warns_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    """host 0.0.0.0 without webhook or API credentials: one WARNING line at start naming both
    gaps; with both set, no such line; on loopback, none either."""
    warned = [line for line in _lifespan_lines(capsys, host="0.0.0.0")
              if "beyond loopback" in line["message"]]
    assert len(warned) == 1, warned
    assert warned[0]["level"] == "WARNING"
    text = json.dumps(warned[0])
    assert "webhook" in text
    assert "api" in text.lower()
    closed = _lifespan_lines(capsys, host="0.0.0.0", webhook_bearer_token=SECRET,
                             api_bearer_token=SECRET + "x")
    assert [line for line in closed if "beyond loopback" in line["message"]] == []
    assert SECRET not in json.dumps(closed)
    assert [line for line in _lifespan_lines(capsys) if "beyond loopback" in line["message"]] == []


@pytest.mark.usefixtures("root_logging")
def test_vigil_serve_prints_the_warning_on_stderr(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """vigil serve --host 0.0.0.0 without credentials prints one 'vigil: warning:' line on
    stderr naming the settings to set (the server itself is not started here)."""
    from vigil_exporter import cli, server

    monkeypatch.setattr(server, "serve_forever", lambda *a, **k: [])
    for name in ("VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN", "VIGIL_EXPORTER_API_BEARER_TOKEN",
                 "VIGIL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "0",
                     "--state-dir", str(tmp_path)]) == 0
    warnings_ = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith("vigil: warning:")]
    assert len(warnings_) == 1, warnings_
    assert "webhook_bearer_token" in warnings_[0]
    assert "api_bearer_token" in warnings_[0]


# --- log levels: the flag and the config agree ----------------------------------------------


def _serve_lines(tmp_path: Path, *flags: str, config: str = "") -> list[dict[str, Any]]:
    """Run vigil serve, post one notification, stop it with SIGINT; its JSON stdout lines."""
    port = free_port()
    argv = [str(Path(sys.executable).with_name("vigil")), "serve", "--port", str(port),
            "--state-dir", str(tmp_path / "state"), *flags]
    if config:
        tmp_path.mkdir(parents=True, exist_ok=True)
        path = tmp_path / "vigil.yaml"
        path.write_text(config, encoding="utf-8")
        argv += ["--config", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, "vigil serve", lambda: "")
        request = urllib.request.Request(f"http://127.0.0.1:{port}{WEBHOOK}", data=FIRING,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_log_level_flag_silences_info_lines(tmp_path: Path) -> None:
    """vigil serve --log-level WARNING (the config saying DEBUG) prints no DEBUG or INFO line,
    neither vigil's nor uvicorn's."""
    lines = _serve_lines(tmp_path, "--log-level", "WARNING",
                         config="monitoring:\n  logging:\n    level: DEBUG\n")
    assert [line for line in lines if line["level"] in ("DEBUG", "INFO")] == []


def test_without_the_flag_the_configured_level_rules(tmp_path: Path) -> None:
    """Without --log-level, monitoring.logging.level decides: WARNING prints no INFO line;
    DEBUG prints the INFO lines (webhook accepted, delivery stopped)."""
    quiet = _serve_lines(tmp_path / "q", config="monitoring:\n  logging:\n    level: WARNING\n")
    assert [line for line in quiet if line["level"] in ("DEBUG", "INFO")] == []
    loud = _serve_lines(tmp_path / "l", config="monitoring:\n  logging:\n    level: DEBUG\n")
    messages = {line["message"] for line in loud}
    assert "webhook notification accepted" in messages
    assert "alert delivery stopped" in messages
