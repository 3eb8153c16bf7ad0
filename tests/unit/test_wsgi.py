"""vigil.wsgi.VigilWSGIMiddleware: labels, statuses, the body's lifetime and the server span."""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.util import setup_testing_defaults

import pytest
from tests.unit.http_rig import REMOTE_SPAN, TRACE, TRACEPARENT, HttpRig

from vigil.monitoring.context import current_span
from vigil.testing import FakeClock
from vigil.wsgi import VigilWSGIMiddleware, route_from_environ

REQUESTS = "vigil_http_requests_total"
DURATION = "vigil_http_request_duration_seconds"
ITEM = re.compile(r"^/items/\d+$")


class Rig(HttpRig):
    """One WSGI middleware under test (see HttpRig)."""

    def wrap(self, app: WSGIApplication, **options: Any) -> VigilWSGIMiddleware:
        return VigilWSGIMiddleware(app, registry=self.registry, tracer=self.tracer,
                                   clock=self.clock, **options)


class Response:
    """What a server got from one WSGI call."""

    status = ""
    headers: list[tuple[str, str]] = []
    body = b""


def environ_for(path: str, method: str = "GET", **extra: str) -> WSGIEnvironment:
    environ: WSGIEnvironment = {"PATH_INFO": path, "REQUEST_METHOD": method, **extra}
    setup_testing_defaults(environ)
    return environ


def serve(app: WSGIApplication, path: str, method: str = "GET", **extra: str) -> Response:
    """Call ``app`` as a PEP 3333 server does: call, iterate the body, then close it."""
    response = Response()

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], object]:
        response.status, response.headers = status, headers
        return lambda data: None

    body = app(environ_for(path, method, **extra), start_response)
    try:
        response.body = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return response


def close(body: Iterable[bytes]) -> None:
    """Close a response body as a server does."""
    closer = getattr(body, "close", None)
    assert closer is not None
    closer()


def items_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A tiny pure-WSGI app: /items/<n> answers, anything else is a 404."""
    if ITEM.match(environ["PATH_INFO"]):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def items_route(environ: WSGIEnvironment) -> str | None:
    """items_app's route_of: its one route's template, None for everything else."""
    return "/items/{n}" if ITEM.match(environ["PATH_INFO"]) else None


# --- labels -----------------------------------------------------------------------------------


def test_route_of_gives_templates_and_ten_thousand_paths_make_one_series() -> None:
    """With route_of, 10,000 distinct paths are one series under the route's template."""
    rig = Rig()
    app = rig.wrap(items_app, route_of=items_route)
    for n in range(10_000):
        assert serve(app, f"/items/{n}").status == "200 OK"
    assert rig.count("/items/{n}") == 10_000
    assert len(rig.series()) == 1
    assert len(rig.series(DURATION + "_count")) == 1


def test_without_a_route_every_path_is_unmatched() -> None:
    """A plain WSGI app without route_of: all paths share route="<unmatched>", by status."""
    rig = Rig()
    app = rig.wrap(items_app)
    for n in range(1_000):
        serve(app, f"/items/{n}")
        serve(app, f"/other/{n}")
    assert rig.count("<unmatched>", "200") == 1_000
    assert rig.count("<unmatched>", "404") == 1_000
    assert len(rig.series()) == 2


def test_environ_route_key_names_the_route() -> None:
    """A template the app puts in environ["vigil.route"] is the label."""
    rig = Rig()

    def named(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["vigil.route"] = "/reports/{id}"
        start_response("200 OK", [])
        return [b"ok"]

    app = rig.wrap(named)
    serve(app, "/reports/1")
    serve(app, "/reports/2")
    assert rig.count("/reports/{id}") == 2


def test_flask_url_rule_is_read_from_the_werkzeug_request() -> None:
    """The rule Flask sets on the request kept in environ["werkzeug.request"] is the label."""
    rule = SimpleNamespace(rule="/items/<int:item_id>")
    assert route_from_environ({"werkzeug.request": SimpleNamespace(url_rule=rule)}) == \
        "/items/<int:item_id>"
    assert route_from_environ({"werkzeug.request": SimpleNamespace(url_rule=None)}) is None
    assert route_from_environ({}) is None


def test_unknown_methods_fold_into_other() -> None:
    """Non-standard methods are counted as method="other"."""
    rig = Rig()
    app = rig.wrap(items_app, route_of=items_route)
    serve(app, "/items/1", method="BREW")
    serve(app, "/items/1", method="get")
    assert rig.count("/items/{n}", method="other") == 2


def test_a_raising_route_finder_counts_the_request_unmatched() -> None:
    """A route_of that raises leaves the response alone and counts it under <unmatched>."""
    rig = Rig()

    def broken(environ: WSGIEnvironment) -> str | None:
        raise KeyError("no route here")

    assert serve(rig.wrap(items_app, route_of=broken), "/items/1").status == "200 OK"
    assert rig.count("<unmatched>") == 1


# --- statuses, the body's lifetime ---------------------------------------------------------


def test_status_is_the_code_given_to_start_response() -> None:
    """The status label is the code of start_response's status line."""
    rig = Rig()
    serve(rig.wrap(items_app, route_of=items_route), "/nowhere")
    assert rig.count("<unmatched>", "404") == 1


def test_app_raising_before_start_response_counts_500_and_propagates() -> None:
    """An app that raises at once is counted as status 500; its exception reaches the server."""
    rig = Rig()

    def boom(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        serve(rig.wrap(boom), "/boom")
    assert rig.count("<unmatched>", "500") == 1
    (span,) = rig.tracer.get_recent_traces()
    assert (span["status"], span["error"]["type"]) == ("error", "RuntimeError")


def failing_body(sent_first: bool) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        if sent_first:
            yield b"partial"
        raise RuntimeError("body failed")
    return app


def test_body_failing_before_any_byte_counts_500() -> None:
    """A body that fails before any byte left is a 500 (the server sends one), and propagates."""
    rig = Rig()
    with pytest.raises(RuntimeError, match="body failed"):
        serve(rig.wrap(failing_body(sent_first=False)), "/")
    assert rig.count("<unmatched>", "500") == 1
    assert rig.count("<unmatched>", "200") == 0


def test_body_failing_after_bytes_keeps_the_sent_status() -> None:
    """Once body bytes went out the client has the status: a later failure keeps it."""
    rig = Rig()
    with pytest.raises(RuntimeError, match="body failed"):
        serve(rig.wrap(failing_body(sent_first=True)), "/")
    assert rig.count("<unmatched>", "200") == 1
    assert rig.tracer.get_recent_traces()[0]["status"] == "error"


class ClosingBody:
    """A response body that takes 0.5 s per chunk and 0.25 s to close, and notes the close."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for part in (b"a", b"b", b"c"):
            self.clock.advance(0.5)
            yield part

    def close(self) -> None:
        self.clock.advance(0.25)
        self.closed += 1


def test_body_is_closed_and_timed_until_close() -> None:
    """The app's close() is called, and the duration covers the whole body and its close."""
    rig = Rig()
    body = ClosingBody(rig.clock)

    def streaming(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("201 Created", [])
        return body

    response = serve(rig.wrap(streaming, route_of=lambda environ: "/stream"), "/stream")
    assert (response.status, response.body) == ("201 Created", b"abc")
    assert body.closed == 1
    assert rig.count("/stream", "201") == 1
    assert rig.registry.get_sample_value(
        DURATION + "_sum", {"method": "GET", "route": "/stream"}) == 1.75


def test_request_is_recorded_at_close_and_only_once() -> None:
    """Nothing is counted before close(); closing twice counts the request once."""
    rig = Rig()
    app = rig.wrap(items_app, route_of=items_route)
    body = app(environ_for("/items/1"), lambda status, headers, exc_info=None: print)
    assert b"".join(body) == b"/items/1"
    assert rig.count("/items/{n}") == 0
    close(body)
    close(body)
    assert rig.count("/items/{n}") == 1


def test_a_server_that_never_closes_leaks_nothing() -> None:
    """A body dropped without close() leaves no current span and no unraisable error behind."""
    rig = Rig()
    body = rig.wrap(logging_app(rig))(environ_for("/"), lambda status, headers, exc_info=None:
                                      print)
    assert b"".join(body) == b"ok"
    del body
    gc.collect()  # an unraisable error here would fail the test (pyproject's filterwarnings)
    assert current_span() is None
    assert rig.count("<unmatched>") == 0  # PEP 3333's close() is when a request is counted


def test_write_callable_counts_as_sent() -> None:
    """Bytes sent through start_response's write() also fix the status against a late error."""
    rig = Rig()

    def explode(chunk: bytes) -> bytes:
        raise RuntimeError("after write")

    def legacy(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])(b"written")
        return map(explode, [b""])  # lazy: the error comes on the first next()

    with pytest.raises(RuntimeError, match="after write"):
        serve(rig.wrap(legacy), "/")
    assert rig.count("<unmatched>", "200") == 1


# --- tracing ----------------------------------------------------------------------------------


def logging_app(rig: Rig) -> WSGIApplication:
    def stream() -> Iterator[bytes]:
        rig.logger.info("streaming")  # runs during iteration: the span must be current then
        yield b"ok"

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        rig.logger.info("called")
        start_response("200 OK", [])
        return stream()
    return app


def test_traceparent_is_continued_and_log_lines_carry_it() -> None:
    """The server span continues HTTP_TRACEPARENT; lines logged while streaming carry its ids."""
    rig = Rig()
    serve(rig.wrap(logging_app(rig)), "/log", HTTP_TRACEPARENT=TRACEPARENT,
          HTTP_TRACESTATE="vendor=1")
    (span,) = rig.tracer.get_recent_traces()
    assert (span["trace_id"], span["parent_id"]) == (TRACE, REMOTE_SPAN)
    assert (span["component"], span["operation"]) == ("http", "GET <unmatched>")  # no route_of
    assert span["metadata"] == {"http.request.method": "GET", "url.path": "/log"}
    assert [(line["message"], line["trace_id"], line["span_id"]) for line in rig.lines()] == [
        ("called", TRACE, span["id"]), ("streaming", TRACE, span["id"])]


def test_span_is_current_only_inside_the_request() -> None:
    """Between the app's steps the server's own context has no span: nothing leaks."""
    rig = Rig()
    seen: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        seen.append(current_span())
        start_response("200 OK", [])
        yield b"one"
        seen.append(current_span())
        yield b"two"

    body = iter(rig.wrap(app)(environ_for("/"), lambda status, headers, exc_info=None: print))
    assert next(body) == b"one"
    assert current_span() is None
    assert next(body) == b"two"
    close(body)
    assert current_span() is None
    assert seen[0] is not None
    assert seen == [seen[0], seen[0]]


def test_without_traceparent_the_span_is_a_root() -> None:
    """Without a traceparent each request starts a trace of its own."""
    rig = Rig()
    serve(rig.wrap(items_app), "/a")
    serve(rig.wrap(items_app), "/b")
    spans = rig.tracer.get_recent_traces()
    assert [span["parent_id"] for span in spans] == [None, None]
    assert len({span["trace_id"] for span in spans}) == 2


def test_response_trace_header_is_opt_in() -> None:
    """No trace header by default; with response_trace_header the server span's is sent."""
    rig = Rig()
    assert serve(rig.wrap(items_app), "/items/1").headers == [("Content-Type", "text/plain")]
    traced = serve(rig.wrap(items_app, response_trace_header="traceresponse"), "/items/1",
                   HTTP_TRACEPARENT=TRACEPARENT)
    span = rig.tracer.get_recent_traces()[0]
    assert dict(traced.headers)["traceresponse"] == f"00-{TRACE}-{span['id']}-01"


def test_flask_app() -> None:
    """With Flask installed: its rule templates are the labels, 404s are unmatched."""
    flask = pytest.importorskip("flask")
    rig = Rig()
    app = flask.Flask("demo")

    def item(item_id: int) -> str:
        rig.logger.info("item")
        return str(item_id)

    app.add_url_rule("/items/<int:item_id>", view_func=item)
    app.wsgi_app = rig.wrap(app.wsgi_app)
    client = app.test_client()
    # buffered: the test client then closes the body, as a server does
    assert client.get("/items/1", buffered=True).status_code == 200
    assert client.get("/items/2", headers={"traceparent": TRACEPARENT},
                      buffered=True).status_code == 200
    assert client.get("/nowhere", buffered=True).status_code == 404
    assert rig.count("/items/<int:item_id>") == 2
    assert rig.count("<unmatched>", "404") == 1
    assert rig.lines()[1]["trace_id"] == TRACE
