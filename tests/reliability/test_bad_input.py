"""Bad input over a real socket: fuzzed webhook bodies and API requests, raw malformed HTTP.

Every request here goes to ``start_exporter(port=0, app=create_app(...))`` through the kernel,
uvicorn and h11, not through an in-process client. The answers must be 4xx (never 5xx), the
server must stay alive (``/healthz`` 200) and the webhook must dispatch exactly the alerts it
said it accepted.

Already proven in-process, not repeated as such (tests/exporter/test_app.py): one example each
of bad JSON, invalid UTF-8, an empty body, 100k nested brackets and a wrong shape
(test_bad_payloads_are_4xx_and_dispatch_nothing), 413 by Content-Length and by chunks, 400 for a
non-numeric Content-Length, 408 at the ASGI level; the parser alone against arbitrary bytes and
near-valid payloads (tests/exporter/test_webhook.py).

Sizes: by default ~300 schemathesis cases (positive + negative over /openapi.json), 300
generated/mutated webhook bodies and 200 generated API requests; ``-m heavy`` runs 4,000
schemathesis cases, 3,000 webhook bodies and 2,000 API requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.reliability.conftest import (
    WAIT,
    WEBHOOK,
    LiveExporter,
    live_exporter,
    post_bytes,
    raw_request,
    read_answer,
    sizes,
)
from vigil.monitoring.alerts import AlertManager
from vigil_exporter.webhook import MAX_ALERTS, MAX_LABEL_LENGTH, MAX_PAIRS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
FIRING = (FIXTURES / "firing.json").read_bytes()
LIMIT = 1_048_576  # exporter.max_body_bytes, the default



@pytest.fixture(scope="module")
def server() -> Iterator[LiveExporter]:
    """One exporter for the fuzzers; de-duplication off so every accepted alert is handled."""
    with contextlib.ExitStack() as stack:
        registry = CollectorRegistry()
        manager = AlertManager(registry=registry, dedup_window=0, buffer_size=100,
                               queue_size=100_000)
        yield live_exporter(stack, manager=manager, registry=registry)


def _assert_error_shape(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str)
    assert "\n" not in body["error"]


# --- schemathesis against the published OpenAPI description --------------------------------


def _schemathesis() -> Any:
    return pytest.importorskip("schemathesis", reason="schemathesis is a test extra")


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("examples", sizes(150, 2000))
def test_openapi_fuzz_never_answers_5xx_and_conforms(server: LiveExporter, mode: str,
                                                      examples: int) -> None:
    """schemathesis cases from /openapi.json (valid and invalid): no 5xx; status codes, content
    types, headers and bodies are the documented ones; the server stays healthy."""
    schemathesis = _schemathesis()
    import requests  # schemathesis's transport; installed with it
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance]
    session = requests.Session()
    statuses: set[int] = set()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(schemathesis.GenerationMode(mode)))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, session=session, timeout=WAIT)
        statuses.add(response.status_code)
        case.validate_response(response, checks=checks)

    try:
        run()
    finally:
        session.close()
    assert all(status < 500 for status in statuses), statuses
    assert server.healthy()


@pytest.mark.parametrize("examples", sizes(100, 1000))
def test_schema_valid_requests_are_accepted(server: LiveExporter, examples: int) -> None:
    """Every request the OpenAPI description calls valid is accepted (not a 4xx rejection)."""
    schemathesis = _schemathesis()
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(schemathesis.GenerationMode.POSITIVE))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=WAIT)
        case.validate_response(response, checks=[positive_data_acceptance])

    run()


# --- the webhook: generated and mutated bodies ----------------------------------------------

_text = st.text(max_size=12)
_label_name = st.text(string.ascii_letters + "_", min_size=1, max_size=10)
_labels = st.dictionaries(_label_name, _text, max_size=6)
_alert = st.fixed_dictionaries({
    "status": st.sampled_from(["firing", "resolved"]),
    "labels": _labels,
    "annotations": st.one_of(st.none(), st.dictionaries(_label_name, st.text(max_size=40),
                                                        max_size=3)),
    "startsAt": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00.5+01:00"]),
    "endsAt": st.sampled_from(["0001-01-01T00:00:00Z", "2026-01-03T00:00:00Z"]),
    "fingerprint": st.text(string.hexdigits, min_size=1, max_size=16),
}, optional={"generatorURL": _text})
_valid = st.fixed_dictionaries({
    "version": st.just("4"),
    "alerts": st.lists(_alert, max_size=4),
}, optional={"receiver": _text, "status": st.sampled_from(["firing", "resolved"]),
             "groupKey": _text, "externalURL": _text, "groupLabels": _labels,
             "commonLabels": _labels, "commonAnnotations": _labels,
             "truncatedAlerts": st.integers(0, 10)})
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=12)


def _replace_somewhere(data: st.DataObject, value: Any) -> Any:
    """``value`` with one nested field (or element) swapped for arbitrary JSON."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: _replace_somewhere(data, value[key])}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], _replace_somewhere(data, value[i]), *value[i + 1:]]
    return data.draw(_json)


def _mutate_bytes(data: st.DataObject, body: bytes) -> bytes:
    """``body`` with a few byte-level edits: truncation, flips, insertions, deletions."""
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        at = data.draw(st.integers(0, len(body)))
        if op == "truncate":
            body = body[:at]
        elif op == "flip" and at < len(body):
            body = body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1:]
        elif op == "insert":
            body = body[:at] + data.draw(st.binary(min_size=1, max_size=8)) + body[at:]
        elif op == "delete":
            body = body[:at] + body[at + data.draw(st.integers(1, 8)):]
    return body


def _webhook_body(data: st.DataObject) -> bytes:
    payload = data.draw(_valid)
    kind = data.draw(st.sampled_from(["valid", "field", "bytes", "random"]))
    if kind == "field":
        payload = _replace_somewhere(data, payload)
    if kind == "random":
        return data.draw(st.binary(max_size=300))
    body = json.dumps(payload, ensure_ascii=data.draw(st.booleans())).encode()
    return _mutate_bytes(data, body) if kind == "bytes" else body


@pytest.mark.parametrize("examples", sizes(300, 3000))
def test_webhook_fuzz_never_5xx_and_dispatches_exactly_what_it_accepted(
        server: LiveExporter, examples: int) -> None:
    """Generated, field-mutated, byte-mutated and random webhook bodies over the socket:
    200/400/422 only, errors in the JSON shape, and the handler gets exactly the accepted
    alerts; the server stays healthy."""
    before = len(server.delivered())
    accepted = 0
    statuses: set[int] = set()

    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def run(data: st.DataObject) -> None:
            nonlocal accepted
            response = client.post(WEBHOOK, content=_webhook_body(data),
                                   headers={"Content-Type": "application/json"})
            statuses.add(response.status_code)
            assert response.status_code in (200, 400, 422), response.text
            if response.status_code == 200:
                accepted += response.json()["alerts"]
            else:
                _assert_error_shape(response)

        run()
    assert {200, 400, 422} <= statuses  # the generator reached every kind of answer
    assert len(server.delivered()) - before == accepted
    assert server.healthy()


# --- the JSON API: generated paths, queries and headers -------------------------------------

_routes = st.sampled_from(["/api/traces", "/api/logs", "/api/alerts", "/api/breakers",
                           "/metrics", "/healthz", "/readyz", "/api/traces/{x}",
                           "/api/metrics/{x}/stats", "/api/{x}", "/{x}", WEBHOOK])
_params = st.dictionaries(st.sampled_from(["limit", "level", "component", "source", "status",
                                           "severity", "name[]", "x"]) | st.text(max_size=5),
                          st.text(max_size=20) | st.integers().map(str), max_size=4)
_headers = st.dictionaries(
    st.sampled_from(["Accept", "Accept-Encoding", "Authorization", "Content-Type",
                     "X-Forwarded-For", "traceparent"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40).map(str.strip),
    max_size=3)


@pytest.mark.parametrize("examples", sizes(200, 2000))
def test_api_fuzz_paths_queries_and_headers_never_5xx(server: LiveExporter,
                                                      examples: int) -> None:
    """Any method on any route (or none), with generated path segments, query parameters and
    headers: never a 5xx, every error in the JSON shape, the server stays healthy."""
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD",
                                       "OPTIONS", "PATCH"]),
               route=_routes, segment=st.text(min_size=1, max_size=30), params=_params,
               headers=_headers)
        def run(method: str, route: str, segment: str, params: dict[str, str],
                headers: dict[str, str]) -> None:
            path = route.replace("{x}", urllib.parse.quote(segment, safe=""))
            response = client.request(method, path, params=params, headers=headers)
            assert response.status_code < 500, (method, path, params, headers, response.text)
            if response.status_code >= 400 and method != "HEAD":
                _assert_error_shape(response)

        run()
    assert server.healthy()


# --- raw HTTP that no client library sends --------------------------------------------------


def _alert_dict(fingerprint: str = "f", **labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, "annotations": {}, "fingerprint": fingerprint,
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}


def _note(alerts: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"version": "4", "alerts": alerts, **extra}).encode()


def _chunked(chunks: list[bytes]) -> bytes:
    head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    return head.encode() + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


_MALFORMED: dict[str, tuple[bytes, int, str]] = {
    # name: (request bytes, status, a piece of the error line; "" for h11's plain-text 400)
    "content-length over the limit, body never sent": (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
        f"Content-Length: {LIMIT + 1}\r\n\r\n{{".encode(), 413, "larger than 1048576 bytes"),
    "chunked body past the limit": (
        _chunked([b"[" * 65536] * 17), 413, "larger than 1048576 bytes"),
    "invalid UTF-8 in a string": (
        post_bytes(b'{"version":"4","alerts":[],"receiver":"\xff\xfe"}'), 400, "not valid UTF-8"),
    "UTF-8 BOM": (post_bytes(b"\xef\xbb\xbf" + FIRING), 400, "not valid JSON"),
    "lone surrogate escape in a label": (
        post_bytes(_note([_alert_dict(alertname="x")]).replace(b'"x"', b'"\\ud800"')),
        422, "lone surrogate"),
    "a million nested arrays (1 MB)": (
        post_bytes(b"[" * (LIMIT - 200)), 400, "nested too deeply"),
    "200k nested objects": (post_bytes(b'{"a":' * 200_000), 400, "nested too deeply"),
    "NaN literal": (post_bytes(b'{"version":"4","alerts":[],"truncatedAlerts":NaN}'),
                    422, "truncatedAlerts"),
    "1e400 (infinite float)": (
        post_bytes(b'{"version":"4","alerts":[],"truncatedAlerts":1e400}'), 422,
        "truncatedAlerts"),
    "5000-digit integer": (
        post_bytes(b'{"version":"4","alerts":[],"truncatedAlerts":' + b"9" * 5000 + b"}"),
        400, "not valid JSON"),
    "JSON null": (post_bytes(b"null"), 422, "expected an object"),
    f"{MAX_PAIRS + 1} labels": (
        post_bytes(_note([_alert_dict(**{f"l{i}": "v" for i in range(MAX_PAIRS + 1)})])),
        422, f"at most {MAX_PAIRS}"),
    f"a {MAX_LABEL_LENGTH + 1}-character label value": (
        post_bytes(_note([_alert_dict(alertname="v" * (MAX_LABEL_LENGTH + 1))])),
        422, f"at most {MAX_LABEL_LENGTH}"),
    f"{MAX_ALERTS + 1} alerts": (
        post_bytes(_note([_alert_dict(f"f{i}") for i in range(MAX_ALERTS + 1)])),
        422, f"at most {MAX_ALERTS}"),
    "non-numeric Content-Length": (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Length: 12abc\r\n\r\n{{}}".encode(),
        400, ""),
    "two different Content-Lengths": (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Length: 2\r\n"
        f"Content-Length: 3\r\n\r\n{{}}x".encode(), 400, ""),
    "request head over 256 KiB": (
        b"GET /healthz HTTP/1.1\r\nHost: vigil\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
        400, ""),
    "bytes that are not HTTP (a TLS hello)": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(100)), 400, ""),
    "non-ASCII bytes in the request line": (
        b"GET /api/traces/\xff\xfe HTTP/1.1\r\nHost: vigil\r\n\r\n", 400, ""),
    "GET on the webhook": (
        f"GET {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\n\r\n".encode(), 405, "not allowed"),
    "unknown method": (b"FOO /healthz HTTP/1.1\r\nHost: vigil\r\n\r\n", 405, "not allowed"),
    "NUL in a path parameter": (
        b"GET /api/traces/%00 HTTP/1.1\r\nHost: vigil\r\n\r\n", 404, "no trace entry"),
}


@pytest.mark.parametrize("case", sorted(_MALFORMED))
def test_malformed_requests_over_a_socket_are_4xx(exporter: Callable[..., LiveExporter],
                                                  case: str) -> None:
    """Malformed bodies, lengths, heads and methods sent raw: the documented 4xx, in the JSON
    shape (or h11's plain 400 for unparseable HTTP), nothing dispatched, server healthy."""
    live = exporter()
    request, expected, text = _MALFORMED[case]
    status, answer, closed = raw_request(live.url, request)
    assert status == expected, answer[:300]
    body = answer.partition(b"\r\n\r\n")[2]
    if text:
        error = json.loads(body)
        assert set(error) == {"error", "detail"}
        assert text in error["error"]
    if status == 413 or not text:  # a rejected body or unparseable HTTP ends the connection
        assert closed, "the server kept a connection it should have closed"
    assert live.delivered() == []
    assert live.healthy()


def test_largest_label_sets_within_the_caps_are_accepted(
        exporter: Callable[..., LiveExporter]) -> None:
    """A notification just under 1 MiB of alerts with 100 labels each is accepted whole and
    every alert is dispatched with all its labels."""
    live = exporter()
    alerts = [_alert_dict(f"f{i}", **{f"label_{j}": f"{i}-{j}-" + "v" * 80
                                      for j in range(MAX_PAIRS)}) for i in range(100)]
    body = _note(alerts)
    assert LIMIT - 100_000 < len(body) <= LIMIT
    status, answer, _ = raw_request(live.url, post_bytes(body))
    assert status == 200, answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["alerts"] == 100
    delivered = live.delivered()
    assert len(delivered) == 100
    assert all(len(a.labels) == MAX_PAIRS for a in delivered)
    assert live.healthy()


# --- slow bodies ----------------------------------------------------------------------------


def _stalled(url: str, sent: bytes) -> socket.socket:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    sock.sendall(sent)
    return sock


def test_slow_body_gets_408_and_does_not_hold_up_others(
        exporter: Callable[..., LiveExporter]) -> None:
    """20 clients that send half a webhook body and stop: each gets 408 and its connection
    closed after request_timeout; meanwhile other requests are served; nothing dispatched."""
    live = exporter(request_timeout=0.5)
    head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(FIRING)}\r\n\r\n").encode()
    started = time.monotonic()
    stalled = [_stalled(live.url, head + FIRING[:100]) for _ in range(20)]
    try:
        # While all 20 are stalled, the server still answers (before any 408 is due).
        with httpx.Client(timeout=WAIT) as client:
            assert client.get(live.url + "/healthz").status_code == 200
        answers = [read_answer(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
    assert time.monotonic() - started < WAIT
    for status, answer, closed in answers:
        assert status == 408, answer[:300]
        assert b"not received within 0.5 s" in answer
        assert closed
    assert live.sample("vigil_webhook_requests_total", code="408") == 20
    assert live.delivered() == []
    assert live.healthy()


def test_body_trickled_within_the_timeout_is_accepted(
        exporter: Callable[..., LiveExporter]) -> None:
    """A body sent in small pieces that all arrive within request_timeout is read whole (the
    timeout bounds the whole body; test_slow_clients proves a dripped body is cut)."""
    live = exporter(request_timeout=2.0)
    head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(FIRING)}\r\n\r\n").encode()
    sock = _stalled(live.url, head)
    pieces = [FIRING[i:i + 200] for i in range(0, len(FIRING), 200)]
    sent = threading.Event()

    def trickle() -> None:
        for piece in pieces:
            sock.sendall(piece)
            sent.wait(0.05)  # a slow client's gap between chunks (well under the timeout)

    writer = threading.Thread(target=trickle)
    writer.start()
    try:
        status, answer, _ = read_answer(sock)
    finally:
        writer.join(WAIT)
        sock.close()
    assert status == 200, answer[:300]
    assert len(live.delivered()) == 1
