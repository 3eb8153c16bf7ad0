"""JSON logs on stdout, one object per line, with trace ids and redacted secrets.

Every line has the same shape, whether it comes from a :class:`StructuredLogger` or, after
:func:`configure_logging`, from any stdlib logger (third-party libraries included)::

    {"timestamp": "2026-11-28T18:47:34.123Z", "level": "INFO", "component": "FileProcessor",
     "message": "File processed", "trace_id": "4bf9...", "span_id": "00f0...",
     "metadata": {"file": "a.pdf"}}

and, when an exception is attached, ``"exception": {"type", "message", "stack"}``.

**Process fields.** Between ``span_id`` and ``metadata`` a line can carry ``"service"``,
``"host"`` and ``"pid"`` (``monitoring.logging.service``, ``include_host``, ``include_pid``):
the service is the configured name, else OpenTelemetry's (``OTEL_SERVICE_NAME``, else
``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``), else absent; the host is
``socket.gethostname()``, off unless asked; the pid is on by default under prometheus_client's
multiprocess mode (:data:`vigil.monitoring.multiprocess.MULTIPROCESS`: several workers) and is
the writing process's own, also in a child forked after the logger was made
(:mod:`vigil.forks`).
The fields are made once per configuration, not per line.

**Servers' own logs.** :class:`JsonLineFormatter` is a stdlib ``logging.Formatter``;
:func:`logging_config` returns the ``logging.config.dictConfig`` dict that routes gunicorn's
and uvicorn's loggers (``logconfig_dict``, ``--log-config``, ``log_config=``) through it.

Serialisation goes through python-json-logger's ``JsonFormatter``, whose encoder turns values
JSON cannot hold (datetimes, bytes, enums, arbitrary objects) into strings.

**Logging never raises**, whatever it is given, and every line is strict JSON in UTF-8:

* text follows :mod:`vigil.text`'s rule: a message or component that is not a ``str`` is its
  ``str()``, or ``<unprintable TypeName>`` when that raises (so are metadata objects and keys,
  and exceptions whose ``__str__`` raises); a lone surrogate (an ``os.fsdecode``-d file name)
  is written as U+FFFD. The line is checked as a whole: JSON escapes are ASCII, so a raw
  surrogate can only be inside a JSON string, and replacing it in the line replaces it there.
  U+2028, U+2029 and U+0085, which JSON leaves raw but ``str.splitlines()`` and JavaScript
  break lines at, are written as ``\\u`` escapes (as Go's encoder does);
* NaN and the infinities are written as the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"`` (bare ``NaN`` is not JSON: log shippers reject the line), and an ``int`` too
  long for ``str()`` as ``"<integer of N bits>"``;
* a stream that cannot encode a character (a file opened with an ASCII or Latin-1 encoding)
  gets the same line with ``\\uXXXX`` escapes; a stream that fails otherwise (closed, full
  disk) loses the line, which is counted in ``vigil_log_write_errors_total`` (the entry stays
  in :func:`get_recent_logs`); a line that cannot be built at all is replaced by one saying so
  in ``metadata.log_error``.

**Size cap.** A line is at most ``monitoring.logging.max_line_bytes`` bytes of UTF-8 (default
16383: 16 KiB with its newline, the size at which Docker and containerd split a line). A longer
one is cut visibly and stays valid JSON: strings are shortened (ending in ``...``), long lists
and objects keep their first items (then ``"[N more items]"`` / ``"...": "N more keys"``),
fields in line order (the message before the metadata, the stack last), and the line gets
``"truncated": true`` and ``"original_bytes": <size before the cut>``. Cuts are counted in
``vigil_log_lines_truncated_total``; :func:`get_recent_logs` keeps what was written.

**Redaction** (:func:`redact`) runs on the metadata before anything is turned into text: keys
that look secret are ``[REDACTED]`` at every depth (a depth cut writes a placeholder, never a
``str()`` of what it cut), and ``scheme://user:password@`` in any string value, in the message
and in the exception is masked.

``trace_id``/``span_id``: the arguments when given, else the current trace's (see
:mod:`vigil.monitoring.context`). The seed passes the id yielded by ``trace_context`` as
``trace_id``; that id is a W3C *span* id, so when the given ``trace_id`` is the current span's
id, the line carries the current W3C trace id and that span id, which is what log/trace
correlation in Grafana, Loki and Tempo expects.

**Shape**, one module per job:

* :mod:`.redaction` :func:`redact` and :func:`mask_credentials`;
* :mod:`.process` the ``service``/``host``/``pid`` fields, made once per configuration and
  after a fork;
* :mod:`.exceptions` the ``exception`` field; :mod:`.levels` level names and numbers;
* :mod:`.values` what strict JSON cannot hold made text, and the cut to the size cap;
* :mod:`.formatting` :class:`JsonLineFormatter`: an entry or a stdlib record as one line;
* :mod:`.writing` the one write lock, the default stream, and :class:`JsonLineHandler`;
* :mod:`.structured` :class:`StructuredLogger`, :func:`shared_logger`,
  :func:`get_recent_logs`;
* :mod:`.wiring` :func:`configure_logging`, :func:`logging_config` and the
  :func:`vigil.configure` listener.

State shared between them lives in one module each and is read through it, never imported
by name: ``process.fields``, ``writing.default_stream`` and ``writing.write_lock`` (and the
live formatters and loggers with their locks). A forked child makes its locks again in each
module's own :func:`vigil.forks.at_fork` hook.
"""

from vigil.jsonsafe import TOO_DEEP
from vigil.monitoring.logs.exceptions import ExcInfo as ExcInfo
from vigil.monitoring.logs.formatting import JsonLineFormatter
from vigil.monitoring.logs.redaction import REDACTED, mask_credentials, redact
from vigil.monitoring.logs.structured import (
    StructuredLogger,
    get_recent_logs,
    shared_logger,
)
from vigil.monitoring.logs.structured import _timestamp as _timestamp  # tests/bench reads it
from vigil.monitoring.logs.wiring import SERVER_LOGGERS, configure_logging, logging_config
from vigil.monitoring.logs.writing import JsonLineHandler

__all__ = [
    "REDACTED",
    "SERVER_LOGGERS",
    "TOO_DEEP",
    "JsonLineFormatter",
    "JsonLineHandler",
    "StructuredLogger",
    "configure_logging",
    "get_recent_logs",
    "logging_config",
    "mask_credentials",
    "redact",
    "shared_logger",
]
