"""vigil's ended entries as the OpenTelemetry SDK's ``ReadableSpan`` (see the package's "What a
span carries"), and the SDK resource they are sent under. Used by the export thread only: the
SDK is imported when a :class:`Converter` is built, never at ``import vigil``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vigil.config import get_config
from vigil.monitoring.logs import redact
from vigil.text import safe_text

if TYPE_CHECKING:
    from vigil.monitoring.tracing.entry import Entry

__all__ = ["Converter", "attribute_value", "resource_for_service"]

_VERSION = "0.1.0"  # vigil's version, as the instrumentation scope's (vigil.__version__)


def resource_for_service(service: str) -> Any:
    """The SDK's resource (``Resource.create``), ``service.name`` = ``service`` when given.

    ``Resource.create`` runs its detectors on a thread pool, which cannot start once the
    interpreter is exiting (a short script's spans are often first exported then): there the
    same attributes are merged by hand from the SDK's defaults and ``OTEL_*`` variables.
    """
    from opentelemetry.sdk.resources import (
        _DEFAULT_RESOURCE,
        OTELResourceDetector,
        Resource,
    )
    given = {"service.name": service} if service else {}
    try:
        return Resource.create(given)
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        resource = _DEFAULT_RESOURCE.merge(OTELResourceDetector().detect()).merge(
            Resource(given))
        if not resource.attributes.get("service.name"):
            resource = resource.merge(Resource({"service.name": "unknown_service"}))
        return resource


class Converter:
    """vigil entries as the SDK's ``ReadableSpan``; built by the export thread (imports the SDK)."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import (
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
            TraceState,
        )

        self._event = Event
        self._span = ReadableSpan
        self._context = SpanContext
        self._flags = TraceFlags(TraceFlags.SAMPLED)
        self._state = TraceState
        self._server, self._internal = SpanKind.SERVER, SpanKind.INTERNAL
        self._kinds = {kind.name.lower(): kind for kind in SpanKind}
        self._status, self._error = Status, StatusCode.ERROR
        self._unset = Status(StatusCode.UNSET)
        self._scope = InstrumentationScope("vigil", _VERSION)
        from opentelemetry.attributes import BoundedAttributes

        self._bounded = BoundedAttributes
        self._empty_state = TraceState()
        limits = SpanLimits()
        self._max_attributes = limits.max_span_attributes
        self._max_length = limits.max_span_attribute_length

    def spans(self, entries: Sequence[Entry], resource: Any) -> list[Any]:
        keys = get_config().monitoring.logging.redact_keys
        return [self.span(entry, resource, keys) for entry in entries]

    def span(self, entry: Entry, resource: Any, redact_keys: Sequence[str]) -> Any:
        """The SDK's ``ReadableSpan`` for one ended entry."""
        context, parent_context = self._contexts(entry)
        start = int(entry.start_wall * 1e9)
        end = start + int(((entry.end or entry.start) - entry.start) * 1e9)
        status_text = safe_text(entry.status or "")
        component, operation = safe_text(entry.component), safe_text(entry.operation)
        status, events = self._outcome(entry.error, status_text, end)
        parent = entry.parent
        given = getattr(entry, "kind", None)  # set only by a scope given a kind
        kind = (self._kinds[given] if given is not None
                else self._server if parent is not None and parent.remote else self._internal)
        return self._span(
            name=f"{component}.{operation}", context=context, parent=parent_context,
            resource=resource,
            attributes=self._attributes(entry, redact_keys, component, operation, status_text),
            events=events, kind=kind, status=status, start_time=start, end_time=end,
            instrumentation_scope=self._scope)

    def _contexts(self, entry: Entry) -> tuple[Any, Any]:
        """The span's own SpanContext and its parent's (``None`` for a root)."""
        span = entry.span
        state = (self._state.from_header([span.tracestate]) if span.tracestate
                 else self._empty_state)
        trace_id = int(span.trace_id, 16)
        context = self._context(trace_id, int(span.span_id, 16), False, self._flags, state)
        parent = entry.parent
        parent_context = None if parent is None else self._context(
            trace_id, int(parent.span_id, 16), parent.remote,
            self._flags if parent.sampled else type(self._flags)(0), state)
        return context, parent_context

    def _attributes(self, entry: Entry, redact_keys: Sequence[str], component: str,
                    operation: str, status_text: str) -> Any:
        """The redacted metadata as attributes, plus vigil's own, within the SDK's limits."""
        values: dict[str, Any] = {}
        if entry.metadata:
            for key, value in redact(entry.metadata, tuple(k.lower() for k in redact_keys)).items():
                converted = attribute_value(value)
                if converted is not None:
                    values[safe_text(key)] = converted
        values["vigil.component"] = component
        values["vigil.operation"] = operation
        if status_text != "success":  # success is the span status UNSET already says
            values["vigil.status"] = status_text
        # The SDK's limits: a plain dict when they cannot cut anything (the usual case; the
        # values are already cleaned above), the SDK's BoundedAttributes when they can.
        if len(values) <= (self._max_attributes or 0) and self._max_length is None:
            return values
        return self._bounded(self._max_attributes, values, immutable=True,
                             max_value_len=self._max_length)

    def _outcome(self, error: dict[str, Any] | None, status_text: str,
                 end: int) -> tuple[Any, tuple[Any, ...]]:
        """The span's status, and its ``exception`` event when the entry ended with one."""
        if error is None and status_text != "error":
            return self._unset, ()
        message = safe_text(error.get("message") or "") if error else ""
        status = self._status(self._error, message or status_text)
        if error is None:
            return status, ()
        event_attributes = {"exception.message": message}
        if error.get("type"):
            event_attributes["exception.type"] = safe_text(error["type"])
        return status, (self._event("exception", event_attributes, end),)


_SCALARS = (bool, int, float)


def attribute_value(value: Any) -> Any:
    """A metadata value as an OTLP attribute value; ``None`` leaves the key out (as the SDK)."""
    if value is None:
        return None
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bool | float) or (isinstance(value, int) and -2**63 <= value < 2**63):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1:
            kind = kinds.pop()
            if kind is str:
                return [safe_text(v) for v in value]
            if kind in _SCALARS and (kind is not int or all(-2**63 <= v < 2**63 for v in value)):
                return list(value)
    if not isinstance(value, Mapping | list | tuple):
        return safe_text(value)  # its text, by vigil's rule (a raising __str__ included)
    try:
        text = json.dumps(value, ensure_ascii=False, default=safe_text, allow_nan=True)
    except Exception:  # a cycle, a raising __str__ inside: the text rule still gives a value
        text = safe_text(value)
    return safe_text(text)
