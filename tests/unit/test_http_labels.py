"""vigil._http: the request metrics' bounded labels and the parent a server span continues."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from vigil._http import (
    DURATION,
    DURATION_HELP,
    REQUESTS,
    REQUESTS_HELP,
    UNMATCHED_ROUTE,
    HttpMetrics,
    method_label,
    server_parent,
)
from vigil.monitoring import instruments
from vigil.monitoring.context import SpanContext, use_span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE = f"00-{TRACE}-00f067aa0ba902b7-01"
LIB = str(Path(__file__).resolve().parents[2] / "lib")


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                    "OPTIONS", "TRACE", "PATCH"])
def test_standard_methods_are_their_own_label(method: str) -> None:
    """Each of the nine standard methods is a label value of its own."""
    assert method_label(method) == method


@pytest.mark.parametrize("method", ["get", "BREW", "PROPFIND", "", None, b"GET"])
def test_other_methods_fold_into_other(method: object) -> None:
    """Any other method (case matters in HTTP) and non-text values are "other"."""
    assert method_label(method) == "other"


def test_record_counts_and_times_one_request() -> None:
    """record() adds one to the counter and one observation in seconds to the histogram."""
    registry = CollectorRegistry()
    HttpMetrics(registry).record("GET", "/items/{item_id}", "200", 0.25)
    assert registry.get_sample_value(
        REQUESTS, {"method": "GET", "route": "/items/{item_id}", "status": "200"}) == 1
    labels = {"method": "GET", "route": "/items/{item_id}"}
    assert registry.get_sample_value(DURATION + "_sum", labels) == 0.25
    assert registry.get_sample_value(DURATION + "_bucket", {**labels, "le": "0.25"}) == 1
    assert registry.get_sample_value(DURATION + "_bucket", {**labels, "le": "0.1"}) == 0


@pytest.mark.parametrize("route", [None, ""])
def test_missing_route_is_the_unmatched_value(route: str | None) -> None:
    """A request without a route is counted under route="<unmatched>"."""
    registry = CollectorRegistry()
    HttpMetrics(registry).record("GET", route, "404", 0.0)
    assert registry.get_sample_value(
        REQUESTS, {"method": "GET", "route": UNMATCHED_ROUTE, "status": "404"}) == 1


def test_help_texts_and_buckets() -> None:
    """Both families carry their HELP text and the histogram uses SECOND_BUCKETS."""
    registry = CollectorRegistry()
    HttpMetrics(registry).record("GET", "/", "200", 0.0)
    families = {family.name: family for family in registry.collect()}
    assert families["vigil_http_requests"].documentation == REQUESTS_HELP
    assert families[DURATION].documentation == DURATION_HELP
    bounds = [float(s.labels["le"]) for s in families[DURATION].samples
              if s.name.endswith("_bucket")]
    assert bounds[:-1] == list(instruments.SECOND_BUCKETS)


def test_two_middlewares_share_the_families() -> None:
    """Two HttpMetrics on one registry count into the same series, without a clash."""
    registry = CollectorRegistry()
    HttpMetrics(registry).record("GET", "/", "200", 0.0)
    HttpMetrics(registry).record("GET", "/", "200", 0.0)
    assert registry.get_sample_value(
        REQUESTS, {"method": "GET", "route": "/", "status": "200"}) == 2


def test_series_cap_keeps_the_method_readable() -> None:
    """Past the series cap, records go to one overflow series whose method is still shown."""
    registry = CollectorRegistry()
    instruments.counter(registry, REQUESTS, REQUESTS_HELP, ("method", "route", "status"),
                        max_series=2, keep=("method",))
    metrics = HttpMetrics(registry)
    for n in range(5):
        metrics.record("POST", f"/r{n}", "200", 0.0)
    assert registry.get_sample_value(
        REQUESTS, {"method": "POST", "route": "other", "status": "other"}) == 3
    assert registry.get_sample_value(
        "vigil_dropped_series_total", {"metric": REQUESTS}) == 3


def test_traceparent_is_continued() -> None:
    """A valid traceparent (with its tracestate) is the parent to continue."""
    parent = server_parent({"traceparent": REMOTE, "tracestate": "vendor=1"})
    assert parent == SpanContext(TRACE, "00f067aa0ba902b7", True, True, "vendor=1")


@pytest.mark.parametrize("headers", [{}, {"traceparent": "garbage"},
                                     {"traceparent": f"{REMOTE},{REMOTE}"}])
def test_no_valid_traceparent_keeps_the_context(headers: dict[str, str]) -> None:
    """No header, an invalid one, or two joined: nothing to continue."""
    assert server_parent(headers) is None


def test_current_span_of_the_same_trace_stays_the_parent() -> None:
    """Under a span of the incoming trace (an outer middleware's), that span stays the parent."""
    with use_span(SpanContext(TRACE, "1111111111111111")):
        assert server_parent({"traceparent": REMOTE}) is None


def test_current_span_of_another_trace_gives_way() -> None:
    """Under a span of some other trace, the incoming traceparent is still continued."""
    with use_span(SpanContext("a" * 32, "1111111111111111")):
        parent = server_parent({"traceparent": REMOTE})
    assert parent is not None
    assert parent.trace_id == TRACE


@pytest.mark.parametrize("module", ["vigil._http", "vigil.asgi", "vigil.wsgi"])
def test_all_is_sorted_and_resolves(module: str) -> None:
    """Each module's __all__ is in sorted() order and every name in it exists."""
    imported = importlib.import_module(module)
    assert imported.__all__ == sorted(imported.__all__)
    assert all(hasattr(imported, name) for name in imported.__all__)


def test_the_middlewares_import_neither_starlette_nor_fastapi() -> None:
    """vigil.asgi and vigil.wsgi work with any framework: they import none."""
    code = ("import sys, vigil.asgi, vigil.wsgi; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('starlette', 'fastapi', 'flask', 'django', 'werkzeug')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": LIB})
    assert result.stdout.strip() == "[]"
