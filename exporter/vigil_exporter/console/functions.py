"""Calls, errors and latency percentiles per ``@monitor_performance`` function, from the local
stats: the console's functions table.

``@monitor_performance("name")`` records three seed names, ``name.duration_ms``,
``name.calls`` and ``name.errors``, from the moment it decorates; a function is a name with
all three. The figures are :meth:`~vigil.monitoring.metrics.PerformanceMonitor.get_metric_stats`
over the records each name retains (its last ``metrics.retention_count`` calls), not totals
since start (those are ``vigil_function_calls_total`` on ``/metrics``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["MAX_FUNCTIONS", "function_stats", "monitored_functions"]

MAX_FUNCTIONS = 500  # rows computed per answer (each sorts up to retention_count records)
_SUFFIXES = (".duration_ms", ".calls", ".errors")


class _Monitor(Protocol):
    def metric_names(self) -> list[str]: ...

    def get_metric_stats(self, name: str) -> dict[str, float | int | None]: ...


def monitored_functions(monitor: _Monitor) -> list[str]:
    """The decorated function names the monitor knows, sorted."""
    names = set(monitor.metric_names())
    duration = _SUFFIXES[0]
    return sorted(name[:-len(duration)] for name in names if name.endswith(duration)
                  and all(name[:-len(duration)] + suffix in names for suffix in _SUFFIXES[1:]))


def function_stats(monitor: _Monitor, limit: int = MAX_FUNCTIONS) -> Iterator[dict[str, Any]]:
    """One row per monitored function, by name (at most ``limit``): ``name``, ``calls``,
    ``errors``, ``error_rate`` (0..1, None without calls) and the duration's ``avg``, ``p50``,
    ``p95``, ``p99`` and ``max`` in milliseconds. Lazy: rows past an answer's byte budget are
    never computed."""
    for name in monitored_functions(monitor)[:limit]:
        durations = monitor.get_metric_stats(name + ".duration_ms")
        calls = int(monitor.get_metric_stats(name + ".calls")["count"] or 0)
        errors = int(monitor.get_metric_stats(name + ".errors")["count"] or 0)
        yield {"name": name, "calls": calls, "errors": errors,
               "error_rate": errors / calls if calls else None,
               **{key: durations[key] for key in ("avg", "p50", "p95", "p99", "max")}}
