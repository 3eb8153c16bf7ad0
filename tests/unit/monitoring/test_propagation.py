"""vigil.monitoring.propagation: the traceparent and tracestate headers, continue_trace."""

from __future__ import annotations

from vigil.monitoring.context import SpanContext, current_span, use_span
from vigil.monitoring.propagation import (
    continue_trace,
    extract_traceparent,
    format_traceparent,
    inject_traceparent,
    parse_traceparent,
    parse_tracestate,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_traceparent_round_trip() -> None:
    """A span formats to the spec's header and parses back to the same ids."""
    header = format_traceparent(SpanContext(TRACE, SPAN))
    assert header == f"00-{TRACE}-{SPAN}-01"
    parsed = parse_traceparent(header)
    assert parsed == SpanContext(TRACE, SPAN, sampled=True, remote=True)


def test_invalid_traceparents_are_ignored() -> None:
    """Malformed, all-zero and version-ff headers parse to None, as the spec requires."""
    for header in ("", "garbage", f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{'0' * 16}-01",
                   f"ff-{TRACE}-{SPAN}-01", f"00-{TRACE}-{SPAN}-01-extra",
                   f"00-{TRACE[:-1]}-{SPAN}-01"):
        assert parse_traceparent(header) is None, header


def test_future_versions_with_extra_fields_are_accepted() -> None:
    """A higher version may append fields; the known prefix is still read."""
    parsed = parse_traceparent(f"01-{TRACE}-{SPAN}-00-whatever")
    assert parsed is not None
    assert parsed.sampled is False


def test_inject_and_extract_headers() -> None:
    """inject writes the current span; extract reads it whatever the header's case."""
    headers: dict[str, str] = {}
    with use_span(SpanContext(TRACE, SPAN)):
        inject_traceparent(headers)
    assert headers == {"traceparent": f"00-{TRACE}-{SPAN}-01"}
    assert extract_traceparent({"Traceparent": headers["traceparent"]}) == SpanContext(
        TRACE, SPAN, remote=True)
    assert inject_traceparent({}) == {}


def test_continue_trace_sets_the_remote_parent() -> None:
    """Inside continue_trace the current span is the caller's; outside it is gone."""
    with continue_trace({"traceparent": f"00-{TRACE}-{SPAN}-01"}) as remote:
        assert current_span() == remote
        assert remote is not None
        assert remote.trace_id == TRACE
    assert current_span() is None
    with continue_trace("not a header") as nothing:
        assert nothing is None


def test_tracestate_travels_with_the_traceparent() -> None:
    """A request's tracestate is kept on the remote span, inherited by children and written
    back out by inject_traceparent with the real sampled flag."""
    headers = {"Traceparent": f"00-{TRACE}-{SPAN}-00", "TraceState": "congo=t61rcWkgMzE, rojo=00f0"}
    with continue_trace(headers) as remote:
        assert remote is not None
        assert remote.tracestate == "congo=t61rcWkgMzE,rojo=00f0"
        out = inject_traceparent({})
    assert out == {"traceparent": f"00-{TRACE}-{SPAN}-00",
                   "tracestate": "congo=t61rcWkgMzE,rojo=00f0"}


def test_an_invalid_tracestate_is_dropped_whole() -> None:
    """A member breaking the grammar, a key twice or more than 32 members drop the header;
    past 512 characters the last members are left out."""
    assert parse_tracestate("Upper=1") == ""
    assert parse_tracestate("a=1,a=2") == ""
    assert parse_tracestate("a=1,b") == ""
    assert parse_tracestate(",".join(f"k{i}=v" for i in range(33))) == ""
    assert parse_tracestate("vendor@tenant=x,  ,b=2") == "vendor@tenant=x,b=2"
    long = ",".join(f"k{i:02d}={'v' * 40}" for i in range(20))
    kept = parse_tracestate(long)
    assert len(kept) <= 512
    assert long.startswith(kept)
    assert kept.count(",") < 19
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01", "bad state") == SpanContext(
        TRACE, SPAN, sampled=True, remote=True)


def test_a_non_string_header_value_is_ignored() -> None:
    """A traceparent that is not a string (a bytes value, a number) parses to None."""
    assert extract_traceparent({"traceparent": b"00-x"}) is None
    assert parse_traceparent(7) is None  # type: ignore[arg-type]
