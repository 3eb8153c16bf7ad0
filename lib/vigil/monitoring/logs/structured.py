"""The seed's logger: :class:`StructuredLogger`, :func:`shared_logger`, :func:`get_recent_logs`.

A logger builds its entry itself (no stdlib ``LogRecord``), has its
:class:`~vigil.monitoring.logs.JsonLineFormatter` make the line, keeps the entry in its
bounded buffer and writes the line. :meth:`StructuredLogger._log` is the hot path of every
log call: it reads the state other modules own through them (``process.fields``,
``writing.default_stream``, ``writing.write_lock``: rebound by configuration, by
:func:`~vigil.monitoring.logs.configure_logging` and :func:`vigil.testing.capture_logs`, and
after a fork), one module attribute each, and calls the functions it needs by the names
imported here.

:data:`loggers` (every live logger, for :func:`get_recent_logs` and the configuration
listener) and :data:`loggers_lock` are read through this module: the lock is made again in a
forked child.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from typing import IO, Any

from prometheus_client import CollectorRegistry

from vigil.clock import format_rfc3339
from vigil.config import VigilConfig, get_config
from vigil.forks import at_fork
from vigil.monitoring import instruments
from vigil.monitoring.context import current_span
from vigil.monitoring.logs import process, writing
from vigil.monitoring.logs.exceptions import ExcInfo, exc_info_of, exception_fields
from vigil.monitoring.logs.formatting import JsonLineFormatter, fallback_line
from vigil.monitoring.logs.levels import LEVEL_NUMBERS, level_number
from vigil.monitoring.logs.redaction import mask_credentials, redact
from vigil.monitoring.logs.writing import LevelCounter, write
from vigil.text import safe_text

__all__ = ["StructuredLogger", "get_recent_logs", "shared_logger"]

# The level numbers as module constants: one global read per call instead of two lookups.
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = (
    logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)

loggers: weakref.WeakSet[StructuredLogger] = weakref.WeakSet()
loggers_lock = threading.Lock()


class StructuredLogger:
    """A component's JSON logger, as in the seed: ``StructuredLogger("FileProcessor")``.

    ``level``, ``buffer_size`` and ``redact_keys`` default to ``monitoring.logging.*`` and follow
    later :func:`vigil.configure` calls while they are not given here. ``stream`` defaults to
    the current ``sys.stdout``; ``registry`` to the one the exporter serves.
    """

    def __init__(self, component: str, *, registry: CollectorRegistry | None = None,
                 stream: IO[str] | None = None, level: str | None = None,
                 buffer_size: int | None = None,
                 redact_keys: Iterable[str] | None = None) -> None:
        settings = get_config().monitoring.logging
        self.component = safe_text(component)  # vigil.text's rule: every line writes it
        self._stream = stream
        self._fixed_level = level_number(level) if level is not None else None
        self._fixed_buffer = buffer_size is not None
        self._level = self._fixed_level if self._fixed_level is not None else \
            LEVEL_NUMBERS[settings.level]
        if buffer_size is not None:  # validated by the settings class, like the config file
            settings = dataclasses.replace(settings, buffer_size=buffer_size)
        self._buffer: deque[dict[str, Any]] = deque(maxlen=settings.buffer_size)
        self._formatter = JsonLineFormatter(redact_keys)
        self._counter = LevelCounter(
            registry if registry is not None else instruments.default_registry())
        self._formatter.on_truncated = self._counter.truncated.inc
        with loggers_lock:
            loggers.add(self)

    # The five levels; each takes the seed's keywords.
    def debug(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              trace_id: str | None = None, span_id: str | None = None,
              exc_info: bool | BaseException | ExcInfo | None = None) -> None:
        """Log at DEBUG."""
        if self._level <= _DEBUG:
            self._log("DEBUG", message, metadata, trace_id, span_id, exc_info)

    def info(self, message: str, metadata: Mapping[str, Any] | None = None, *,
             trace_id: str | None = None, span_id: str | None = None,
             exc_info: bool | BaseException | ExcInfo | None = None) -> None:
        """Log at INFO."""
        if self._level <= _INFO:
            self._log("INFO", message, metadata, trace_id, span_id, exc_info)

    def warning(self, message: str, metadata: Mapping[str, Any] | None = None, *,
                trace_id: str | None = None, span_id: str | None = None,
                exc_info: bool | BaseException | ExcInfo | None = None) -> None:
        """Log at WARNING."""
        if self._level <= _WARNING:
            self._log("WARNING", message, metadata, trace_id, span_id, exc_info)

    def error(self, message: str, metadata: Mapping[str, Any] | None = None, *,
              trace_id: str | None = None, span_id: str | None = None,
              exc_info: bool | BaseException | ExcInfo | None = None) -> None:
        """Log at ERROR; inside an ``except`` block the exception is attached automatically."""
        if self._level <= _ERROR:
            self._log("ERROR", message, metadata, trace_id, span_id,
                      True if exc_info is None else exc_info)

    def critical(self, message: str, metadata: Mapping[str, Any] | None = None, *,
                 trace_id: str | None = None, span_id: str | None = None,
                 exc_info: bool | BaseException | ExcInfo | None = None) -> None:
        """Log at CRITICAL; inside an ``except`` block the exception is attached automatically."""
        if self._level <= _CRITICAL:
            self._log("CRITICAL", message, metadata, trace_id, span_id,
                      True if exc_info is None else exc_info)

    def exception(self, message: str, metadata: Mapping[str, Any] | None = None, *,
                  trace_id: str | None = None, span_id: str | None = None) -> None:
        """Log at ERROR with the exception being handled (call it inside ``except``)."""
        self.error(message, metadata, trace_id=trace_id, span_id=span_id, exc_info=True)

    def get_recent_logs(self, count: int = 100) -> list[dict[str, Any]]:
        """The last ``count`` entries this logger wrote, oldest first (bounded by buffer_size)."""
        if count <= 0:
            return []
        entries = list(self._buffer)
        return entries[-count:]

    @property
    def level(self) -> str:
        """The minimum level written."""
        return logging.getLevelName(self._level)

    def _log(self, level: str, message: object, metadata: Mapping[str, Any] | None,
             trace_id: str | None, span_id: str | None,
             exc_info: bool | BaseException | ExcInfo | None) -> None:
        formatter = self._formatter
        try:
            span = current_span()  # OpenTelemetry's span, when shared (see context)
            line_trace, line_span = trace_id, span_id  # the fallback below keeps the arguments
            if span is not None and (trace_id is None or trace_id == span.span_id):
                line_trace, line_span = span.trace_id, span_id or span.span_id
            if not isinstance(message, str):
                message = safe_text(message)
            stamp = _timestamp()
            if "@" in message:
                message = mask_credentials(message)
            fields = process.fields  # service/host/pid, made once per configuration
            # Two literals: a line without the process fields pays nothing for them.
            entry: dict[str, Any] = {
                "timestamp": stamp, "level": level, "component": self.component,
                "message": message, "trace_id": line_trace, "span_id": line_span,
                "metadata": redact(metadata, formatter.redact_keys) if metadata else {},
            } if not fields else {
                "timestamp": stamp, "level": level, "component": self.component,
                "message": message, "trace_id": line_trace, "span_id": line_span, **fields,
                "metadata": redact(metadata, formatter.redact_keys) if metadata else {},
            }
            if exc_info is not None and exc_info is not False:
                info = exc_info_of(exc_info)
                if info is not None:
                    entry["exception"] = exception_fields(info)
            line, entry = formatter.format_line(entry)
        except Exception as err:  # never let logging break the caller
            line, entry = fallback_line(formatter, level, self.component, message, trace_id,
                                        span_id, err)
        self._buffer.append(entry)
        # Looked up late (not bound at construction) so redirecting sys.stdout works.
        stream = self._stream
        out = stream if stream is not None else (writing.default_stream or sys.stdout)
        # write() inlined for the common case; it takes over when the stream raises.
        try:
            with writing.write_lock:
                out.write(line + "\n")
                out.flush()
        except Exception:
            if not write(out, line, entry, formatter):
                self._counter.write_errors.inc()
                return
        inc = self._counter.incs.get(level)
        if inc is not None:
            inc()

    def _apply(self, config: VigilConfig) -> None:
        settings = config.monitoring.logging
        if self._fixed_level is None:
            self._level = LEVEL_NUMBERS[settings.level]
        if not self._fixed_buffer and settings.buffer_size != self._buffer.maxlen:
            self._buffer = deque(self._buffer, maxlen=settings.buffer_size)
        # The formatter (made with this logger's redact_keys, if given) follows by itself.


_last_stamp: tuple[int, str] = (-1, "")  # (epoch milliseconds, its text), swapped whole


def _timestamp() -> str:
    """``format_rfc3339(time.time())``, reusing the text while the millisecond is the same.

    A busy logger writes many lines per millisecond; the text depends only on the millisecond.
    """
    global _last_stamp
    now = time.time()
    millis = int(now * 1000)
    last, text = _last_stamp
    if millis != last:
        text = format_rfc3339(now)
        _last_stamp = (millis, text)
    return text


@functools.cache
def shared_logger(component: str) -> StructuredLogger:
    """The one :class:`StructuredLogger` for ``component`` that vigil's own modules share.

    Made on first use (not at import, so importing vigil reads no config and registers no
    metric) and then reused: breakers, retries and event publishers log through it.
    """
    return StructuredLogger(component)


def get_recent_logs(limit: int = 100, *, level: str | None = None,
                    component: str | None = None) -> list[dict[str, Any]]:
    """Recent entries across every live :class:`StructuredLogger`, newest first.

    ``level`` keeps entries at that level or above; ``component`` keeps one component's.
    """
    minimum = level_number(level) if level is not None else 0
    if component is not None:
        component = safe_text(component)  # as loggers keep theirs
    with loggers_lock:
        found = [lg for lg in loggers if component is None or lg.component == component]
    entries = [e for lg in found for e in list(lg._buffer)
               if LEVEL_NUMBERS.get(e["level"], 0) >= minimum]
    # Sort oldest first (stable, so a logger's own order survives equal timestamps), then flip.
    entries.sort(key=lambda e: e["timestamp"])
    entries.reverse()
    return entries[:max(0, limit)]


def _after_fork_in_child() -> None:
    """A fresh lock in a forked child (a thread of the parent may have held it at the fork)."""
    global loggers_lock
    loggers_lock = threading.Lock()


at_fork(after_in_child=_after_fork_in_child)
