"""The span record: :class:`Entry`, one traced operation, and the dicts the read API answers.

An entry is built only by :meth:`ExecutionTracer._start <vigil.monitoring.tracing.tracer.
ExecutionTracer._start>`, field by field (no ``__init__``: a Python-level constructor call is a
twentieth of a span). After it ends it is never mutated again, and while it runs its fields are
only reassigned (never changed in place) under its tracer's lock, so a :func:`snapshot` taken
under the lock can be turned into a dict (:func:`as_dict`, :func:`nest`) after releasing it.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from vigil.clock import format_rfc3339
from vigil.monitoring.context import SpanContext

__all__ = ["ACTIVE", "Entry", "Snapshot", "as_dict", "nest", "snapshot"]

ACTIVE = "active"  # the status a running entry shows


class Entry:
    """One traced operation. ``status is None`` while it runs."""

    __slots__ = ("component", "end", "error", "id", "kind", "metadata", "operation", "parent",
                 "parent_id", "recorded", "span", "start", "start_wall", "status", "token")

    id: str  # == span.span_id, kept flat: it is the key of every index
    span: SpanContext
    parent: SpanContext | None  # for the exported span's parent and kind
    parent_id: str | None
    component: str
    operation: str
    metadata: dict[str, Any] | None
    start: float  # clock.monotonic(), for the duration
    start_wall: float  # clock.time(), for the timestamps
    recorded: bool  # False when tracing was disabled at start
    end: float | None  # None while it runs
    status: str | None  # None while it runs
    error: dict[str, Any] | None
    token: Token[SpanContext | None] | None  # while current: what _end restores
    kind: str  # (SPAN_KINDS) set only by a scope given one: read getattr(entry, "kind", None)


# (entry, status, end, error, metadata): the mutable fields read under the lock.
Snapshot = tuple[Entry, str | None, float | None, dict[str, Any] | None, dict[str, Any] | None]


def snapshot(entry: Entry) -> Snapshot:
    """The entry's mutable fields as they are now (call with its tracer's lock held)."""
    return entry, entry.status, entry.end, entry.error, entry.metadata


def as_dict(snap: Snapshot) -> dict[str, Any]:
    """A snapshot as the flat dict of the seed's read API (no ``children``)."""
    entry, status, end, error, metadata = snap
    span = entry.span
    duration = None if end is None else end - entry.start
    return {
        "id": entry.id,
        "trace_id": span.trace_id,
        "parent_id": entry.parent_id,
        "component": entry.component,
        "operation": entry.operation,
        "status": ACTIVE if status is None else status,
        "start": format_rfc3339(entry.start_wall),
        "end": None if duration is None else format_rfc3339(entry.start_wall + duration),
        "duration_ms": None if duration is None else round(duration * 1000, 3),
        "metadata": {} if metadata is None else dict(metadata),
        "error": None if error is None else dict(error),
    }


def nest(nodes: list[tuple[Snapshot, int]]) -> dict[str, Any]:
    """The tree of ``nodes`` (each a snapshot and its parent's index, ``-1`` for the root,
    parents before their children), as dicts with ``children``; returns the root."""
    dicts: list[dict[str, Any]] = []
    for snap, parent in nodes:
        node = as_dict(snap)
        node["children"] = []
        dicts.append(node)
        if parent >= 0:
            dicts[parent]["children"].append(node)
    return dicts[0]
