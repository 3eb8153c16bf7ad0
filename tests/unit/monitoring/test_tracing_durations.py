"""vigil_trace_duration_seconds (vigil.monitoring.tracing.durations): exemplars, shared
registries, and the tracer's inlined count pinned to DurationSeries.count."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.monitoring.test_tracing import DURATION, Rig

from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.monitoring.tracing.durations import Durations, DurationSeries
from vigil.testing import LogCapture

# --- durations ----------------------------------------------------------------------------


def test_duration_observation_carries_the_trace_id_as_exemplar() -> None:
    """The histogram bucket holds an exemplar with the entry's 32-hex trace id."""
    rig = Rig()
    with trace_context("C", "op", tracer=rig.tracer) as trace_id:
        rig.clock.advance(0.02)
    entry = rig.tracer.get_trace(trace_id)
    assert entry is not None
    exemplars = [sample.exemplar for metric in rig.registry.collect()
                 if metric.name == DURATION for sample in metric.samples
                 if sample.name == DURATION + "_bucket" and sample.exemplar is not None]
    assert len(exemplars) == 1
    assert exemplars[0].labels == {"trace_id": entry["trace_id"]}
    assert exemplars[0].value == pytest.approx(0.02)


def bucket_exemplars(registry: CollectorRegistry) -> dict[str, str]:
    """The trace id of each bucket's exemplar of the duration histogram, by ``le``."""
    return {sample.labels["le"]: sample.exemplar.labels["trace_id"]
            for metric in registry.collect() if metric.name == DURATION
            for sample in metric.samples
            if sample.name == DURATION + "_bucket" and sample.exemplar is not None}


def test_exemplars_are_refreshed_at_most_once_a_second_per_bucket() -> None:
    """Within a second a bucket keeps its exemplar; a later or slower entry replaces/adds one."""
    rig = Rig()

    def traced(seconds: float) -> str:
        with trace_context("C", "op", tracer=rig.tracer) as trace_id:
            rig.clock.advance(seconds)
        entry = rig.tracer.get_trace(trace_id)
        assert entry is not None
        return str(entry["trace_id"])

    first = traced(0.02)
    traced(0.02)
    slow = traced(3.0)
    assert bucket_exemplars(rig.registry) == {"0.025": first, "5.0": slow}
    rig.clock.advance(1.0)
    later = traced(0.02)
    assert bucket_exemplars(rig.registry) == {"0.025": later, "5.0": slow}
    assert rig.sample("_count", "C", "op") == 4


def test_two_tracers_share_a_registry() -> None:
    """Two tracers on one registry share the metric families instead of colliding."""
    registry = CollectorRegistry()
    first = ExecutionTracer(registry=registry, logger=LogCapture().logger("vigil.tracing"))
    second = ExecutionTracer(registry=registry, logger=LogCapture().logger("vigil.tracing"))
    first.end_trace(first.start_trace("C", "op"))
    second.end_trace(second.start_trace("C", "op"))
    labels = {"component": "C", "operation": "op", "status": "success"}
    assert registry.get_sample_value(DURATION + "_count", labels) == 2


def test_span_end_counts_as_duration_series_count() -> None:
    """ExecutionTracer._end's written-out count (its hot path) leaves a series exactly as
    DurationSeries.count does for the same durations: buckets, sum, exemplar values and the
    once-a-second exemplar schedule, across buckets and +Inf."""
    rig = Rig()
    reference = DurationSeries(("C", "op", "success"))
    # The first span admits the label set (the slow path); every later one is counted by _end.
    for seconds in (0.003, 0.003, 0.004, 0.2, 0.6, 0.2, 7.0, 1e6, 0.003):
        with trace_context("C", "op", tracer=rig.tracer) as span_id:
            start = rig.clock.monotonic()
            rig.clock.advance(seconds)
        entry = rig.tracer.get_trace(span_id)
        assert entry is not None
        end = rig.clock.monotonic()
        reference.count(end - start, end, entry["trace_id"])
        rig.clock.advance(0.3)  # some spans land within an exemplar's second, some after
    series = rig.tracer._series[("C", "op", "success")]
    assert series.buckets == reference.buckets
    assert series.total == reference.total
    assert series.next_exemplar == reference.next_exemplar
    assert [None if e is None else (e.labels, e.value) for e in series.exemplars] == [
        None if e is None else (e.labels, e.value) for e in reference.exemplars]
    assert sum(reference.buckets) == 9


def test_only_the_first_span_of_a_label_set_takes_the_slow_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a label set has its series, ending a span counts it inside the tracer's lock
    without Durations.observe; a new status is a new label set and takes it once."""
    rig = Rig()
    observed: list[tuple[str, str, str]] = []
    original = Durations.observe

    def spy(self: Durations, key: tuple[str, str, str], *args: float | str) -> None:
        observed.append(key)
        original(self, key, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Durations, "observe", spy)
    for _ in range(3):
        with trace_context("C", "op", tracer=rig.tracer):
            pass
    with pytest.raises(ValueError, match="bad"), trace_context("C", "op", tracer=rig.tracer):
        raise ValueError("bad")
    assert observed == [("C", "op", "success"), ("C", "op", "error")]
    assert rig.sample("_count", "C", "op") == 3
    assert rig.sample("_count", "C", "op", "error") == 1
