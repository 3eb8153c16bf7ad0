"""vigil.monitoring.sampling: OpenTelemetry's samplers, decided the SDK's way."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from prometheus_client import CollectorRegistry

from vigil.monitoring.context import SpanContext, continue_trace, format_traceparent
from vigil.monitoring.sampling import SAMPLERS, Sampler, sampler_from_env
from vigil.monitoring.tracing import ExecutionTracer, trace_context

SAMPLED = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", sampled=True)
UNSAMPLED = SAMPLED._replace(sampled=False)
TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(("name", "root", "under_sampled", "under_unsampled"), [
    ("parentbased_always_on", True, True, False),
    ("parentbased_always_off", False, True, False),
    ("always_on", True, True, True),
    ("always_off", False, False, False),
])
def test_each_sampler_decides_as_opentelemetry_documents(
        name: str, root: bool, under_sampled: bool, under_unsampled: bool) -> None:
    """parentbased_* follow the parent's flag and decide roots; the others ignore parents."""
    sampler = Sampler(name)
    assert sampler.sample(None, TRACE) is root
    assert sampler.sample(SAMPLED, SAMPLED.trace_id) is under_sampled
    assert sampler.sample(UNSAMPLED, UNSAMPLED.trace_id) is under_unsampled


def test_the_ratio_matches_the_sdks_decision_for_the_same_trace_ids() -> None:
    """traceidratio reads the low 64 bits as TraceIdRatioBased does: same ids, same answer."""
    rng = random.Random(7)
    ratio = 0.25
    ours, theirs = Sampler("traceidratio", ratio), TraceIdRatioBased(ratio)
    ids = [rng.getrandbits(128) for _ in range(2000)]
    mine = [ours.sample(None, format(i, "032x")) for i in ids]
    sdk = [theirs.should_sample(None, i, "x").decision is Decision.RECORD_AND_SAMPLE
           for i in ids]
    assert mine == sdk
    assert 400 < sum(mine) < 600


def test_parentbased_ratio_follows_parents_and_samples_roots_by_ratio() -> None:
    """parentbased_traceidratio with ratio 0 samples no root but keeps a sampled parent's."""
    sampler = Sampler("parentbased_traceidratio", 0.0)
    assert sampler.sample(None, TRACE) is False
    assert sampler.sample(SAMPLED, SAMPLED.trace_id) is True


def test_env_reads_the_sampler_and_its_argument() -> None:
    """OTEL_TRACES_SAMPLER (any case) and OTEL_TRACES_SAMPLER_ARG make the sampler."""
    assert sampler_from_env({}) == Sampler()
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "Always_Off"}) == Sampler("always_off")
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "traceidratio",
                             "OTEL_TRACES_SAMPLER_ARG": "0.1"}) == Sampler("traceidratio", 0.1)


def test_bad_variables_warn_with_name_value_and_choices_and_fall_back() -> None:
    """An unknown sampler or a ratio out of 0..1 is named in a warning; as the SDK does,
    the default sampler or ratio 1.0 is used instead of stopping the application."""
    said: list[str] = []
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "sometimes"}, said.append) == Sampler()
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "traceidratio",
                             "OTEL_TRACES_SAMPLER_ARG": "1.5"}, said.append) == Sampler(
        "traceidratio", 1.0)
    assert "OTEL_TRACES_SAMPLER: got 'sometimes'" in said[0]
    assert all(name in said[0] for name in SAMPLERS)
    assert "OTEL_TRACES_SAMPLER_ARG: got '1.5'" in said[1]


def test_a_sampler_refuses_bad_arguments() -> None:
    """Built in code, an unknown name or a ratio out of range is a ValueError naming it."""
    with pytest.raises(ValueError, match="'maybe'"):
        Sampler("maybe")
    with pytest.raises(ValueError, match="2"):
        Sampler("traceidratio", 2)


def test_the_tracer_follows_otel_traces_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_TRACES_SAMPLER=always_off a root is unsampled (traceparent 00) yet kept
    locally with its ids; parentbased_always_on (the default) follows the caller's flag."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    off = ExecutionTracer(registry=CollectorRegistry())
    with trace_context("C", "root", tracer=off) as root_id:
        header = format_traceparent()
    assert header is not None
    assert header.endswith(f"-{root_id}-00")
    assert off.get_trace(root_id) is not None
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    default = ExecutionTracer(registry=CollectorRegistry())
    with continue_trace(f"00-{TRACE}-00f067aa0ba902b7-00"), \
            trace_context("C", "child", tracer=default):
        header = format_traceparent()
    assert header is not None
    assert header.endswith("-00")
    with trace_context("C", "root", tracer=default):
        header = format_traceparent()
    assert header is not None
    assert header.endswith("-01")
