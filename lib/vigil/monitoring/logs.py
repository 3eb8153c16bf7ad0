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
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import functools
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring, encode_basestring_ascii
from types import TracebackType
from typing import IO, Any

from prometheus_client import CollectorRegistry
from pythonjsonlogger.json import JsonFormatter

from vigil.clock import format_rfc3339
from vigil.config import (
    LOG_LEVELS,
    SERVICE_MAX_CHARS,
    ConfigError,
    LoggingSettings,
    VigilConfig,
    get_config,
    log_level_name,
    on_configure,
)
from vigil.forks import at_fork
from vigil.jsonsafe import MAX_DEPTH, TOO_DEEP, json_number
from vigil.monitoring import instruments
from vigil.monitoring.context import current_span
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.text import safe_text, unprintable, valid_text

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

REDACTED = "[REDACTED]"
# The C scanner JSONEncoder.iterencode uses (None where the C accelerator is missing).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
# The level numbers as module constants: one global read per call instead of two lookups.
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = (
    logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
_LEVEL_NUMBERS: dict[str, int] = {name: logging.getLevelNamesMapping()[name] for name in LOG_LEVELS}
_MAX_REDACT_DEPTH = MAX_DEPTH  # deeper structures are cut (vigil.jsonsafe's one depth rule)
# scheme://userinfo@ : the userinfo runs to the last "@" before the authority ends (a "/", "?",
# "#" or a space), so a password holding a raw "@" is masked whole.
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
_MASKED_CREDENTIALS = r"\1" + REDACTED + "@"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


# --- redaction ----------------------------------------------------------------------------


def _is_secret(key: object, needles: tuple[str, ...]) -> bool:
    lowered = safe_text(key).lower()
    return any(needle in lowered for needle in needles)


def mask_credentials(text: str) -> str:
    """``text`` with the ``user:password`` of every ``scheme://user:password@host`` masked.

    The whole userinfo becomes ``[REDACTED]`` (a token alone before the ``@``, as in
    ``https://TOKEN@github.com``, is a credential too).
    """
    if "@" not in text or "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(_MASKED_CREDENTIALS, text)


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
    ``X-Api-Key`` both match. Dicts nested in dicts, lists, tuples and sets are redacted too
    (sets and tuples become lists), and so are dataclass instances and NamedTuples (as dicts of
    their fields: the JSON encoder would otherwise write their fields unredacted). Every string
    value (``value`` itself too) has URL credentials masked (``scheme://[REDACTED]@host``, see
    :func:`mask_credentials`). Keys that are not strings, ints, floats, bools or None become
    their text (:func:`vigil.text.safe_text`). Past 32 levels a subtree is replaced by
    ``"[TOO DEEP]"``: nothing is ever turned into a string before it is redacted. Other objects
    are kept as they are and written as their ``str()``: do not put secrets in them. The
    caller's objects are never modified.
    """
    needles = keys if isinstance(keys, tuple) else tuple(k.lower() for k in keys)
    if _depth > _MAX_REDACT_DEPTH:
        return TOO_DEEP
    if type(value) is not dict:  # a plain dict, the usual metadata, skips the checks below
        if type(value) is str:
            return mask_credentials(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        elif isinstance(value, tuple) and hasattr(value, "_asdict"):
            value = value._asdict()
        if not isinstance(value, Mapping):
            if isinstance(value, list | tuple | set | frozenset | deque):
                return [redact(v, needles, _depth + 1) for v in value]
            return value
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
            k = k if isinstance(k, int | float | bool) or k is None else safe_text(k)
            secret = _is_secret(k, needles)
        if secret:
            out[k] = REDACTED
        elif type(v) in atoms:
            out[k] = mask_credentials(v) if type(v) is str and "@" in v else v
        else:
            out[k] = redact(v, needles, _depth + 1)
    return out


# --- process fields: service, host, pid ---------------------------------------------------

# The service/host/pid fields every line carries (monitoring.logging.service, include_host,
# include_pid), in that order. Replaced whole, never changed in place, so a line reads one
# global: made from the settings by the first formatter (every logger has one) and again by
# each configure(); a forked child replaces the pid with its own before it runs any code.
_process_fields: dict[str, Any] = {}
_process_ready = False


def _otel_service_name() -> str:
    """The service name OpenTelemetry would use: ``OTEL_SERVICE_NAME``, else ``service.name``
    in ``OTEL_RESOURCE_ATTRIBUTES`` (percent-decoded, the last one winning, as the SDK reads
    it); cut to printable text of at most ``SERVICE_MAX_CHARS`` characters; ``""`` if none."""
    name = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    if not name:
        for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip() == "service.name":
                name = urllib.parse.unquote(value.strip())
    name = "".join(c for c in valid_text(name) if c.isprintable()).strip()
    return name[:SERVICE_MAX_CHARS]


def _host_name() -> str:
    try:
        return safe_text(socket.gethostname())
    except OSError:  # pragma: no cover - gethostname() does not fail on Linux
        return "unknown"


def _apply_process_fields(settings: LoggingSettings) -> None:
    """Make the service/host/pid fields of every line from ``settings``."""
    global _process_fields, _process_ready
    fields: dict[str, Any] = {}
    service = settings.service or _otel_service_name()
    if service:
        fields["service"] = service
    if settings.include_host:
        fields["host"] = _host_name()
    if settings.include_pid == "true" or (settings.include_pid == "auto" and MULTIPROCESS):
        fields["pid"] = os.getpid()
    _process_fields = fields
    _process_ready = True


def _after_fork_in_child() -> None:
    """In a forked child (a gunicorn worker): its own pid on its lines, and fresh locks (a
    thread of the parent may have held one at the fork, and that thread is gone).

    Registered with :func:`vigil.forks.at_fork` when this module is imported, so it runs
    before the hooks of vigil's other modules (they import this one first, or register when
    their objects are made), whose threads may log as soon as they restart.
    """
    global _process_fields, _write_lock, _loggers_lock, _formatters_lock
    if "pid" in _process_fields:
        _process_fields = {**_process_fields, "pid": os.getpid()}
    _write_lock = threading.Lock()
    _loggers_lock = threading.Lock()
    _formatters_lock = threading.Lock()


# --- formatting ---------------------------------------------------------------------------


def _exception_fields(exc_info: ExcInfo) -> dict[str, str]:
    exc_type, exc, tb = exc_info
    message = safe_text(exc)
    name = getattr(exc_type, "__qualname__", None)
    name = safe_text(name if isinstance(name, str) else type(exc).__qualname__)
    try:  # a __str__ that raises is written as "<exception str() failed>" by traceback
        stack = "".join(traceback.format_exception(exc_type, exc, tb))
    except Exception:
        stack = f"{name}: {message}"
    return {"type": name, "message": mask_credentials(message),
            "stack": mask_credentials(stack)}


def _described(err: BaseException) -> str:
    """``Type: message`` of an error, for a line's ``log_error``."""
    return f"{valid_text(type(err).__name__)}: {safe_text(err)}"


# What python-json-logger's encoder writes in its own way; anything else it writes as str().
_ENCODER_TYPES = (datetime.date, datetime.time, enum.Enum, bytes, bytearray, TracebackType, type)


def _safe_default(base: Callable[[Any], Any], *, plain: bool) -> Callable[[Any], Any]:
    """The encoder's ``default`` (what JSON cannot hold), following vigil.text's rule.

    ``plain``: ``base`` is python-json-logger's own; objects it would write as ``str()`` are
    written by :func:`safe_text` instead (its ``repr()`` fallback would dodge the rule).
    """

    def default(value: Any) -> Any:
        if isinstance(value, BaseException):
            return _described(value)
        if plain and not isinstance(value, _ENCODER_TYPES) \
                and not dataclasses.is_dataclass(value):
            return safe_text(value)
        try:
            return base(value)
        except Exception:
            return unprintable(value)

    return default


_json_number = json_number  # (vigil.jsonsafe's rule for numbers)


def _json_ready(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot write made text: NaN and the infinities as
    ``"NaN"``/``"Infinity"``/``"-Infinity"``, ints too long for ``str()`` as a placeholder.
    Other objects are kept for the encoder's ``default``."""
    if isinstance(value, float | int):
        return _json_number(value)
    if depth > 2 * _MAX_REDACT_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {_json_key(k): _json_ready(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v, depth + 1) for v in value]
    return value


def _json_key(key: Any) -> Any:
    if isinstance(key, str) or key is None:
        return key
    if isinstance(key, float | int):
        number = _json_number(key)
        return number if number is key else safe_text(number)
    return safe_text(key)


def _valid_tree(value: Any, depth: int = 0) -> Any:
    """``value`` with every string in it (keys too) made valid text (:func:`valid_text`)."""
    if isinstance(value, str):
        return valid_text(value)
    if depth > 2 * _MAX_REDACT_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {valid_text(k) if isinstance(k, str) else k: _valid_tree(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_valid_tree(v, depth + 1) for v in value]
    return value


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# Line breaks JSON leaves raw but str.splitlines() and JavaScript split on: escaped, as Go does.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def _escape_line_breaks(line: str) -> str:
    """A JSON line with U+0085, U+2028 and U+2029 as ``\\u`` escapes (only strings hold them)."""
    return _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def _ascii_json(line: str) -> str:
    """A JSON line with every non-ASCII character as a ``\\uXXXX`` escape (ensure_ascii's bytes).

    Non-ASCII characters can only be inside JSON strings, and none of them needs any other
    escape, so escaping the runs of them in place is escaping them in each string.
    """
    return _NON_ASCII_RUN.sub(lambda m: encode_basestring_ascii(m.group())[1:-1], line)


_CUT_MARK = "..."
_MIN_STRING = 16  # a cut string keeps at least this many characters


def _cut(value: Any, room: list[int], default: Callable[[Any], Any], depth: int = 0) -> Any:
    """``value`` cut to about ``room[0]`` characters of JSON (``room`` is used up as it goes).

    A string keeps at most half the room left when it is reached, so the fields after it get
    a share; containers keep their first items while there is room and say how many they
    dropped. Objects JSON cannot hold are cut as what the encoder would write for them.
    """
    if isinstance(value, str):
        limit = max(_MIN_STRING, room[0] // 2)
        if len(value) > limit:
            value = value[:limit] + _CUT_MARK
        room[0] -= len(value) + 3
        return value
    if value is None or isinstance(value, bool | int | float):
        room[0] -= 8
        return _json_number(value) if isinstance(value, float | int) else value
    if depth > 2 * _MAX_REDACT_DEPTH:
        room[0] -= len(TOO_DEEP)
        return TOO_DEEP
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for index, (k, v) in enumerate(value.items()):
            if room[0] <= 0:
                out[_CUT_MARK] = f"{len(value) - index} more keys"
                break
            key = _cut(k, room, default, depth + 1) if isinstance(k, str) else _json_key(k)
            out[key] = _cut(v, room, default, depth + 1)
        room[0] -= 2
        return out
    if isinstance(value, list | tuple):
        kept: list[Any] = []
        for index, item in enumerate(value):
            if room[0] <= 0:
                kept.append(f"[{len(value) - index} more items]")
                break
            kept.append(_cut(item, room, default, depth + 1))
        room[0] -= 2
        return kept
    return _cut(default(value), room, default, depth + 1)


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
        if not _process_ready:
            _apply_process_fields(settings)
        self._fixed_redact = redact_keys is not None
        self._fixed_max = max_line_bytes is not None
        self.redact_keys = tuple(k.lower() for k in (
            redact_keys if redact_keys is not None else settings.redact_keys))
        self.max_line_bytes = max_line_bytes if max_line_bytes is not None else \
            settings.max_line_bytes
        self.on_truncated: Callable[[], object] | None = None  # called once per cut line
        with _formatters_lock:
            _formatters.add(self)

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
            entry = _json_ready(entry)
            line = self._encode_strict(entry)
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates, only ever inside JSON strings
                line = valid_text(line)
                entry = _valid_tree(entry)
            if ascii_only or self.json_ensure_ascii:
                line = _ascii_json(line)
            elif "\u2028" in line or "\u2029" in line or "\x85" in line:
                line = _escape_line_breaks(line)
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
            return "".join(_c_make_encoder({}, *args)(entry, 0))
        # Settings the shortcut does not cover (another serializer, an indent): theirs, on a
        # value already made strict.
        line: str = self.jsonify_log_record(_json_ready(entry))
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
            default = _safe_default(encoder.default, plain=self.json_default is None)
            self._line_default = default
            args = (default, encode_basestring, None, encoder.key_separator,
                    encoder.item_separator, False, False, False)
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
            cut = _cut(body, [room], default)
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
        minimal = {k: _cut(entry.get(k), [0], default)
                   for k in ("timestamp", "level", "component", "message")}
        minimal.update({k: _cut(entry[k], [0], default)
                        for k in ("service", "host", "pid") if k in entry})
        minimal.update(truncated=True, original_bytes=size)
        return self._strict_text(minimal, ascii_only), minimal

    def _strict_text(self, value: dict[str, Any], ascii_only: bool) -> str:
        """A cut entry's line: JSON-ready already, so only the text checks apply."""
        line = valid_text(self._encode_strict(value))
        return _ascii_json(line) if ascii_only or self.json_ensure_ascii else \
            _escape_line_breaks(line)

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
            return _fallback_line(self, getattr(record, "levelname", "NOTSET"),
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
            extras["log_error"] = f"message arguments not formatted: {_described(err)}"
        entry: dict[str, Any] = {
            "timestamp": format_rfc3339(record.created),
            "level": safe_text(record.levelname),
            "component": safe_text(record.name),
            "message": mask_credentials(message),
            "trace_id": trace_id,
            "span_id": span_id,
            **_process_fields,
            "metadata": redact(extras, self.redact_keys),
        }
        info = _exc_info(record.exc_info) if record.exc_info else None
        if info is not None:
            entry["exception"] = _exception_fields(info)
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
_formatters: weakref.WeakSet[JsonLineFormatter] = weakref.WeakSet()
_formatters_lock = threading.Lock()


# --- writing ------------------------------------------------------------------------------

_write_lock = threading.Lock()  # one line at a time, whichever logger writes it
_default_stream: IO[str] | None = None  # set by configure_logging(stream=...)


def _write(out: IO[str], line: str, entry: dict[str, Any],
           formatter: JsonLineFormatter | None) -> bool:
    """Write one line to ``out``; whether it was written. Never raises.

    A stream whose encoding cannot hold a character of the line (a file opened as ASCII)
    gets the same JSON with ``\\uXXXX`` escapes (``formatter`` None: a line that is not
    vigil's, written with backslash escapes); any other failure loses the line.
    """
    with _write_lock:
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


class _LevelCounter:
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
        self._counter = _LevelCounter(
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
        out = self.stream if self.stream is not None else (_default_stream or sys.stdout)
        if _write(out, line, entry, formatter if isinstance(formatter, JsonLineFormatter)
                  else None):
            self._counter.inc(record.levelname)
        else:
            self._counter.write_errors.inc()


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
        self.component = safe_text(component)  # vigil.text's rule: every line writes it
        self._stream = stream
        self._fixed_level = _level_number(level) if level is not None else None
        self._fixed_buffer = buffer_size is not None
        self._level = self._fixed_level if self._fixed_level is not None else \
            _LEVEL_NUMBERS[settings.level]
        if buffer_size is not None:  # validated by the settings class, like the config file
            settings = dataclasses.replace(settings, buffer_size=buffer_size)
        self._buffer: deque[dict[str, Any]] = deque(maxlen=settings.buffer_size)
        self._formatter = JsonLineFormatter(redact_keys)
        self._counter = _LevelCounter(
            registry if registry is not None else instruments.default_registry())
        self._formatter.on_truncated = self._counter.truncated.inc
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
            fields = _process_fields  # service/host/pid, made once per configuration
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
                info = _exc_info(exc_info)
                if info is not None:
                    entry["exception"] = _exception_fields(info)
            line, entry = formatter.format_line(entry)
        except Exception as err:  # never let logging break the caller
            line, entry = _fallback_line(formatter, level, self.component, message, trace_id,
                                         span_id, err)
        self._buffer.append(entry)
        # Looked up late (not bound at construction) so redirecting sys.stdout works.
        stream = self._stream
        out = stream if stream is not None else (_default_stream or sys.stdout)
        # _write inlined for the common case; it takes over when the stream raises.
        try:
            with _write_lock:
                out.write(line + "\n")
                out.flush()
        except Exception:
            if not _write(out, line, entry, formatter):
                self._counter.write_errors.inc()
                return
        inc = self._counter.incs.get(level)
        if inc is not None:
            inc()

    def _apply(self, config: VigilConfig) -> None:
        settings = config.monitoring.logging
        if self._fixed_level is None:
            self._level = _LEVEL_NUMBERS[settings.level]
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


def _fallback_line(formatter: JsonLineFormatter, level: str, component: str, message: object,
                   trace_id: object, span_id: object, err: BaseException
                   ) -> tuple[str, dict[str, Any]]:
    """The line written when an entry could not be: text only, with the error that stopped it
    in ``metadata.log_error``. Never raises."""
    entry: dict[str, Any] = {
        "timestamp": format_rfc3339(time.time()), "level": safe_text(level),
        "component": safe_text(component), "message": mask_credentials(safe_text(message)),
        "trace_id": None if trace_id is None else safe_text(trace_id),
        "span_id": None if span_id is None else safe_text(span_id),
        **_process_fields,
        "metadata": {"log_error": _described(err)}}
    try:
        return formatter.format_line(entry)
    except Exception:  # pragma: no cover - text only: nothing left that can fail
        return json.dumps({"level": entry["level"], "log_error": "unwritable entry"}), entry


def _exc_info(value: object) -> ExcInfo | None:
    """The exception a logging call's ``exc_info`` names, or None (also for what is not one)."""
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple):
        if len(value) == 3 and isinstance(value[1], BaseException):
            exc = value[1]
            tb = value[2] if isinstance(value[2], TracebackType) else exc.__traceback__
            return type(exc), exc, tb
        return None
    current = sys.exc_info()  # True (or anything else truthy): the one being handled
    return current if current[1] is not None else None


def _level_number(level: str) -> int:
    name = log_level_name(str(level))
    if name not in _LEVEL_NUMBERS:
        raise ConfigError("level", level, f"must be one of {', '.join(LOG_LEVELS)}")
    return _LEVEL_NUMBERS[name]


def get_recent_logs(limit: int = 100, *, level: str | None = None,
                    component: str | None = None) -> list[dict[str, Any]]:
    """Recent entries across every live :class:`StructuredLogger`, newest first.

    ``level`` keeps entries at that level or above; ``component`` keeps one component's.
    """
    minimum = _level_number(level) if level is not None else 0
    if component is not None:
        component = safe_text(component)  # as loggers keep theirs
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


# The loggers gunicorn and uvicorn write their own lines to (uvicorn.error propagates to
# uvicorn; under gunicorn, uvicorn-worker hands uvicorn.error and uvicorn.access the handlers of
# gunicorn.error and gunicorn.access).
SERVER_LOGGERS: tuple[str, ...] = (
    "gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access")


def logging_config(loggers: Iterable[str] = SERVER_LOGGERS, *,
                   level: str | None = None) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict sending ``loggers`` and the root logger to
    stdout as vigil JSON lines (:class:`JsonLineFormatter` on a :class:`JsonLineHandler`).

    The default ``loggers`` are gunicorn's and uvicorn's own (:data:`SERVER_LOGGERS`), so their
    start-up, error and access lines come out like the application's::

        # gunicorn.conf.py (gunicorn -c gunicorn.conf.py -k uvicorn_worker.UvicornWorker app:app)
        from vigil.monitoring.logs import logging_config
        logconfig_dict = logging_config()

        uvicorn.run(app, log_config=logging_config())        # uvicorn from Python

        # uvicorn from the command line: a JSON (or YAML) file
        python -c "import json, vigil; print(json.dumps(vigil.logging_config()))" > log.json
        uvicorn app:app --log-config log.json

    Each named logger gets the handler itself and stops propagating (no line is written twice;
    uvicorn-worker copies gunicorn's loggers' handlers, so they must hold one). The root
    logger gets it too: other stdlib loggers (the application's, third-party libraries') write
    vigil lines as after :func:`configure_logging`. ``level`` (one of ``DEBUG`` ... ``CRITICAL``)
    is set on every named logger and the root; without it the named loggers keep the level
    their server gives them (gunicorn's ``--log-level``, uvicorn's) and the root gets
    ``monitoring.logging.level``. The dict is plain data (``json.dumps`` takes it): edit it
    freely, e.g. another handler for a file. Lines carry ``service``/``host``/``pid`` as
    ``monitoring.logging.*`` says, also in each gunicorn worker (the pid after the fork).
    """
    names = [loggers] if isinstance(loggers, str) else list(loggers)
    for name in names:
        if not isinstance(name, str) or not name.strip() or name == "root":
            raise ConfigError("loggers", name, "expected logger names such as "
                              "'gunicorn.error' (the root logger is always included)")
    if level is not None:
        _level_number(level)  # a ConfigError naming the levels
    root_level = str(level).upper() if level is not None else \
        get_config().monitoring.logging.level
    named: dict[str, Any] = {"propagate": False}
    if level is not None:
        named["level"] = root_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"vigil-json": {"()": f"{__name__}.JsonLineFormatter"}},
        "handlers": {"vigil-json": {"class": f"{__name__}.JsonLineHandler",
                                    "formatter": "vigil-json"}},
        "loggers": {name: dict(named, handlers=["vigil-json"]) for name in names},
        "root": {"level": root_level, "handlers": ["vigil-json"]},
    }


@on_configure
def _on_configure(config: VigilConfig) -> None:
    _apply_process_fields(config.monitoring.logging)
    with _formatters_lock:
        formatters = list(_formatters)
    for formatter in formatters:
        formatter._apply(config.monitoring.logging)
    with _loggers_lock:
        loggers = list(_loggers)
    for logger in loggers:
        logger._apply(config)


at_fork(after_in_child=_after_fork_in_child)
