"""vigil.asgi.VigilMiddleware on real Starlette and FastAPI apps: labels, statuses, spans."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from tests.unit.http_rig import REMOTE_SPAN, TRACE, TRACEPARENT, HttpRig

from vigil.asgi import Message, Receive, Scope, Send, VigilMiddleware, route_from_scope
from vigil.monitoring import instruments

REQUESTS = "vigil_http_requests_total"
DURATION = "vigil_http_request_duration_seconds"


class Rig(HttpRig):
    """One ASGI app under test (see HttpRig), and what its lifespan handlers saw."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.app: Any = None

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"registry": self.registry, "tracer": self.tracer, "clock": self.clock, **extra}

    def get(self, *paths: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> list[httpx.Response]:
        async def send_all() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return [await client.request(method, path, headers=headers) for path in paths]
        return asyncio.run(send_all())


# --- the apps: the same endpoints written for Starlette and for FastAPI -----------------------


def starlette_app(rig: Rig, **options: Any) -> Starlette:
    async def item(request: Request) -> Response:
        return PlainTextResponse(",".join(map(str, request.path_params.values())))

    async def boom(request: Request) -> Response:
        raise RuntimeError("handler failed")

    def logged(request: Request) -> Response:  # sync: Starlette runs it in a thread
        rig.logger.info("handled")
        return PlainTextResponse("ok")

    async def stream(request: Request) -> Response:
        return StreamingResponse(chunks(rig), status_code=201)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    sub = Starlette(routes=[Route("/things/{thing_id}", item)])
    return Starlette(
        routes=[Route("/items/{item_id}", item), Route("/boom", boom), Route("/log", logged),
                Route("/stream", stream), WebSocketRoute("/ws", echo), Mount("/sub", app=sub),
                Mount("/orgs/{org}", routes=[Route("/users/{item_id}", item)])],
        middleware=[Middleware(VigilMiddleware, **rig.options(**options))],
        lifespan=lifespan(rig))


def fastapi_app(rig: Rig, **options: Any) -> FastAPI:
    app = FastAPI(lifespan=lifespan(rig))

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return item_id

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler failed")

    @app.get("/log")
    def logged() -> str:  # sync: FastAPI runs it in a thread
        rig.logger.info("handled")
        return "ok"

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks(rig), status_code=201)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    users = APIRouter()

    @users.get("/users/{item_id}")
    async def user(item_id: str) -> str:
        return item_id

    app.include_router(users, prefix="/orgs/{org}")
    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: str) -> str:
        return thing_id

    app.mount("/sub", sub)
    app.add_middleware(VigilMiddleware, **rig.options(**options))
    return app


def lifespan(rig: Rig) -> Callable[[Any], Any]:
    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        rig.events.append("startup")
        yield
        rig.events.append("shutdown")
    return run


async def chunks(rig: Rig) -> AsyncIterator[bytes]:
    for part in (b"one ", b"two ", b"three"):
        rig.clock.advance(0.5)  # the stream takes 1.5 s in all
        yield part


APPS = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.fixture(params=sorted(APPS))
def rig(request: pytest.FixtureRequest) -> Rig:
    rig = Rig()
    rig.app = APPS[request.param](rig)
    return rig


# --- driving ASGI directly, for the scopes httpx does not speak --------------------------------


def drive(app: Any, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Run one ASGI connection: feed ``incoming``, then wait forever; return what was sent."""
    sent: list[Message] = []

    async def run() -> None:
        queue = list(incoming)

        async def receive() -> Message:
            if queue:
                return queue.pop(0)
            await asyncio.Event().wait()  # never set: the app has what it asked for
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(run())
    return sent


# --- labels -----------------------------------------------------------------------------------


def test_route_templates_are_the_labels(rig: Rig) -> None:
    """/items/42 and /items/7 are counted under the template /items/{item_id}, not their paths."""
    assert [r.status_code for r in rig.get("/items/42", "/items/7")] == [200, 200]
    assert rig.count("/items/{item_id}") == 2
    assert [s["route"] for s in rig.series()] == ["/items/{item_id}"]
    assert rig.registry.get_sample_value(
        DURATION + "_count", {"method": "GET", "route": "/items/{item_id}"}) == 2


def test_ten_thousand_paths_make_one_series(rig: Rig) -> None:
    """10,000 distinct paths of one route are one counter series and one histogram series."""
    rig.get(*(f"/items/{n}" for n in range(10_000)))
    assert rig.count("/items/{item_id}") == 10_000
    assert len(rig.series()) == 1
    assert len(rig.series(DURATION + "_count")) == 1


def test_unmatched_paths_fold_into_one_value(rig: Rig) -> None:
    """Paths no route matches (404s) all count under route="<unmatched>"."""
    responses = rig.get(*(f"/nowhere/{n}" for n in range(50)))
    assert {r.status_code for r in responses} == {404}
    assert rig.count("<unmatched>", "404") == 50
    assert rig.series() == [{"method": "GET", "route": "<unmatched>", "status": "404"}]


def test_mounted_apps_routes_carry_the_mount_templates(rig: Rig) -> None:
    """A mounted sub-app's route and a parametrized prefix are labelled with full templates."""
    rig.get("/sub/things/3", "/orgs/acme/users/1", "/orgs/initech/users/2")
    assert rig.count("/sub/things/{thing_id}") == 1
    assert rig.count("/orgs/{org}/users/{item_id}") == 2
    assert not [s for s in rig.series() if "acme" in s["route"] or "initech" in s["route"]]


def test_not_found_inside_a_mount_is_the_mounts_template(rig: Rig) -> None:
    """A 404 from a mounted app is counted under the mount's template, one series for all."""
    rig.get("/sub/nothing/1", "/sub/nothing/2")
    assert rig.count("/sub/{path}", "404") == 2


def test_unknown_methods_fold_into_other(rig: Rig) -> None:
    """Non-standard methods (BREW, PROPFIND) are counted together as method="other"."""
    rig.get("/items/1", method="BREW")
    rig.get("/items/1", method="PROPFIND")
    assert rig.series() == [{"method": "other", "route": "/items/{item_id}", "status": "405"}]
    assert rig.count("/items/{item_id}", "405", "other") == 2


# --- statuses and durations ----------------------------------------------------------------


def test_raising_app_counts_500_and_the_exception_propagates(rig: Rig) -> None:
    """A handler that raises is counted as status 500, and its exception reaches the server."""
    with pytest.raises(RuntimeError, match="handler failed"):
        rig.get("/boom")
    assert rig.count("/boom", "500") == 1
    (span,) = rig.tracer.get_recent_traces()
    assert span["status"] == "error"
    assert span["error"] == {"type": "RuntimeError", "message": "handler failed"}


def test_wrapped_outside_the_app_a_raising_handler_still_counts_500() -> None:
    """Around the whole app (outside Starlette's error middleware) a failure is still a 500."""
    rig = Rig()
    inner = Rig()
    rig.app = VigilMiddleware(starlette_app(inner), **rig.options())
    with pytest.raises(RuntimeError, match="handler failed"):
        rig.get("/boom")
    assert rig.count("/boom", "500") == 1


def test_streaming_response_is_counted_once_with_its_status(rig: Rig) -> None:
    """A streamed body is one request, with its real status, timed until the last chunk."""
    (response,) = rig.get("/stream")
    assert (response.status_code, response.text) == (201, "one two three")
    assert rig.count("/stream", "201") == 1
    assert rig.registry.get_sample_value(
        DURATION + "_sum", {"method": "GET", "route": "/stream"}) == 1.5


def test_any_asgi_app_is_counted_unmatched() -> None:
    """An ASGI app with no router is counted, under route="<unmatched>", with its status."""
    rig = Rig()

    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rig.app = VigilMiddleware(bare, **rig.options())
    rig.get("/a", "/b/c")
    assert rig.count("<unmatched>", "204") == 2


def test_app_returning_without_a_response_counts_500() -> None:
    """An app that returns without starting a response is counted as the server's 500."""
    rig = Rig()

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    sent = drive(VigilMiddleware(silent, **rig.options()),
                 {"type": "http", "method": "GET", "path": "/", "headers": []}, [])
    assert sent == []
    assert rig.count("<unmatched>", "500") == 1


def test_scope_route_key_names_the_route() -> None:
    """A template the app puts in scope["vigil.route"] is the label, whatever the path."""
    rig = Rig()

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        scope["vigil.route"] = "/reports/{id}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    rig.app = VigilMiddleware(named, **rig.options())
    rig.get("/reports/1", "/reports/2")
    assert rig.count("/reports/{id}") == 2


def test_a_raising_route_finder_counts_the_request_unmatched() -> None:
    """A route_of that raises leaves the response alone and counts it under <unmatched>."""
    rig = Rig()

    def broken(scope: Scope) -> str | None:
        raise KeyError("no route here")

    rig.app = starlette_app(rig, route_of=broken)
    (response,) = rig.get("/items/1")
    assert response.status_code == 200
    assert rig.count("<unmatched>") == 1


def test_route_from_scope_without_a_router_is_none() -> None:
    """A scope no router touched has no route."""
    assert route_from_scope({"type": "http", "path": "/x", "root_path": ""}) is None


def test_series_cap_applies_on_top() -> None:
    """With an unbounded route finder, the series cap still bounds the series."""
    rig = Rig()
    instruments.counter(rig.registry, REQUESTS, "doc", ("method", "route", "status"),
                        max_series=3, keep=("method",))
    rig.app = starlette_app(rig, route_of=lambda scope: scope["path"])
    rig.get(*(f"/items/{n}" for n in range(20)))
    assert len(rig.series()) == 4  # three admitted, one overflow
    assert rig.count("other", "other") == 17


# --- tracing ----------------------------------------------------------------------------------


def test_traceparent_is_continued_and_log_lines_carry_it(rig: Rig) -> None:
    """The server span continues the caller's trace, and a handler's log line carries its ids."""
    rig.get("/log", headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
    (span,) = rig.tracer.get_recent_traces()
    assert (span["trace_id"], span["parent_id"]) == (TRACE, REMOTE_SPAN)
    # Named after the route once routing is done, as the metrics' route label is.
    assert (span["component"], span["operation"], span["status"]) == ("http", "GET /log",
                                                                      "success")
    assert span["metadata"] == {"http.request.method": "GET", "url.path": "/log"}
    (line,) = [line for line in rig.lines() if line["message"] == "handled"]
    assert (line["trace_id"], line["span_id"]) == (TRACE, span["id"])


def test_without_traceparent_each_request_starts_a_trace(rig: Rig) -> None:
    """Without a traceparent the server span is a root, one new trace per request."""
    rig.get("/items/1", "/items/2")
    spans = rig.tracer.get_recent_traces()
    assert [span["parent_id"] for span in spans] == [None, None]
    assert len({span["trace_id"] for span in spans}) == 2


def test_invalid_traceparent_starts_a_new_trace(rig: Rig) -> None:
    """An invalid traceparent is ignored, as W3C asks: the span is a root."""
    rig.get("/items/1", headers={"traceparent": "00-zz-zz-01"})
    (span,) = rig.tracer.get_recent_traces()
    assert span["parent_id"] is None


def test_server_span_is_a_child_of_the_current_opentelemetry_span() -> None:
    """Under a current OpenTelemetry span, the server span joins it as its child."""
    from opentelemetry.sdk.trace import TracerProvider

    rig = Rig()
    rig.app = starlette_app(rig)
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("outer")
    with tracer.start_as_current_span("outer") as outer:
        rig.get("/items/1")
    ids = outer.get_span_context()
    (span,) = rig.tracer.get_recent_traces()
    assert (span["trace_id"], span["parent_id"]) == (format(ids.trace_id, "032x"),
                                                     format(ids.span_id, "016x"))


def test_response_trace_header_is_opt_in() -> None:
    """No trace header by default; with response_trace_header the server span's is sent."""
    rig = Rig()
    rig.app = starlette_app(rig)
    (plain,) = rig.get("/items/1")
    assert "traceresponse" not in plain.headers
    rig.app = starlette_app(rig, response_trace_header="traceresponse")
    (traced,) = rig.get("/items/1", headers={"traceparent": TRACEPARENT})
    span = rig.tracer.get_recent_traces()[0]
    assert traced.headers["traceresponse"] == f"00-{TRACE}-{span['id']}-01"


# --- what passes through untouched --------------------------------------------------------------


def test_lifespan_passes_through(rig: Rig) -> None:
    """The lifespan scope reaches the app: its startup and shutdown run, nothing is counted."""
    sent = drive(rig.app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                 [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
    assert rig.events == ["startup", "shutdown"]
    assert rig.series() == []
    assert rig.tracer.get_recent_traces() == []


def test_websocket_passes_through(rig: Rig) -> None:
    """A websocket session reaches its endpoint untouched; it is neither counted nor traced."""
    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "",
             "query_string": b"", "headers": [], "scheme": "ws", "server": ("test", 80),
             "subprotocols": [], "asgi": {"version": "3.0"}}
    sent = drive(rig.app, scope, [{"type": "websocket.connect"},
                                  {"type": "websocket.receive", "text": "hello"}])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send",
                                         "websocket.close"]
    assert sent[1]["text"] == "hello"
    assert rig.series() == []
    assert rig.tracer.get_recent_traces() == []
