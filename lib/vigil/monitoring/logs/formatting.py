"""The formatter: :class:`JsonLineFormatter`, python-json-logger's ``JsonFormatter`` tuned.

It turns an entry (a :class:`~vigil.monitoring.logs.StructuredLogger`'s, or a stdlib
``LogRecord`` made into one) into one strict JSON line within the size cap, through the C
scanner ``json.dumps`` would build, made once per formatter instead of once per line. What it
writes for hard values (NaN, lone surrogates, oversize lines) is built by
:mod:`vigil.monitoring.logs.values`.

:data:`formatters` (every live formatter, for :mod:`.wiring`'s configuration listener) and
:data:`formatters_lock` are read through this module: the lock is made again in a forked
child.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from vigil.clock import format_rfc3339
from vigil.config import LoggingSettings, get_config
from vigil.forks import at_fork
from vigil.monitoring.context import current_span
from vigil.monitoring.logs import c_scanner, process
from vigil.monitoring.logs.exceptions import described, exc_info_of, exception_fields
from vigil.monitoring.logs.redaction import mask_credentials, redact
from vigil.monitoring.logs.values import (
    ascii_json,
    cut_value,
    escape_line_breaks,
    json_ready,
    safe_default,
    valid_tree,
)
from vigil.text import safe_text, valid_text

__all__ = ["JsonLineFormatter", "fallback_line"]

# The line's hot path calls the scanner itself (a helper's frame is ~5% of a line).
_c_make_encoder = c_scanner.c_make_encoder


class JsonLineFormatter(JsonFormatter):
    """A stdlib ``logging.Formatter`` writing vigil's line shape (python-json-logger's, tuned).

    :meth:`format` serves stdlib ``LogRecord``\\ s: after :func:`configure_logging`, and for
    gunicorn's and uvicorn's own loggers through :func:`logging_config` (in a
    ``logging.config.dictConfig`` dict it is ``{"()": "vigil.monitoring.logs.JsonLineFormatter"}``).
    A record becomes the line a :class:`StructuredLogger` writes: ``timestamp``, ``level``,
    ``component`` (the logger's name), ``message`` (``msg % args``), ``trace_id``/``span_id``
    (the current span's), ``service``/``host``/``pid`` as configured, ``metadata`` (the
    ``extra=`` fields, redacted; uvicorn's ``color_message`` left out) and ``exception``, under
    the same rules: :meth:`format` never raises, the line is strict JSON in valid UTF-8 (a lone
    surrogate becomes U+FFFD) and at most ``max_line_bytes``. ``redact_keys`` and
    ``max_line_bytes`` default to ``monitoring.logging.*`` and follow later
    :func:`vigil.configure` calls while they are not given here.

    :meth:`format_line` serves :class:`StructuredLogger`, which already holds the entry and
    skips building a ``LogRecord`` it does not need.
    """

    # The json_* settings python-json-logger reads in jsonify_log_record, as properties: setting
    # one drops the prepared encoders, so format_entry always serialises as they say.
    _JSON_SETTINGS = ("json_default", "json_encoder", "json_serializer", "json_indent",
                      "json_ensure_ascii")

    def __init__(self, redact_keys: Iterable[str] | None = None, *,
                 max_line_bytes: int | None = None) -> None:
        self._json: dict[str, Any] = {}
        self._encoder_args: tuple[Any, ...] | None = None
        self._line_args: tuple[Any, ...] | None = None
        self._line_default: Callable[[Any], Any] = safe_text
        super().__init__(json_ensure_ascii=False)
        settings = get_config().monitoring.logging
        if not process.ready:
            process.apply_settings(settings)
        self._fixed_redact = redact_keys is not None
        self._fixed_max = max_line_bytes is not None
        self.redact_keys = tuple(k.lower() for k in (
            redact_keys if redact_keys is not None else settings.redact_keys))
        self.max_line_bytes = max_line_bytes if max_line_bytes is not None else \
            settings.max_line_bytes
        self.on_truncated: Callable[[], object] | None = None  # called once per cut line
        with formatters_lock:
            formatters.add(self)

    def _apply(self, settings: LoggingSettings) -> None:
        """Follow a new configuration in what was not given to the constructor."""
        if not self._fixed_redact:
            self.redact_keys = tuple(k.lower() for k in settings.redact_keys)
        if not self._fixed_max:
            self.max_line_bytes = settings.max_line_bytes

    @property
    def max_line_bytes(self) -> int:
        """The largest line :meth:`format_line` writes, in bytes of UTF-8 (newline excluded)."""
        return self._max_line_bytes

    @max_line_bytes.setter
    def max_line_bytes(self, value: int) -> None:
        # Validated by the settings class, like the config file.
        dataclasses.replace(get_config().monitoring.logging, max_line_bytes=value)
        self._max_line_bytes = value
        # Below this many characters a line cannot be over the cap (4 bytes per character at
        # most): the common line needs no byte count.
        self._quick_chars = value // 4

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
            return c_scanner.encode(args, entry)
        line: str = self.jsonify_log_record(entry)  # settings the shortcut does not cover
        return line

    def _prepare_encoder(self) -> tuple[Any, ...]:
        """The C scanner's arguments (:mod:`.c_scanner`), or ``()`` if it does not apply."""
        args: tuple[Any, ...] = ()
        cls = self.json_encoder or json.JSONEncoder
        if c_scanner.applies(self.json_serializer, self.json_indent, cls):
            # What json.dumps(entry, default=..., cls=..., indent=..., ensure_ascii=...) builds.
            args = c_scanner.scanner_args(cls(
                skipkeys=False, ensure_ascii=self.json_ensure_ascii, check_circular=True,
                allow_nan=True, indent=None, separators=None, default=self.json_default,
                sort_keys=False))
        self._encoder_args = args
        return args

    # --- strict lines: what vigil writes ------------------------------------------------

    def format_line(self, entry: dict[str, Any], *, ascii_only: bool = False
                    ) -> tuple[str, dict[str, Any]]:
        """``entry`` as one line of strict JSON in valid UTF-8 within :attr:`max_line_bytes`,
        and the entry that line shows (``entry`` itself unless something had to change).

        The common line costs one encoding (the same C scanner as :meth:`format_entry`, with
        ``allow_nan=False``), one ``isascii()`` and one length comparison; NaN, a lone
        surrogate or an oversize line take the slow paths described in the module docstring.
        ``ascii_only`` (or ``json_ensure_ascii``) writes non-ASCII characters as escapes.
        Raises only if ``entry`` cannot be written at all (a value whose encoding fails twice).
        """
        args = self._line_args
        try:
            # _encode_strict inlined for the common case.
            line = "".join(_c_make_encoder({}, *args)(entry, 0)) if args else \
                self._encode_strict(entry)
        except ValueError:  # NaN/Infinity (refused), or an int too long to write
            entry = json_ready(entry)
            line = self._encode_strict(entry)
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates, only ever inside JSON strings
                line = valid_text(line)
                entry = valid_tree(entry)
            if ascii_only or self.json_ensure_ascii:
                line = ascii_json(line)
            elif "\u2028" in line or "\u2029" in line or "\x85" in line:
                line = escape_line_breaks(line)
        if len(line) > self._quick_chars:
            size = len(line) if line.isascii() else len(line.encode("utf-8"))
            if size > self._max_line_bytes:
                return self._truncated(entry, size, ascii_only)
        return line, entry

    def _encode_strict(self, entry: Any) -> str:
        args = self._line_args
        if args is None:  # not prepared yet, or a json_* setting changed
            args = self._prepare_line_encoder()
        if args:
            return c_scanner.encode(args, entry)
        # Settings the shortcut does not cover (another serializer, an indent): theirs, on a
        # value already made strict.
        line: str = self.jsonify_log_record(json_ready(entry))
        return line

    def _prepare_line_encoder(self) -> tuple[Any, ...]:
        """The C scanner's arguments for strict lines, or ``()`` if it does not apply."""
        args: tuple[Any, ...] = ()
        base = self._prepare_encoder()
        if base:
            cls = self.json_encoder or json.JSONEncoder
            encoder = cls(skipkeys=False, ensure_ascii=False, check_circular=True,
                          allow_nan=False, indent=None, separators=None,
                          default=self.json_default, sort_keys=False)
            default = safe_default(encoder.default, plain=self.json_default is None)
            self._line_default = default
            args = c_scanner.scanner_args(encoder, default)
        self._line_args = args
        return args

    def _truncated(self, entry: dict[str, Any], size: int, ascii_only: bool
                   ) -> tuple[str, dict[str, Any]]:
        """The line for an ``entry`` whose line is ``size`` bytes, over the cap (see the
        module docstring); never over the cap, never raises."""
        if self.on_truncated is not None:
            with contextlib.suppress(Exception):
                self.on_truncated()
        cap = self._max_line_bytes
        size = max(size, int(entry.get("original_bytes") or 0))  # a cut of a cut: the first
        room = cap - 96  # the two markers, the braces and separators
        default = self._line_default
        for _ in range(8):
            body = {k: v for k, v in entry.items() if k not in ("truncated", "original_bytes")}
            cut = cut_value(body, [room], default)
            cut["truncated"] = True
            cut["original_bytes"] = size
            with contextlib.suppress(Exception):
                line = self._strict_text(cut, ascii_only)
                written = len(line.encode("utf-8"))
                if written <= cap:
                    return line, cut
                room = min(room // 2, room * cap // written - 64)
            if room <= 0:
                break
        minimal = {k: cut_value(entry.get(k), [0], default)
                   for k in ("timestamp", "level", "component", "message")}
        minimal.update({k: cut_value(entry[k], [0], default)
                        for k in ("service", "host", "pid") if k in entry})
        minimal.update(truncated=True, original_bytes=size)
        return self._strict_text(minimal, ascii_only), minimal

    def _strict_text(self, value: dict[str, Any], ascii_only: bool) -> str:
        """A cut entry's line: JSON-ready already, so only the text checks apply."""
        line = valid_text(self._encode_strict(value))
        return ascii_json(line) if ascii_only or self.json_ensure_ascii else \
            escape_line_breaks(line)

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as one vigil JSON line (no newline); never raises."""
        return self.format_record(record)[0]

    def format_record(self, record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
        """``record``'s line and the entry it shows (see :meth:`format_line`); never raises:
        a record that cannot be written is replaced by a line saying so in
        ``metadata.log_error``."""
        try:
            return self.format_line(self.record_to_entry(record))
        except Exception as err:
            return fallback_line(self, getattr(record, "levelname", "NOTSET"),
                                 getattr(record, "name", ""), getattr(record, "msg", ""),
                                 None, None, err)

    def record_to_entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """A stdlib record as a vigil entry: extras become (redacted) metadata.

        A message whose arguments do not fit it is written as its text, with the formatting
        error in ``metadata.log_error``.
        """
        span = current_span()
        extras = {k: v for k, v in record.__dict__.items()
                  if k not in _RECORD_ATTRS and not k.startswith("_")}
        trace_id = extras.pop("trace_id", None) or (span.trace_id if span else None)
        span_id = extras.pop("span_id", None) or (span.span_id if span else None)
        try:
            message = record.getMessage()
        except Exception as err:  # a raising __str__, arguments that do not fit
            message = safe_text(record.msg)
            extras["log_error"] = f"message arguments not formatted: {described(err)}"
        entry: dict[str, Any] = {
            "timestamp": format_rfc3339(record.created),
            "level": safe_text(record.levelname),
            "component": safe_text(record.name),
            "message": mask_credentials(message),
            "trace_id": trace_id,
            "span_id": span_id,
            **process.fields,
            "metadata": redact(extras, self.redact_keys),
        }
        info = exc_info_of(record.exc_info) if record.exc_info else None
        if info is not None:
            entry["exception"] = exception_fields(info)
        return entry


def _json_setting(name: str) -> property:
    def get(self: JsonLineFormatter) -> Any:
        return self._json.get(name)

    def set_(self: JsonLineFormatter, value: Any) -> None:
        self._json[name] = value
        self._encoder_args = None
        self._line_args = None

    return property(get, set_)


for _name in JsonLineFormatter._JSON_SETTINGS:
    setattr(JsonLineFormatter, _name, _json_setting(_name))
del _name

# A record's own attributes, and extras that are not metadata: uvicorn's color_message (its
# message again, with ANSI colours).
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName", "color_message"}
formatters: weakref.WeakSet[JsonLineFormatter] = weakref.WeakSet()
formatters_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A fresh lock in a forked child (a thread of the parent may have held it at the fork)."""
    global formatters_lock
    formatters_lock = threading.Lock()


at_fork(after_in_child=_after_fork_in_child)


def fallback_line(formatter: JsonLineFormatter, level: str, component: str, message: object,
                  trace_id: object, span_id: object, err: BaseException
                  ) -> tuple[str, dict[str, Any]]:
    """The line written when an entry could not be: text only, with the error that stopped it
    in ``metadata.log_error``. Never raises."""
    entry: dict[str, Any] = {
        "timestamp": format_rfc3339(time.time()), "level": safe_text(level),
        "component": safe_text(component), "message": mask_credentials(safe_text(message)),
        "trace_id": None if trace_id is None else safe_text(trace_id),
        "span_id": None if span_id is None else safe_text(span_id),
        **process.fields,
        "metadata": {"log_error": described(err)}}
    try:
        return formatter.format_line(entry)
    except Exception:  # pragma: no cover - text only: nothing left that can fail
        return json.dumps({"level": entry["level"], "log_error": "unwritable entry"}), entry

