"""The HTML console over HTTP: its page and files, its headers, the rules it shares with
/api/*, its two JSON routes, and the breaker-history sampler behind the sparklines."""

from __future__ import annotations

import base64
import contextlib
import gc
import math
import re
import threading
import uuid
import warnings
import weakref
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from tests.exporter.api_rig import api_rig

from vigil.config import ConfigError, ExporterSettings
from vigil.error_handling.breaker import CircuitBreaker, CircuitState
from vigil.error_handling.errors import CircuitOpenError
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.testing import FakeClock
from vigil_exporter.console import ASSETS, CONSOLE_CSP, console_router
from vigil_exporter.console.functions import function_stats, monitored_functions
from vigil_exporter.console.history import BreakerHistory, Reading

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette prefers the httpx2 fork for its TestClient
    from fastapi.testclient import TestClient

STATIC = resources.files("vigil_exporter.console").joinpath("static")
PAGES = ("/", *(f"/console/{name}" for name in ASSETS))
TOKEN = "console-t0ken-s3cret"
MAX_ASSET_BYTES = 64 * 1024  # each file the page loads
MAX_TOTAL_BYTES = 96 * 1024  # all of them: the console is small, with no library


def _static(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []  # text inside <script> or <style>
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._inside = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside and data.strip():
            self.inline.append(data)


# --- the page and its files ---------------------------------------------------------------


def test_the_page_is_html_with_the_strict_csp() -> None:
    """GET / is the console's HTML with a CSP allowing only the exporter's own scripts,
    styles, images and fetches: no inline code, no eval, Trusted Types, no framing; plus the
    policy's nosniff, DENY and no-referrer."""
    with api_rig() as rig:
        response = rig.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert b"<title>vigil console</title>" in response.content
    csp = response.headers["content-security-policy"]
    assert csp == CONSOLE_CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "img-src", "connect-src"):
        assert directives[kind] == "'self'", kind
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_code_and_loads_only_its_own_files() -> None:
    """index.html has no inline script or style, no event-handler or style attribute, and
    every URL it names is one of the console's files, relative (so a mounted app works)."""
    parser = _Tags()
    parser.feed(_static("index.html"))
    assert parser.inline == []
    urls = []
    for tag, attrs in parser.tags:
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None and not value.startswith("#"):
                urls.append(value)
    assert urls
    for url in urls:
        assert not re.match(r"^([a-z]+:|//|/)", url), url
    loaded = {u.removeprefix("console/") for u in urls if u.startswith("console/")}
    assert loaded == set(ASSETS)


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_file_is_served_with_its_type_and_revalidates(name: str) -> None:
    """/console/<file> answers the packaged bytes with their media type, nosniff and an ETag;
    If-None-Match with it gets 304 and no body; HEAD gets the headers alone."""
    with api_rig() as rig:
        response = rig.client.get(f"/console/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == ASSETS[name]
        assert response.content == STATIC.joinpath(name).read_bytes()
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        again = rig.client.get(f"/console/{name}", headers={"If-None-Match": f'W/"x", {etag}'})
        assert again.status_code == 304
        assert again.content == b""
        assert rig.client.get(f"/console/{name}",
                              headers={"If-None-Match": '"other"'}).status_code == 200
        head = rig.client.head(f"/console/{name}")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == etag


@pytest.mark.parametrize("path", ["/console/nope.js", "/console/index.html",
                                  "/console/..%2fapp.py", "/console/", "/console",
                                  "/console/console.js/", "/index.html"])
def test_an_unknown_file_is_a_json_404(path: str) -> None:
    """Anything but the listed files is 404 with the JSON error shape (no directory listing,
    no traversal, no trailing-slash redirect)."""
    with api_rig() as rig:
        response = rig.client.get(path, follow_redirects=False)
    assert response.status_code == 404, path
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error", "detail"}
    assert "location" not in response.headers


def test_the_files_are_small() -> None:
    """Each file the page loads stays under 64 KiB and all of them under 96 KiB."""
    sizes = {name: len(STATIC.joinpath(name).read_bytes()) for name in (*ASSETS, "index.html")}
    assert all(size <= MAX_ASSET_BYTES for size in sizes.values()), sizes
    assert sum(sizes.values()) <= MAX_TOTAL_BYTES, sizes


def test_the_script_never_parses_strings_as_html_nor_reaches_outside() -> None:
    """console.js builds the DOM with textContent: no innerHTML/outerHTML/insertAdjacentHTML,
    document.write or eval; it names no URL but the SVG namespace, and fetches only
    relative paths. The CSS imports nothing."""
    # Comments may name the sinks (to say why they are not used): code only.
    script = re.sub(r"(^|\s)//.*$", "", _static("console.js"), flags=re.M)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"style\"", "srcdoc"):
        assert sink not in script, sink
    assert set(re.findall(r"https?://[^\s\"'`]+", script)) == {"http://www.w3.org/2000/svg"}
    fetched = re.findall(r"\"((?:api|console)/[^\"]*)\"|`((?:api|console)/[^`]*)`", script)
    assert fetched
    css = _static("console.css")
    assert "@import" not in css
    assert "url(" not in css


def test_every_breaker_state_has_a_word_and_a_colour() -> None:
    """Each CircuitState (lower case, as the API's value folds to) is in the script's table
    with a word and a tone the stylesheet colours."""
    script = _static("console.js")
    table = script[script.index("const STATES = {"):script.index("};", script.index(
        "const STATES = {"))]
    entries = dict(re.findall(r"(\w+): \{ word: \"[^\"]+\", tone: \"(\w+)\" \}", table))
    css = _static("console.css")
    for state in CircuitState:
        key = state.value.lower()
        assert key in entries, key
        assert f".card.tone-{entries[key]}" in css or entries[key] == "off", key
        assert f".circle.tone-{entries[key]}" in css, key
    assert {"closed", "open", "half_open", "forced_open", "disabled", "metrics_only"} <= set(
        entries)


# --- the same rules as /api/* ------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/console/api/history", "/console/api/functions"])
def test_credentials_guard_the_console_like_the_api(path: str) -> None:
    """With API credentials set (bearer or basic), the page, its files and its JSON need them:
    401 with WWW-Authenticate, before routing; the right ones get 200."""
    with api_rig(api_bearer_token=TOKEN, api_username="dev", api_password="pa55") as rig:
        missing = rig.client.get(path)
        assert missing.status_code == 401
        assert "Bearer" in missing.headers["www-authenticate"]
        assert "Basic" in missing.headers["www-authenticate"]
        assert rig.client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert rig.client.get(path, headers={
            "Authorization": _basic("dev", "wrong")}).status_code == 401
        assert rig.client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}
                              ).status_code == 200
        assert rig.client.get(path, headers={"Authorization": _basic("dev", "pa55")}
                              ).status_code == 200
    assert set(missing.json()) == {"error", "detail"}  # the JSON shape, not the page


@pytest.mark.parametrize("path", [*PAGES, "/console/api/history"])
def test_foreign_host_and_origin_are_refused(path: str) -> None:
    """A Host that is not the exporter's gets 421 (DNS rebinding), a foreign Origin 403; the
    exporter's own origin passes."""
    with api_rig() as rig:
        assert rig.client.get(path, headers={"Host": "evil.example"}).status_code == 421
        assert rig.client.get(path, headers={"Origin": "http://evil.example"}).status_code == 403
        assert rig.client.get(path, headers={"Origin": "http://testserver"}).status_code == 200


def test_the_console_stays_out_of_the_openapi_description() -> None:
    """/openapi.json lists the API, not the console's page, files and helper routes."""
    with api_rig() as rig:
        paths = rig.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/console")]


# --- the JSON routes ----------------------------------------------------------------------


@contextlib.contextmanager
def _router_app(breakers: list[CircuitBreaker], clock: FakeClock,
                monitor: PerformanceMonitor | None = None,
                **settings: Any) -> Iterator[TestClient]:
    """The console's router alone, on a history driven by ``clock`` and these breakers."""
    app = FastAPI()
    app.include_router(console_router(
        ExporterSettings(**settings), monitor or PerformanceMonitor(registry=CollectorRegistry()),
        history=BreakerHistory(clock=clock), breakers=lambda: breakers))
    with TestClient(app) as client:
        yield client


def _breaker(clock: FakeClock, name: str | None = None) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=2, recovery_timeout=30.0,
                          name=name or f"console-{uuid.uuid4().hex[:8]}", clock=clock,
                          registry=CollectorRegistry())


def _boom() -> None:
    raise ValueError("down")


def test_history_route_counts_calls_failures_and_rejections_per_bucket() -> None:
    """/console/api/history: the first request is the baseline; calls, failures and rejected
    calls made later land in the bucket of the request that saw them, oldest bucket first."""
    clock = FakeClock()
    breaker = _breaker(clock)
    breaker.call(lambda: 1)  # before the first look: not attributed to any bucket
    with _router_app([breaker], clock) as client:
        (first,) = client.get("/console/api/history").json()
        assert first["name"] == breaker.name
        assert first["bucket_seconds"] == 10.0
        assert len(first["calls"]) == 30
        assert first["calls"][-1] is None
        for _ in range(3):
            breaker.call(lambda: 1)
        clock.advance(10.0)
        for _ in range(2):
            with contextlib.suppress(ValueError):
                breaker.call(_boom)
        for _ in range(4):
            with contextlib.suppress(CircuitOpenError):
                breaker.call(lambda: 1)
        response = client.get("/console/api/history")
    (entry,) = response.json()
    assert response.headers["Vigil-Entries"] == "1"
    assert response.headers["Vigil-Untracked"] == "0"
    # Everything since the baseline (3 successes, 2 failures; 4 rejected) is in the bucket
    # of the request that saw it; the bucket of the baseline itself was not observed.
    assert entry["calls"][-2:] == [None, 5]
    assert entry["failures"][-2:] == [None, 2]
    assert entry["rejected"][-2:] == [None, 4]


def test_history_route_stays_within_the_api_byte_budget() -> None:
    """With many breakers and a small exporter.api_max_bytes, the answer keeps whole entries
    within the budget and says it left some out."""
    clock = FakeClock()
    breakers = [_breaker(clock) for _ in range(40)]
    with _router_app(breakers, clock, api_max_bytes=2048) as client:
        response = client.get("/console/api/history")
    assert response.status_code == 200
    assert len(response.content) <= 2048
    assert response.headers["Vigil-Truncated"] == "true"
    assert 0 < int(response.headers["Vigil-Entries"]) < 40


def test_functions_route_lists_monitored_functions_with_their_stats() -> None:
    """/console/api/functions: each @monitor_performance function with its retained calls,
    errors, error rate and duration percentiles in ms; other metric names are not rows."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())

    @monitor_performance("shop.pay", monitor=monitor)
    def pay(fail: bool) -> None:
        if fail:
            raise ValueError("declined")

    for fail in (False, False, True):
        with contextlib.suppress(ValueError):
            pay(fail)
    monitor.record_histogram("alone.duration_ms", 5.0)  # recorded by hand: no function
    monitor.increment_counter("orders.calls")
    with _router_app([], FakeClock(), monitor) as client:
        rows = client.get("/console/api/functions").json()
    assert [row["name"] for row in rows] == ["shop.pay"]
    (row,) = rows
    assert (row["calls"], row["errors"]) == (3, 1)
    assert row["error_rate"] == pytest.approx(1 / 3)
    assert all(isinstance(row[k], float) and row[k] >= 0 for k in ("avg", "p50", "p95", "p99"))


def test_functions_route_stays_within_the_budget_and_computes_lazily() -> None:
    """Many functions and a small budget: the answer fits, says it was cut, and rows past the
    budget are never computed."""
    monitor = PerformanceMonitor(registry=CollectorRegistry())
    for i in range(60):
        monitor_performance(f"fn_{i:02d}", monitor=monitor)(lambda: None)()
    with _router_app([], FakeClock(), monitor, api_max_bytes=1024) as client:
        response = client.get("/console/api/functions")
    assert len(response.content) <= 1024
    assert response.headers["Vigil-Truncated"] == "true"
    asked: list[str] = []

    class Counting:
        def metric_names(self) -> list[str]:
            return monitor.metric_names()

        def get_metric_stats(self, name: str) -> dict[str, float | int | None]:
            asked.append(name)
            return monitor.get_metric_stats(name)

    rows = function_stats(Counting())
    next(rows)
    assert len(asked) == 3  # one function's three names, not sixty's
    assert len(monitored_functions(monitor)) == 60


# --- the sampler, directly --------------------------------------------------------------------


class _Key:
    """A breaker stand-in: weak-referenceable, compared by identity."""


def test_history_rejects_bad_settings_naming_them() -> None:
    """bucket_seconds must be a finite number > 0; buckets and max_breakers whole numbers in
    range; each error names the argument, the value and what is allowed."""
    for kwargs, key in (({"bucket_seconds": 0}, "bucket_seconds"),
                        ({"bucket_seconds": -1.0}, "bucket_seconds"),
                        ({"bucket_seconds": math.nan}, "bucket_seconds"),
                        ({"bucket_seconds": math.inf}, "bucket_seconds"),
                        ({"bucket_seconds": True}, "bucket_seconds"),
                        ({"buckets": 0}, "buckets"), ({"buckets": 2.5}, "buckets"),
                        ({"buckets": 10_001}, "buckets"), ({"max_breakers": 0}, "max_breakers"),
                        ({"max_breakers": True}, "max_breakers")):
        with pytest.raises(ConfigError) as caught:
            BreakerHistory(**kwargs)
        assert caught.value.key == key
        assert "must be" in str(caught.value)


def test_a_gap_leaves_unobserved_buckets_empty_and_drops_what_it_hid() -> None:
    """Buckets no sample reached are None, not 0; the counts that piled up over a gap longer
    than a bucket are attributed to no bucket (they could belong to any)."""
    history = BreakerHistory(bucket_seconds=10, buckets=6)
    key = _Key()
    history.record(0.0, [(key, "db", Reading(0, 0, 0))])
    history.record(5.0, [(key, "db", Reading(4, 1, 0))])
    history.record(45.0, [(key, "db", Reading(100, 50, 9))])  # 4 buckets later
    history.record(47.0, [(key, "db", Reading(101, 50, 10))])
    (entry,) = history.series(49.0)
    assert entry["calls"] == [None, 4, None, None, None, 1]
    assert entry["failures"] == [None, 1, None, None, None, 0]
    assert entry["rejected"] == [None, 0, None, None, None, 1]


def test_a_reset_counts_from_zero_and_a_new_breaker_counts_whole() -> None:
    """A total that went down (counts cleared) counts its new value; a breaker first seen one
    bucket after the previous sample was made since, so all its counts are new."""
    history = BreakerHistory(bucket_seconds=10, buckets=3)
    old, new = _Key(), _Key()
    history.record(0.0, [(old, "db", Reading(10, 2, 0))])
    history.record(3.0, [(old, "db", Reading(2, 0, 1))])  # cleared, then 2 calls, 1 rejected
    history.record(12.0, [(old, "db", Reading(2, 0, 1)), (new, "cache", Reading(7, 1, 0))])
    entries = {e["name"]: e for e in history.series(12.0)}
    assert entries["db"]["calls"] == [None, 2, 0]
    assert entries["db"]["rejected"] == [None, 1, 0]
    assert entries["cache"]["calls"] == [None, None, 7]


def test_breakers_sharing_a_name_add_up() -> None:
    """Two live breakers with one name make one history holding both's calls."""
    history = BreakerHistory()
    a, b = _Key(), _Key()
    history.record(0.0, [(a, "api", Reading(0, 0, 0)), (b, "api", Reading(5, 0, 0))])
    history.record(1.0, [(a, "api", Reading(3, 0, 0)), (b, "api", Reading(9, 0, 0))])
    (entry,) = history.series(1.0)
    assert entry["calls"][-1] == 7


def test_names_are_capped_and_forgotten_after_a_window() -> None:
    """Past max_breakers, new names get no history (counted as untracked); a name not seen
    for a whole window is dropped and makes room."""
    history = BreakerHistory(bucket_seconds=1, buckets=5, max_breakers=2)
    keys = [_Key() for _ in range(3)]
    history.record(0.0, [(k, f"b{i}", Reading(1, 0, 0)) for i, k in enumerate(keys)])
    assert [e["name"] for e in history.series(0.0)] == ["b0", "b1"]
    assert history.untracked == 1
    for t in range(1, 6):  # b0 and b1 vanish; b2 keeps coming
        history.record(float(t), [(keys[2], "b2", Reading(1 + t, 0, 0))])
    assert [e["name"] for e in history.series(5.0)] == ["b2"]
    assert history.untracked == 0


def test_memory_stays_bounded_over_a_long_run() -> None:
    """Ten thousand samples over many windows keep each series at `buckets` entries."""
    history = BreakerHistory(bucket_seconds=1, buckets=4)
    key = _Key()
    for t in range(10_000):
        history.record(float(t), [(key, "db", Reading(t, 0, 0))])
    (entry,) = history.series(9_999.0)
    assert entry["calls"] == [1, 1, 1, 1]


def test_a_breaker_nobody_references_is_not_kept_alive() -> None:
    """The sampler holds breakers weakly: once dropped, a breaker is garbage collected."""
    history = BreakerHistory()
    key = _Key()
    ref = weakref.ref(key)
    history.record(0.0, [(key, "db", Reading(1, 0, 0))])
    del key
    gc.collect()
    assert ref() is None


def test_odd_counts_in_a_snapshot_count_zero() -> None:
    """Outcomes that are missing, negative, booleans, floats or text count 0; never raise."""
    reading = Reading.from_snapshot({"calls": {"success": 3, "slow": -2, "failure": True,
                                               "ignored": "7", "rejected": 1.5}})
    assert reading == Reading(3, 0, 0)
    assert Reading.from_snapshot({}) == Reading(0, 0, 0)
    assert Reading.from_snapshot({"calls": None}) == Reading(0, 0, 0)


def test_concurrent_samples_count_every_call_once() -> None:
    """Samplers racing each other and callers hammering the breaker: the buckets add up to
    exactly the calls made after the first sample (no reading recorded out of order)."""
    clock = FakeClock()
    breaker = _breaker(clock)
    history = BreakerHistory(clock=clock)
    history.sample([breaker])
    calls_each, callers = 2000, 4
    done = threading.Event()
    samples = [0]

    def call() -> None:
        for _ in range(calls_each):
            breaker.call(lambda: None)

    def sample() -> None:
        while not done.is_set():
            history.sample([breaker])
            samples[0] += 1

    workers = [threading.Thread(target=call) for _ in range(callers)]
    samplers = [threading.Thread(target=sample) for _ in range(4)]
    for thread in [*samplers, *workers]:
        thread.start()
    for thread in workers:
        thread.join(30)
    done.set()
    for thread in samplers:
        thread.join(30)
    (entry,) = history.sample([breaker])
    assert samples[0] > 4
    assert sum(v or 0 for v in entry["calls"]) == calls_each * callers
