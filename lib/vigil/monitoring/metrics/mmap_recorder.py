"""The multiprocess recorder: ``vigil_function_*`` as prometheus_client primitives.

Under ``PROMETHEUS_MULTIPROC_DIR`` every value must live in prometheus_client's mmap files so
that ``MultiProcessCollector`` can add the workers up; a custom collector
(:mod:`.collector`) would only show one worker. Slower (a lock per value: five writes a call),
and used only there.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments
from vigil.monitoring.context import current_span as _current_span
from vigil.monitoring.metrics.calls import CallHistory
from vigil.monitoring.metrics.recorder import ERRORS, UNCAPPED, errors_cap

__all__ = ["MultiprocessRecorder"]


class MultiprocessRecorder(CallHistory):
    """One decorated function's ``vigil_function_*`` children on ``registry``."""

    __slots__ = ("calls_child", "duration", "enter", "errors_family", "exit", "name", "now")

    def __init__(self, name: str, retention: int, now: Callable[[], float],
                 registry: CollectorRegistry) -> None:
        super().__init__(retention)
        self.name = name
        self.now = now
        self.duration = instruments.histogram(
            registry, "vigil_function_duration_seconds",
            "Duration of calls to functions decorated with @monitor_performance.",
            ["function"], max_series=UNCAPPED).labels(name)
        self.calls_child = instruments.counter(
            registry, "vigil_function_calls_total",
            "Calls to functions decorated with @monitor_performance.", ["function"],
            max_series=UNCAPPED).labels(name)
        errors_cap(registry)  # the same cap as the single-process path's
        self.errors_family = instruments.counter(
            registry, ERRORS, "Calls that raised, by exception class.",
            ["function", "exception"], keep=("function",))
        running = instruments.gauge(
            registry, "vigil_function_in_progress", "Calls currently running.", ["function"],
            max_series=UNCAPPED).labels(name)
        self.enter: Callable[[], object] = running.inc
        self.exit: Callable[[], object] = running.dec

    def finish(self, seconds: float, error: BaseException | None) -> None:
        """A call ended after ``seconds``, raising ``error`` (or None)."""
        self.exit()
        span = _current_span()
        if span is None:
            self.duration.observe(seconds)
        else:
            self.duration.observe(seconds, exemplar={"trace_id": span.trace_id})
        self.calls_child.inc()
        failed = error is not None and isinstance(error, Exception)
        if failed:
            self.errors_family.labels(self.name, type(error).__name__).inc()
        self.calls.append((self.now(), seconds * 1000.0, failed))
