"""vigil's current span and OpenTelemetry's, kept as one (see :mod:`vigil.monitoring.context`).

Imported by :mod:`vigil.monitoring.context` only once ``opentelemetry.trace`` is in
``sys.modules``, so it may import OpenTelemetry's API freely. It uses the API's public functions
only (``opentelemetry.context.attach/detach``, ``trace.set_span_in_context/get_current_span``),
so it follows whatever runtime context ``OTEL_PYTHON_CONTEXT`` selects.

A vigil span is put in OpenTelemetry's context as a :class:`VigilSpan`, a non-recording span
(OpenTelemetry's own kind for "a span that lives elsewhere"): OpenTelemetry spans started under
it take its trace id, its span id as their parent, its sampled flag (for the parent-based
samplers) and its ``tracestate``. Converting ids to OpenTelemetry's integers is done only when
something asks, so a vigil span costs OpenTelemetry a context entry and nothing more.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, TraceFlags, TraceState
from opentelemetry.trace import SpanContext as OtelSpanContext

from vigil.monitoring.context import SpanContext

__all__ = ["VigilSpan", "current", "enter", "from_otel", "leave", "to_otel"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)


def to_otel(span: SpanContext) -> OtelSpanContext:
    """``span`` as an OpenTelemetry ``SpanContext`` (integer ids, flags, trace state)."""
    state = TraceState.from_header([span.tracestate]) if span.tracestate else TraceState()
    return OtelSpanContext(int(span.trace_id, 16), int(span.span_id, 16), is_remote=span.remote,
                           trace_flags=_SAMPLED if span.sampled else _UNSAMPLED,
                           trace_state=state)


def from_otel(context: OtelSpanContext) -> SpanContext:
    """An OpenTelemetry ``SpanContext`` as vigil's (hex ids)."""
    return SpanContext(format(context.trace_id, "032x"), format(context.span_id, "016x"),
                       sampled=context.trace_flags.sampled, remote=context.is_remote,
                       tracestate=context.trace_state.to_header())


class VigilSpan(NonRecordingSpan):
    """A vigil span in OpenTelemetry's context; its OpenTelemetry ids are made on first use."""

    def __init__(self, span: SpanContext) -> None:  # NonRecordingSpan's would need the ids now
        self.vigil = span
        self._context: OtelSpanContext | None = None  # type: ignore[assignment]

    def get_span_context(self) -> OtelSpanContext:
        context = self._context
        if context is None:  # two threads may both build it: the same value, no harm
            context = self._context = to_otel(self.vigil)
        return context

    def __repr__(self) -> str:
        return f"VigilSpan({self.vigil!r})"


def enter(span: SpanContext | None) -> object:
    """Make ``span`` OpenTelemetry's current span (``None``: no span, as vigil's side has none);
    returns the token :func:`leave` takes."""
    current = VigilSpan(span) if span is not None else otel_trace.INVALID_SPAN
    return otel_context.attach(otel_trace.set_span_in_context(current))


def leave(token: object) -> None:
    """Undo :func:`enter`."""
    otel_context.detach(token)  # type: ignore[arg-type]


def current(fallback: SpanContext | None) -> SpanContext | None:
    """OpenTelemetry's current span as vigil's, or ``fallback`` (vigil's own) when it has none."""
    span = otel_trace.get_current_span()
    if type(span) is VigilSpan:
        return span.vigil
    context = span.get_span_context()
    if not context.is_valid:
        return fallback
    return from_otel(context)
