"""Execution tracing: timed, nested entries kept in bounded memory, with W3C Trace Context ids.

The seed's API::

    tracer = ExecutionTracer()
    trace_id = tracer.start_trace("Orchestrator", "process_request", metadata={"user_id": "123"})
    ...
    tracer.end_trace(trace_id, status="success")

    @trace_execution("MyComponent", "my_operation")
    async def my_operation(): ...

    with trace_context("MyComponent", "operation") as trace_id:
        ...

**Ids.** What the seed calls a "trace id" (returned by :meth:`ExecutionTracer.start_trace`, yielded
by :func:`trace_context`, accepted by ``end_trace``, ``get_trace_tree`` and ``parent_trace_id``) is
the entry's W3C **span id**: 16 lowercase hex digits, unique per entry. Every entry also carries the
W3C ``trace_id`` (32 hex digits) shared by its whole tree, which is what log lines, exemplars and a
``traceparent`` header carry, so vigil's entries join OpenTelemetry traces. Entry dicts have both:
``id`` (the span id) and ``trace_id``.

**Nesting.** :func:`trace_context` and :func:`trace_execution` make their entry the current span
(a :mod:`contextvars` variable, see :mod:`vigil.monitoring.context`), so anything traced inside
becomes its child without passing ids, across ``await`` and into tasks made by
``asyncio.create_task``. Threads and executors start with an empty context: wrap the callable with
:func:`vigil.monitoring.context.bind_context`. Inside ``continue_trace(headers)`` new entries join
the remote caller's trace. :meth:`ExecutionTracer.start_trace` is the manual API: its parent is
``parent_trace_id`` if given, else the current span, and it does not change the current span.

**Outcome.** ``status`` is ``"active"`` while an entry runs, then what ``end_trace`` was given
(``"success"`` by default). A ``trace_context``/``trace_execution`` body that raises ends with
``"error"`` and ``error={"type": <class name>, "message": str(exc)}`` and the exception propagates;
``asyncio.CancelledError`` ends with ``"cancelled"``; a generator closed early by its consumer
(``GeneratorExit``) is a ``"success"``.

**Bounded memory.** Completed entries live in a ring buffer of ``trace_retention`` entries (the
oldest leaves first, from every index). Entries started and never ended are capped at
``max_active_traces``: past it the oldest active entry is dropped, counted in
``vigil_traces_dropped_total{reason="active_cap"}`` and reported by a warning at most once a minute.

**Metrics.** Each ended entry is observed in ``vigil_trace_duration_seconds{component,operation,
status}`` with an exemplar ``{"trace_id": <32 hex>}``. The label values follow :mod:`vigil.text`'s
rule (a lone surrogate becomes U+FFFD, a component that is not a ``str`` its text or
``<unprintable TypeName>``), so no component, operation or status can make ``/metrics`` fail.
An exemplar costs more than the observation itself and Prometheus only keeps the latest one per
bucket, so each bucket of a series takes at most one exemplar per second.

**OpenTelemetry, sampling, export.** In a process that imports OpenTelemetry the current span is
shared with its context, so vigil's entries and OpenTelemetry's spans nest in one trace (see
:mod:`vigil.monitoring.context`). Each entry has the W3C sampled flag: roots are decided by
``OTEL_TRACES_SAMPLER``, children take their parent's (see :mod:`vigil.monitoring.sampling`);
an unsampled entry is still stored, counted and logged with its ids. Sampled entries are sent
over OTLP/HTTP when ``monitoring.tracing.export`` says so (see :mod:`vigil.monitoring.otlp`);
:meth:`ExecutionTracer.get_trace_by_trace_id` finds a whole trace by its 32-hex id.

**Disabled** (``monitoring.tracing.enabled: false``): ids are still made and the current span still
set, so logs stay correlated, but nothing is stored and nothing is observed; ending an id then says
nothing. Entries started while enabled still end normally.

**Shape**, one module per job:

* :mod:`.entry` the span record (:class:`~.entry.Entry`) and the dicts the read API answers;
* :mod:`.outcome` how a body's exception becomes the entry's status and error;
* :mod:`.durations` ``vigil_trace_duration_seconds``, counted under the tracer's lock;
* :mod:`.tracer` :class:`ExecutionTracer`: its bounded buffers and eviction, the seed's API, and
  the one start/end pair (``_start``/``_end``) every form below goes through;
* :mod:`.scope` :class:`TraceScope` and :func:`trace_context`;
* :mod:`.decorators` :func:`trace_execution` and its function and coroutine forms;
* :mod:`.generators` its generator and async generator forms;
* :mod:`.shared` the shared :data:`execution_tracer`, built on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil._lazy import shared_objects
from vigil.monitoring.tracing.decorators import trace_execution
from vigil.monitoring.tracing.entry import ACTIVE as ACTIVE
from vigil.monitoring.tracing.entry import Entry
from vigil.monitoring.tracing.scope import SPAN_KINDS, TraceScope, trace_context
from vigil.monitoring.tracing.shared import build_shared_tracer
from vigil.monitoring.tracing.tracer import ExecutionTracer, WarningLogger

__all__ = [
    "ExecutionTracer",
    "SPAN_KINDS",
    "TraceScope",
    "WarningLogger",
    "execution_tracer",
    "trace_context",
    "trace_execution",
]

_Entry = Entry  # its name when tracing was one module (kept for code that imported it)

execution_tracer: ExecutionTracer
"""The tracer ``trace_context`` and ``trace_execution`` use by default; follows ``configure()``.
Built on first use (see :mod:`vigil._lazy` and :mod:`.shared`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"execution_tracer": build_shared_tracer})
