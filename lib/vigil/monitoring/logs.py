"""JSON logs on stdout, one object per line, with trace ids and redacted secrets.

Every line has the same shape, whether it comes from a :class:`StructuredLogger` or, after
:func:`configure_logging`, from any stdlib logger (third-party libraries included)::

    {"timestamp": "2026-11-28T18:47:34.123Z", "level": "INFO", "component": "FileProcessor",
     "message": "File processed", "trace_id": "4bf9...", "span_id": "00f0...",
     "metadata": {"file": "a.pdf"}}

and, when an exception is attached, ``"exception": {"type", "message", "stack"}``.

Serialisation goes through python-json-logger's ``JsonFormatter``, whose encoder turns values
JSON cannot hold (datetimes, sets, arbitrary objects) into strings instead of raising, so logging
never raises because of what was logged.

``trace_id``/``span_id``: the arguments when given, else the current trace's (see
:mod:`vigil.monitoring.context`). The seed passes the id yielded by ``trace_context`` as
``trace_id``; that id is a W3C *span* id, so when the given ``trace_id`` is the current span's
id, the line carries the current W3C trace id and that span id, which is what log/trace
correlation in Grafana, Loki and Tempo expects.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring, encode_basestring_ascii
from types import TracebackType
from typing import IO, Any

from prometheus_client import CollectorRegistry
from pythonjsonlogger.json import JsonFormatter

from vigil.clock import format_rfc3339
from vigil.config import LOG_LEVELS, VigilConfig, get_config, on_configure
from vigil.monitoring import instruments
from vigil.monitoring.context import _current, current_span

__all__ = [
    "REDACTED",
    "JsonLineFormatter",
    "StructuredLogger",
    "configure_logging",
    "get_recent_logs",
    "redact",
    "shared_logger",
]

REDACTED = "[REDACTED]"
# The C scanner JSONEncoder.iterencode uses (None where the C accelerator is missing).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
# The level numbers as module constants: one global read per call instead of two lookups.
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = (
    logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
_LEVEL_NUMBERS: dict[str, int] = {name: logging.getLevelNamesMapping()[name] for name in LOG_LEVELS}
_MAX_REDACT_DEPTH = 32  # deeper structures are cut, not recursed into without end

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


# --- redaction ----------------------------------------------------------------------------


def _is_secret(key: object, needles: tuple[str, ...]) -> bool:
    lowered = str(key).lower()
    return any(needle in lowered for needle in needles)


# Whether a str key is secret, per tuple of needles: metadata keys come from a small set, and
# the substring scan is most of the cost of redaction. Bounded: cleared when it fills up.
_SECRET_MEMO_SIZE = 4096
_secret_memos: dict[tuple[str, ...], dict[str, bool]] = {}
# Values kept as they are without a recursive call (bool is an int; None is a singleton).
_ATOMS = frozenset({str, int, float, bool, type(None)})


def _secret_memo(needles: tuple[str, ...]) -> dict[str, bool]:
    memo = _secret_memos.get(needles)
    if memo is None:
        if len(_secret_memos) >= 64:  # only a reconfiguration makes a new tuple of needles
            _secret_memos.clear()
        memo = _secret_memos.setdefault(needles, {})
    return memo


def redact(value: Any, keys: Iterable[str], _depth: int = 0) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced by ``[REDACTED]``.

    A key is secret when it contains one of ``keys`` (case-insensitive): ``db_password`` and
    ``X-Api-Key`` both match. Dicts nested in dicts, lists and tuples are redacted too, and so
    are dataclass instances and NamedTuples (as dicts of their fields: the JSON encoder would
    otherwise write their fields unredacted). Keys that are not strings become strings. Other
    objects are written as their ``str()``: do not put secrets in them. The caller's objects are
    never modified.
    """
    needles = keys if isinstance(keys, tuple) else tuple(k.lower() for k in keys)
    if _depth > _MAX_REDACT_DEPTH:
        return "[TOO DEEP]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif isinstance(value, tuple) and hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, Mapping):
        memo = _secret_memo(needles)
        # Scalars are copied inline unless one level down is already past the depth cut.
        atoms = _ATOMS if _depth < _MAX_REDACT_DEPTH else frozenset()
        out = {}
        for k, v in value.items():
            if type(k) is str:
                secret = memo.get(k)
                if secret is None:
                    secret = _is_secret(k, needles)
                    if len(memo) >= _SECRET_MEMO_SIZE:
                        memo.clear()
                    memo[k] = secret
            else:
                # JSON object keys are strings; a tuple or bytes key would fail the whole line.
                k = k if isinstance(k, int | float | bool) or k is None else str(k)
                secret = _is_secret(k, needles)
            if secret:
                out[k] = REDACTED
            elif type(v) in atoms:
                out[k] = v
            else:
                out[k] = redact(v, needles, _depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, needles, _depth + 1) for v in value]
    return value


# --- formatting ---------------------------------------------------------------------------


def _exception_fields(exc_info: ExcInfo) -> dict[str, str]:
    exc_type, exc, tb = exc_info
    return {
        "type": exc_type.__qualname__,
        "message": str(exc),
        "stack": "".join(traceback.format_exception(exc_type, exc, tb)),
    }


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter, emitting vigil's line shape.

    :meth:`format` serves stdlib ``LogRecord``\\ s (after :func:`configure_logging`);
    :meth:`format_entry` serves :class:`StructuredLogger`, which already holds the entry and
    skips building a ``LogRecord`` it does not need.
    """

    # The json_* settings python-json-logger reads in jsonify_log_record, as properties: setting
    # one drops the prepared encoder, so format_entry always serialises as they say.
    _JSON_SETTINGS = ("json_default", "json_encoder", "json_serializer", "json_indent",
                      "json_ensure_ascii")

    def __init__(self, redact_keys: Iterable[str] | None = None) -> None:
        self._json: dict[str, Any] = {}
        self._encoder_args: tuple[Any, ...] | None = None
        super().__init__(json_ensure_ascii=False)
        self.redact_keys = tuple(k.lower() for k in (
            redact_keys if redact_keys is not None
            else get_config().monitoring.logging.redact_keys))

    def format_entry(self, entry: dict[str, Any]) -> str:
        """``entry`` as one JSON line, exactly as ``jsonify_log_record`` writes it.

        ``jsonify_log_record`` calls ``json.dumps(entry, cls=JsonEncoder, ...)``, which builds
        a ``JsonEncoder`` and then its C scanner for every line (about a third of a line's
        cost). Here the encoder (python-json-logger's, with its ``default`` for datetimes,
        exceptions, bytes, ...) is built once, and each line gets the same C scanner
        ``JSONEncoder.encode`` would make, with a fresh circular-reference map: same bytes.
        """
        args = self._encoder_args
        if args is None:
            args = self._prepare_encoder()
        if args:
            return "".join(_c_make_encoder({}, *args)(entry, 0))
        line: str = self.jsonify_log_record(entry)  # settings the shortcut does not cover
        return line

    def _prepare_encoder(self) -> tuple[Any, ...]:
        """What ``_c_make_encoder`` needs besides the markers, or ``()`` if it does not apply."""
        args: tuple[Any, ...] = ()
        cls = self.json_encoder or json.JSONEncoder
        if (_c_make_encoder is not None and self.json_serializer is json.dumps
                and self.json_indent is None and isinstance(cls, type)
                and issubclass(cls, json.JSONEncoder)
                and cls.encode is json.JSONEncoder.encode
                and cls.iterencode is json.JSONEncoder.iterencode):
            # What json.dumps(entry, default=..., cls=..., indent=..., ensure_ascii=...) builds.
            encoder = cls(skipkeys=False, ensure_ascii=self.json_ensure_ascii,
                          check_circular=True, allow_nan=True, indent=None, separators=None,
                          default=self.json_default, sort_keys=False)
            args = (encoder.default,
                    encode_basestring_ascii if encoder.ensure_ascii else encode_basestring,
                    None, encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                    encoder.skipkeys, encoder.allow_nan)
        self._encoder_args = args
        return args

    def format(self, record: logging.LogRecord) -> str:
        return self.format_entry(self.record_to_entry(record))

    def record_to_entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """A stdlib record as a vigil entry: extras become (redacted) metadata."""
        span = current_span()
        extras = {k: v for k, v in record.__dict__.items()
                  if k not in _RECORD_ATTRS and not k.startswith("_")}
        trace_id = extras.pop("trace_id", None) or (span.trace_id if span else None)
        span_id = extras.pop("span_id", None) or (span.span_id if span else None)
        entry: dict[str, Any] = {
            "timestamp": format_rfc3339(record.created),
            "level": record.levelname,
            "component": record.name,
            "message": record.getMessage(),
            "trace_id": trace_id,
            "span_id": span_id,
            "metadata": redact(extras, self.redact_keys),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = _exception_fields(record.exc_info)
        return entry


def _json_setting(name: str) -> property:
    def get(self: JsonLineFormatter) -> Any:
        return self._json.get(name)

    def set_(self: JsonLineFormatter, value: Any) -> None:
        self._json[name] = value
        self._encoder_args = None

    return property(get, set_)


for _name in JsonLineFormatter._JSON_SETTINGS:
    setattr(JsonLineFormatter, _name, _json_setting(_name))
del _name

_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


# --- writing ------------------------------------------------------------------------------

_write_lock = threading.Lock()  # one line at a time, whichever logger writes it
_default_stream: IO[str] | None = None  # set by configure_logging(stream=...)


def _write_line(stream: IO[str] | None, line: str) -> None:
    # Looked up late (not bound at construction) so redirecting sys.stdout works.
    out = stream if stream is not None else (_default_stream or sys.stdout)
    with _write_lock:
        out.write(line + "\n")
        out.flush()


class _LevelCounter:
    """``vigil_log_messages_total{level}`` with one child bound per level."""

    def __init__(self, registry: CollectorRegistry) -> None:
        family = instruments.counter(registry, "vigil_log_messages_total",
                                     "Log lines written, by level.", ["level"])
        self.children = {name: family.labels(name) for name in LOG_LEVELS}
        # Each child's inc, bound once: StructuredLogger calls these directly.
        self.incs: dict[str, Callable[[], None]] = {
            name: child.inc for name, child in self.children.items()}

    def inc(self, level: str) -> None:
        child = self.children.get(level)
        if child is not None:
            child.inc()


def _default_registry() -> CollectorRegistry:
    from vigil.monitoring.metrics import performance_monitor  # late: metrics imports nothing here

    return performance_monitor.registry


class JsonLineHandler(logging.Handler):
    """A stdlib handler writing vigil JSON lines and counting them by level."""

    def __init__(self, stream: IO[str] | None = None, registry: CollectorRegistry | None = None,
                 redact_keys: Iterable[str] | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(JsonLineFormatter(redact_keys))
        self._counter = _LevelCounter(registry if registry is not None else _default_registry())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            _write_line(self.stream, line)
            self._counter.inc(record.levelname)
        except Exception:
            self.handleError(record)


# --- the seed's logger --------------------------------------------------------------------

_loggers: weakref.WeakSet[StructuredLogger] = weakref.WeakSet()
_loggers_lock = threading.Lock()


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
        self.component = component
        self._stream = stream
        self._fixed_level = _level_number(level) if level is not None else None
        self._fixed_buffer = buffer_size is not None
        self._fixed_redact = redact_keys is not None
        self._level = self._fixed_level if self._fixed_level is not None else \
            _LEVEL_NUMBERS[settings.level]
        if buffer_size is not None:  # validated by the settings class, like the config file
            settings = dataclasses.replace(settings, buffer_size=buffer_size)
        self._buffer: deque[dict[str, Any]] = deque(maxlen=settings.buffer_size)
        self._formatter = JsonLineFormatter(redact_keys)
        self._counter = _LevelCounter(registry if registry is not None else _default_registry())
        with _loggers_lock:
            _loggers.add(self)

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

    def _log(self, level: str, message: str, metadata: Mapping[str, Any] | None,
             trace_id: str | None, span_id: str | None,
             exc_info: bool | BaseException | ExcInfo | None) -> None:
        formatter = self._formatter
        try:
            span = _current.get()
            line_trace, line_span = trace_id, span_id  # the fallback below keeps the arguments
            if span is not None and (trace_id is None or trace_id == span.span_id):
                line_trace, line_span = span.trace_id, span_id or span.span_id
            entry: dict[str, Any] = {
                "timestamp": _timestamp(),
                "level": level,
                "component": self.component,
                "message": message if isinstance(message, str) else str(message),
                "trace_id": line_trace,
                "span_id": line_span,
                "metadata": redact(metadata, formatter.redact_keys) if metadata else {},
            }
            if exc_info is not None and exc_info is not False:
                info = _exc_info(exc_info)
                if info is not None:
                    entry["exception"] = _exception_fields(info)
            line = formatter.format_entry(entry)
        except Exception as err:  # never let logging break the caller
            entry = {"timestamp": format_rfc3339(time.time()), "level": level,
                     "component": self.component, "message": str(message), "trace_id": trace_id,
                     "span_id": span_id, "metadata": {"log_error": repr(err)}}
            line = formatter.format_entry(entry)
        self._buffer.append(entry)
        # _write_line inlined.
        stream = self._stream
        out = stream if stream is not None else (_default_stream or sys.stdout)
        with _write_lock:
            out.write(line + "\n")
            out.flush()
        inc = self._counter.incs.get(level)
        if inc is not None:
            inc()

    def _apply(self, config: VigilConfig) -> None:
        settings = config.monitoring.logging
        if self._fixed_level is None:
            self._level = _LEVEL_NUMBERS[settings.level]
        if not self._fixed_buffer and settings.buffer_size != self._buffer.maxlen:
            self._buffer = deque(self._buffer, maxlen=settings.buffer_size)
        if not self._fixed_redact:
            self._formatter.redact_keys = tuple(k.lower() for k in settings.redact_keys)


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


def _exc_info(value: bool | BaseException | ExcInfo | None) -> ExcInfo | None:
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple):
        return value
    current = sys.exc_info()
    return current if current[0] is not None else None


def _level_number(level: str) -> int:
    name = str(level).upper()
    if name not in _LEVEL_NUMBERS:
        from vigil.config import ConfigError

        raise ConfigError("level", level, f"must be one of {', '.join(LOG_LEVELS)}")
    return _LEVEL_NUMBERS[name]


def get_recent_logs(limit: int = 100, *, level: str | None = None,
                    component: str | None = None) -> list[dict[str, Any]]:
    """Recent entries across every live :class:`StructuredLogger`, newest first.

    ``level`` keeps entries at that level or above; ``component`` keeps one component's.
    """
    minimum = _level_number(level) if level is not None else 0
    with _loggers_lock:
        loggers = [lg for lg in _loggers if component is None or lg.component == component]
    entries = [e for lg in loggers for e in list(lg._buffer)
               if _LEVEL_NUMBERS.get(e["level"], 0) >= minimum]
    # Sort oldest first (stable, so a logger's own order survives equal timestamps), then flip.
    entries.sort(key=lambda e: e["timestamp"])
    entries.reverse()
    return entries[:max(0, limit)]


# --- the stdlib root logger ---------------------------------------------------------------


def configure_logging(level: str | None = None, *, stream: IO[str] | None = None,
                      registry: CollectorRegistry | None = None) -> JsonLineHandler:
    """Put vigil's JSON line shape on the stdlib root logger.

    Third-party libraries' records then come out like vigil's own: ``component`` is the
    logger's name and ``extra=`` fields become ``metadata``. Calling it again replaces the
    handler it installed before (it never stacks two). Returns the handler.

    ``stream`` (default: stdout) also becomes where every :class:`StructuredLogger` built
    without its own ``stream`` writes, so one call sends all of the process's JSON lines to a
    file.
    """
    global _default_stream
    _default_stream = stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, JsonLineHandler):
            root.removeHandler(handler)
    handler = JsonLineHandler(stream=stream, registry=registry)
    root.addHandler(handler)
    root.setLevel(_level_number(level) if level is not None else
                  _LEVEL_NUMBERS[get_config().monitoring.logging.level])
    return handler


@on_configure
def _on_configure(config: VigilConfig) -> None:
    with _loggers_lock:
        loggers = list(_loggers)
    for logger in loggers:
        logger._apply(config)
