"""The seed's read side: statistics and record dicts over a name's retained records.

``get_metric_stats`` answers ``count, sum, min, max, avg, p50, p95, p99`` over the records
still retained (percentiles interpolate between ranks like numpy's default ``linear`` method);
``get_all_metrics`` lists them as ``{"timestamp", "value", "tags"}`` dicts. Pure functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from vigil.monitoring.metrics.series import Record

__all__ = ["as_dicts", "summarize"]

_PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))


def summarize(records: Iterable[Record]) -> dict[str, float | int | None]:
    """The seed's statistics of ``records``; no records give ``count`` 0 and ``None`` for the
    rest."""
    values = sorted(v for _, v, _ in records)
    if not values:
        return {"count": 0, "sum": 0.0, "min": None, "max": None, "avg": None,
                "p50": None, "p95": None, "p99": None}
    total = sum(values)
    stats: dict[str, float | int | None] = {
        "count": len(values), "sum": total, "min": values[0], "max": values[-1],
        "avg": total / len(values)}
    for key, pct in _PERCENTILES:
        stats[key] = _percentile(values, pct)
    return stats


def as_dicts(records: Iterable[Record]) -> list[dict[str, Any]]:
    """``records`` as ``get_all_metrics`` lists them (tags ``{}`` when there were none)."""
    return [{"timestamp": ts, "value": v, "tags": dict(tags) if tags else {}}
            for ts, v, tags in records]


def _percentile(sorted_values: list[float], pct: int) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    # "inclusive" interpolates between ranks like numpy's default (linear) method.
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[pct - 1]
