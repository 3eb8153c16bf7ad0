"""vigil's spans to an OpenTelemetry collector, over OTLP/HTTP, with OpenTelemetry's exporter.

The tracer hands every sampled, ended entry to :meth:`SpanExport.offer` (a bounded append under
a lock, nothing else on the traced code's path); a daemon thread turns batches into the SDK's
``ReadableSpan`` and sends them with ``OTLPSpanExporter`` from
``opentelemetry-exporter-otlp-proto-http`` (the ``vigil[otel]`` extra). Both are imported by
that thread, the first time something is exported: ``import vigil`` imports neither.

**Configured as OpenTelemetry is.** The exporter reads its own variables
(``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``*_HEADERS``, ``*_TIMEOUT``, ``*_COMPRESSION``, ``*_CERTIFICATE``); the batching follows the
SDK's ``BatchSpanProcessor`` variables with its defaults: ``OTEL_BSP_SCHEDULE_DELAY`` (5000 ms
between two sends), ``OTEL_BSP_MAX_QUEUE_SIZE`` (2048 entries waiting),
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512 per request; a full batch is sent at once); one
export's time is the exporter's ``OTEL_EXPORTER_OTLP_TIMEOUT`` (10 s, retries included). The
resource is the SDK's (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``telemetry.sdk.*``),
with ``service.name`` from ``monitoring.logging.service`` when that is set, so log lines and
spans name the same service. Attribute limits are the SDK's ``SpanLimits``
(``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, ...).

**What a span carries.** Name ``component.operation``; the entry's metadata, redacted with
``monitoring.logging.redact_keys`` as in log lines, as attributes (strings, numbers, booleans and
lists of one of them as they are, anything else as JSON text; lone surrogates replaced);
``vigil.component``, ``vigil.operation`` and, unless it is ``"success"``, ``vigil.status``.
Status ``ERROR`` (with the exception's message) when the entry ended with an error or status
``"error"``, else unset; an error is also an ``exception`` event (``exception.type``,
``exception.message``). Kind: the one ``trace_context(..., kind=...)`` was given, else ``SERVER``
for an entry whose parent came from another process (``continue_trace``), else ``INTERNAL``.
Scope ``vigil``.

**A collector that is down or slow costs nothing but drops.** When the queue is full, further
entries are dropped and counted in ``vigil_traces_dropped_total{reason="export_queue_full"}``; a
batch the exporter gives up on (after its own retries, within its timeout) is counted in
``reason="export_failed"``, and each failure is logged at most once a minute. Sent spans are
counted in ``vigil_traces_exported_total``.

**Exit and fork.** At interpreter exit the queue is flushed for up to
``monitoring.tracing.exit_flush_timeout`` seconds; what is left is logged. A process killed by
SIGKILL (or by a signal nobody handles, such as a bare SIGTERM) loses what waits in the queue:
at most one schedule delay of spans. A forked child starts with an empty queue and its own thread.
"""

from vigil.monitoring.otlp.export import SpanExport, export_wanted

__all__ = ["SpanExport", "export_wanted"]
