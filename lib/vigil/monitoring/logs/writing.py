"""Writing lines: the one write lock, the default stream, and the stdlib handler.

:func:`write` puts one line on a stream whole (under :data:`write_lock`, shared by every
logger and handler of the process) and never raises; :class:`LevelCounter` holds the metrics
of what was written, lost and cut; :class:`JsonLineHandler` is the stdlib handler.

Two globals here are rebound, and are read through this module by everyone
(``writing.default_stream``, ``writing.write_lock``), never imported by name (a copy):

* :data:`default_stream`, where lines without a stream of their own go (``None``: the
  current ``sys.stdout``). :func:`vigil.monitoring.logs.configure_logging` sets it, and
  :func:`vigil.testing.capture_logs` swaps it while its block runs;
* :data:`write_lock`, made again in a forked child (a thread of the parent may have held it
  at the fork, and that thread is gone).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any

from prometheus_client import CollectorRegistry

from vigil.config import LOG_LEVELS
from vigil.forks import at_fork
from vigil.monitoring import instruments
from vigil.monitoring.logs.formatting import JsonLineFormatter

__all__ = ["JsonLineHandler", "LevelCounter", "write"]

write_lock = threading.Lock()  # one line at a time, whichever logger writes it
default_stream: IO[str] | None = None  # set by configure_logging(stream=...)


def write(out: IO[str], line: str, entry: dict[str, Any],
          formatter: JsonLineFormatter | None) -> bool:
    """Write one line to ``out``; whether it was written. Never raises.

    A stream whose encoding cannot hold a character of the line (a file opened as ASCII)
    gets the same JSON with ``\\uXXXX`` escapes (``formatter`` None: a line that is not
    vigil's, written with backslash escapes); any other failure loses the line.
    """
    with write_lock:
        try:
            out.write(line + "\n")
            out.flush()
            return True
        except UnicodeEncodeError:  # a text stream encodes the whole string before writing
            pass
        except Exception:
            return False
        try:
            escaped = formatter.format_line(entry, ascii_only=True)[0] if formatter is not None \
                else line.encode("ascii", "backslashreplace").decode("ascii")
            out.write(escaped + "\n")
            out.flush()
            return True
        except Exception:
            return False


class LevelCounter:
    """``vigil_log_messages_total{level}`` with one child bound per level, plus the lines
    that could not be written and the lines cut to the size cap."""

    def __init__(self, registry: CollectorRegistry) -> None:
        family = instruments.counter(registry, "vigil_log_messages_total",
                                     "Log lines written, by level.", ["level"])
        self.children = {name: family.labels(name) for name in LOG_LEVELS}
        # Each child's inc, bound once: StructuredLogger calls these directly.
        self.incs: dict[str, Callable[[], None]] = {
            name: child.inc for name, child in self.children.items()}
        self.write_errors = instruments.counter(
            registry, "vigil_log_write_errors_total",
            "Log lines lost because the stream raised (closed, full disk); the entries stay "
            "in get_recent_logs.").metric
        self.truncated = instruments.counter(
            registry, "vigil_log_lines_truncated_total",
            "Log lines cut to monitoring.logging.max_line_bytes.").metric

    def inc(self, level: str) -> None:
        child = self.children.get(level)
        if child is not None:
            child.inc()


class JsonLineHandler(logging.Handler):
    """A stdlib handler writing vigil JSON lines and counting them by level.

    It writes to ``stream``, else to where :class:`StructuredLogger`\\ s write (the current
    ``sys.stdout``, or :func:`configure_logging`'s ``stream``), one whole line at a time
    beside them; lines are counted in ``vigil_log_messages_total`` and the losses and cuts as
    a :class:`StructuredLogger`'s are. :func:`logging_config` routes loggers to it.
    """

    def __init__(self, stream: IO[str] | None = None, registry: CollectorRegistry | None = None,
                 redact_keys: Iterable[str] | None = None) -> None:
        super().__init__()
        self.stream = stream
        self._counter = LevelCounter(
            registry if registry is not None else instruments.default_registry())
        self.setFormatter(JsonLineFormatter(redact_keys))

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Use ``fmt``; a :class:`JsonLineFormatter` (dictConfig sets one) counts its cuts."""
        super().setFormatter(fmt)
        if isinstance(fmt, JsonLineFormatter) and fmt.on_truncated is None:
            fmt.on_truncated = self._counter.truncated.inc

    def emit(self, record: logging.LogRecord) -> None:
        formatter = self.formatter
        entry: dict[str, Any] = {}
        if not isinstance(formatter, JsonLineFormatter):  # replaced by the user: stdlib rules
            try:
                line = self.format(record)
            except Exception:
                self.handleError(record)
                return
        else:
            line, entry = formatter.format_record(record)
        # Looked up late (not bound at construction) so redirecting sys.stdout works.
        out = self.stream if self.stream is not None else (default_stream or sys.stdout)
        if write(out, line, entry, formatter if isinstance(formatter, JsonLineFormatter)
                  else None):
            self._counter.inc(record.levelname)
        else:
            self._counter.write_errors.inc()



def _after_fork_in_child() -> None:
    """A fresh write lock in a forked child, so that a child forked while another thread
    wrote can still log."""
    global write_lock
    write_lock = threading.Lock()


at_fork(after_in_child=_after_fork_in_child)
