"""vigil.monitoring.instruments: shared get-or-create metrics with capped label sets."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments


def test_same_name_returns_the_same_metric() -> None:
    """Asking twice for one metric on one registry shares it instead of colliding."""
    registry = CollectorRegistry()
    first = instruments.counter(registry, "vigil_x_total", "doc", ["a"])
    second = instruments.counter(registry, "vigil_x_total", "doc", ["a"])
    assert first is second
    first.labels("1").inc()
    second.labels("1").inc()
    assert registry.get_sample_value("vigil_x_total", {"a": "1"}) == 2


def test_separate_registries_get_separate_metrics() -> None:
    """The cache is per registry: another registry gets its own metric."""
    one, two = CollectorRegistry(), CollectorRegistry()
    assert instruments.gauge(one, "g", "doc") is not instruments.gauge(two, "g", "doc")


def test_kind_or_label_mismatch_is_an_error() -> None:
    """The same name as another kind, or with other labels, raises a clear ValueError."""
    registry = CollectorRegistry()
    instruments.counter(registry, "c_total", "doc", ["a"])
    with pytest.raises(ValueError, match="already a counter; it cannot also be a gauge"):
        instruments.gauge(registry, "c_total", "doc", ["a"])
    with pytest.raises(ValueError, match=r"already has labels \['a'\]; got \['b'\]"):
        instruments.counter(registry, "c_total", "doc", ["b"])


def test_labels_past_the_cap_go_to_other_and_are_counted() -> None:
    """Beyond max_series, values share one 'other' child and vigil_dropped_series_total grows."""
    registry = CollectorRegistry()
    family = instruments.counter(registry, "req_total", "doc", ["path", "code"], max_series=2)
    for path in ("/a", "/b", "/c", "/d"):
        family.labels(path, 200).inc()
    family.labels("/a", 200).inc()
    assert family.series_count() == 2
    assert registry.get_sample_value("req_total", {"path": "/a", "code": "200"}) == 2
    assert registry.get_sample_value("req_total", {"path": "other", "code": "other"}) == 2
    assert registry.get_sample_value("vigil_dropped_series_total", {"metric": "req_total"}) == 2


def test_histogram_uses_given_buckets() -> None:
    """A histogram family is created with the buckets asked for."""
    registry = CollectorRegistry()
    family = instruments.histogram(registry, "h_ms", "doc", buckets=instruments.MILLISECOND_BUCKETS)
    family.metric.observe(3)
    assert registry.get_sample_value("h_ms_bucket", {"le": "5.0"}) == 1
    assert registry.get_sample_value("h_ms_bucket", {"le": "1.0"}) == 0


def test_keep_labels_stay_in_the_overflow_series() -> None:
    """A kept label (from code, not data) keeps its value in the overflow series."""
    registry = CollectorRegistry()
    family = instruments.counter(registry, "calls_total", "doc", ["function", "kind"],
                                 max_series=1, keep=("function",))
    family.labels("f", "a").inc()
    family.labels("f", "b").inc()
    family.labels("g", "c").inc()
    assert registry.get_sample_value("calls_total", {"function": "f", "kind": "other"}) == 1
    assert registry.get_sample_value("calls_total", {"function": "g", "kind": "other"}) == 1
    assert registry.get_sample_value("vigil_dropped_series_total",
                                     {"metric": "calls_total"}) == 2


def test_keep_must_name_a_label() -> None:
    """keep= naming a label the metric does not have is a ValueError naming both."""
    with pytest.raises(ValueError, match=r"keep=\['nope'\] are not among its labels \['a'\]"):
        instruments.counter(CollectorRegistry(), "k_total", "doc", ["a"], keep=("nope",))


def test_one_cap_per_metric_name_on_a_registry() -> None:
    """series_cap() gives every path recording one metric the same cap object."""
    registry = CollectorRegistry()
    cap = instruments.series_cap(registry, "m_total", ["a"], max_series=1)
    assert instruments.series_cap(registry, "m_total", ["a"]) is cap
    family = instruments.counter(registry, "m_total", "doc", ["a"])
    assert family.max_series == 1
    assert cap.admit(("x",))
    assert not cap.admit(("y",))
    family.labels("y").inc()  # refused by the shared cap: the overflow series
    assert registry.get_sample_value("m_total", {"a": "other"}) == 1
