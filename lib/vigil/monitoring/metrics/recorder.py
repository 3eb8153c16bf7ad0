"""The primitive ``@monitor_performance`` is a thin use of: a recorder, and :class:`Timing`.

A **recorder** is what one decorated name records into (prometheus_client's shape: the
instrument and its timer are the primitive, the decorator only uses them). It has two steps,
``enter()`` when a call starts and ``finish(seconds, error)`` when it ends, and two
implementations chosen by prometheus_client's mode (:mod:`.functions` picks):
:class:`~.collector.FunctionRecorder` (one process) and
:class:`~.mmap_recorder.MultiprocessRecorder` (``PROMETHEUS_MULTIPROC_DIR``).
:class:`Timing` is the two steps as a context manager, the one way a call is timed; the
decorator's plain-function wrapper spells out the same two steps (see :mod:`.decorator`).

Only ``Exception`` subclasses count as errors: a cancelled task, ``KeyboardInterrupt`` or a
generator closed early is a call, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from types import TracebackType
from typing import Protocol

from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments
from vigil.monitoring.metrics.calls import SeedView

__all__ = ["ERRORS", "UNCAPPED", "Recorder", "Timing", "errors_cap"]

# The function label is not capped in either mode: its values are the names given to
# @monitor_performance in code, not data. The exception label is, per (function, exception)
# pair, with the function kept in the overflow series.
UNCAPPED = 2 ** 63
ERRORS = "vigil_function_errors_total"


class Recorder(Protocol):
    """What one decorated name records into."""

    enter: Callable[[], object]
    """A call starts (a bound C method where it can be: it runs on every call)."""

    def finish(self, seconds: float, error: BaseException | None) -> None:
        """A call that started ended after ``seconds``, raising ``error`` (or None)."""

    def views(self) -> tuple[SeedView, ...]:
        """The seed names (``.duration_ms``, ``.calls``, ``.errors``) answered from its calls."""

    def resize(self, retention: int) -> None:
        """Keep the newest ``retention`` calls from now on."""


class Timing:
    """One call being recorded: ``with Timing(recorder): ...`` (reusable, not re-entrant: one
    object per call)."""

    __slots__ = ("_recorder", "_start")

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._start = 0.0

    def __enter__(self) -> None:
        self._recorder.enter()
        self._start = perf_counter()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._recorder.finish(perf_counter() - self._start, error)


def errors_cap(registry: CollectorRegistry) -> instruments.SeriesCap:
    """The cap on ``vigil_function_errors_total``'s label sets on ``registry`` (one for both
    modes)."""
    return instruments.series_cap(registry, ERRORS, ("function", "exception"),
                                  keep=("function",))
