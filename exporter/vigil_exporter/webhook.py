"""Alertmanager webhook payloads (version 4) -> the arguments of ``AlertManager.send_alert``.

Pure: no I/O, no clock, no globals. :func:`parse_notification` turns a request body into a
:class:`Notification` or raises :class:`PayloadError` with the HTTP status to answer:

- **400**: the body is not UTF-8, not JSON, or nested too deeply to parse; the message says
  what is wrong (for JSON: where, by line and column).
- **422**: valid JSON of the wrong shape; the message names the path
  (``alerts[0].labels.severity: expected a string, got number``).

**Strict on what vigil uses, lenient on the rest.** Required: ``version`` (exactly ``"4"``),
``alerts`` (a list) and, per alert, ``status`` (``firing`` or ``resolved``), ``labels`` (an
object of strings), ``fingerprint`` (a non-empty string), ``startsAt`` and ``endsAt``
(strings). Optional, type-checked when present: ``annotations`` (absent or null: none),
``generatorURL``, and the notification's ``receiver``, ``status``, ``groupKey``,
``externalURL``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``, ``truncatedAlerts``.
Unknown fields are ignored, so a newer Alertmanager that adds fields keeps working.

**Caps**, so one request cannot make vigil hold unbounded data (every one is a 422): at most
:data:`MAX_ALERTS` alerts per notification, :data:`MAX_PAIRS` entries per labels/annotations
object, :data:`MAX_LABEL_LENGTH` characters per label name, label value and annotation name,
:data:`MAX_TEXT_LENGTH` characters per other string (annotation values, URLs, group keys:
long enough for a generator URL that carries a whole PromQL expression), except the
``fingerprint`` (:data:`MAX_FINGERPRINT_LENGTH`) and ``startsAt``/``endsAt``
(:data:`MAX_TIME_LENGTH`), which the store keeps per alert identity. So one notification
holds at most ~1000 x 100 x 64 KiB of strings before ``max_body_bytes`` (1 MiB) cuts it
first: the body limit is the real bound. Strings must be
valid Unicode: a JSON escape of a lone surrogate (``"\\ud800"``) is rejected, since it could
not be written to the logs or the metrics exposition later.

**Severity** comes from the ``severity`` label (matched case-insensitively; the label itself
is kept unchanged in ``labels``):

================================  ===============
``severity`` label                vigil severity
================================  ===============
critical, page, p1                critical
high, error, major                high
warning, warn, medium             medium
info, low, none, minor            low
anything else, or no label        medium
================================  ===============
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from vigil.monitoring.alerts import SEVERITY_NAMES

__all__ = [
    "DEFAULT_SEVERITY",
    "MAX_ALERTS",
    "MAX_FINGERPRINT_LENGTH",
    "MAX_LABEL_LENGTH",
    "MAX_PAIRS",
    "MAX_TEXT_LENGTH",
    "MAX_TIME_LENGTH",
    "NOTIFICATION_SCHEMA",
    "Notification",
    "PayloadError",
    "SEVERITY_BY_LABEL",
    "SendAlertKwargs",
    "WEBHOOK_VERSION",
    "WebhookAlert",
    "map_severity",
    "parse_notification",
    "to_send_alert_kwargs",
]

WEBHOOK_VERSION: Final = "4"
MAX_ALERTS: Final = 1000
MAX_PAIRS: Final = 100
MAX_LABEL_LENGTH: Final = 4096
MAX_TEXT_LENGTH: Final = 65536
MAX_FINGERPRINT_LENGTH: Final = 128  # Alertmanager's are 16 hex digits
MAX_TIME_LENGTH: Final = 64  # RFC 3339 with nanoseconds and an offset is 35 characters

SOURCE: Final = "alertmanager"
DEFAULT_SEVERITY: Final = "medium"
SEVERITY_BY_LABEL: Final[Mapping[str, str]] = SEVERITY_NAMES  # the library's vocabulary
_ALERT_STATUSES: Final = ("firing", "resolved")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_QUOTE_LIMIT = 64  # characters of a received value echoed in an error message


class PayloadError(ValueError):
    """A webhook body vigil will not accept: ``status`` is the HTTP answer (400 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class WebhookAlert:
    """One alert of a notification, as Alertmanager sent it (camelCase fields in snake_case)."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str
    generator_url: str = ""

    @property
    def alertname(self) -> str:
        """The ``alertname`` label ("" when absent)."""
        return self.labels.get("alertname", "")


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook request: a group of alerts and where they came from."""

    alerts: tuple[WebhookAlert, ...]
    version: str = WEBHOOK_VERSION
    receiver: str = ""
    status: str = ""
    group_key: str = ""
    external_url: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    truncated_alerts: int = 0


class SendAlertKwargs(TypedDict):
    """The keyword arguments of ``AlertManager.send_alert`` for one webhook alert."""

    severity: str
    component: str
    message: str
    metadata: dict[str, Any]
    source: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str


# --- parsing ------------------------------------------------------------------------------


def parse_notification(body: bytes) -> Notification:
    """The notification in ``body``; raises :class:`PayloadError` (400 or 422) otherwise."""
    return _notification(_decode(body))


def _decode(body: bytes) -> object:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PayloadError(400, f"body is not valid UTF-8: byte 0x{body[err.start]:02x} at "
                                f"offset {err.start}") from None
    if not text.strip():
        raise PayloadError(400, "body is empty; expected a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PayloadError(400, f"body is not valid JSON: {err.msg} at line {err.lineno} "
                                f"column {err.colno}") from None
    except RecursionError:
        raise PayloadError(400, "body is not valid JSON for a webhook: nested too deeply") \
            from None
    except ValueError as err:  # e.g. an integer longer than Python's int conversion limit
        raise PayloadError(400, f"body is not valid JSON: {err}") from None


def _notification(data: object) -> Notification:
    top = _object(data, "body")
    version = _text(top, "version", "", required=True)
    if version != WEBHOOK_VERSION:
        raise PayloadError(422, f"version: unsupported Alertmanager webhook version "
                                f"{_quote(version)}; expected {WEBHOOK_VERSION!r}")
    status = _text(top, "status", "")
    if status and status not in _ALERT_STATUSES:
        raise _bad_status("status", status)
    alerts_value = _field(top, "alerts", "", required=True)
    if not isinstance(alerts_value, list):
        raise _wrong_type("alerts", "an array", alerts_value)
    if len(alerts_value) > MAX_ALERTS:
        raise PayloadError(422, f"alerts: {len(alerts_value)} alerts; at most {MAX_ALERTS} "
                                f"per notification")
    truncated = top.get("truncatedAlerts", 0)
    if truncated is None:
        truncated = 0
    # JSON Schema (and so the published description) counts 280.0 as an integer: accept it.
    if isinstance(truncated, float) and truncated.is_integer():
        truncated = int(truncated)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise _wrong_type("truncatedAlerts", "an integer >= 0", truncated)
    return Notification(
        alerts=tuple(_alert(value, f"alerts[{i}]") for i, value in enumerate(alerts_value)),
        version=version, receiver=_text(top, "receiver", ""), status=status,
        group_key=_text(top, "groupKey", ""), external_url=_text(top, "externalURL", ""),
        group_labels=_pairs(top, "groupLabels", ""),
        common_labels=_pairs(top, "commonLabels", ""),
        common_annotations=_pairs(top, "commonAnnotations", "", label_values=False),
        truncated_alerts=truncated)


def _alert(value: object, path: str) -> WebhookAlert:
    obj = _object(value, path)
    status = _text(obj, "status", path, required=True)
    if status not in _ALERT_STATUSES:
        raise _bad_status(_join(path, "status"), status)
    # Checked in the order Alertmanager writes the fields, so the first error is the first
    # wrong field a reader of the body meets.
    labels = _pairs(obj, "labels", path, required=True)
    annotations = _pairs(obj, "annotations", path, label_values=False)
    starts_at = _text(obj, "startsAt", path, required=True, limit=MAX_TIME_LENGTH)
    ends_at = _text(obj, "endsAt", path, required=True, limit=MAX_TIME_LENGTH)
    generator_url = _text(obj, "generatorURL", path)
    fingerprint = _text(obj, "fingerprint", path, required=True, limit=MAX_FINGERPRINT_LENGTH)
    if not fingerprint:
        raise PayloadError(422, f"{_join(path, 'fingerprint')}: must not be empty")
    return WebhookAlert(status=status, labels=labels, annotations=annotations,
                        starts_at=starts_at, ends_at=ends_at, fingerprint=fingerprint,
                        generator_url=generator_url)


# --- field readers: each names the full path in its error ---------------------------------


def _field(obj: dict[str, Any], key: str, path: str, *, required: bool) -> object:
    if key not in obj or (obj[key] is None and not required):
        if required:
            raise PayloadError(422, f"{_join(path, key)}: required")
        return None
    return obj[key]


def _text(obj: dict[str, Any], key: str, path: str, *, required: bool = False,
          limit: int = MAX_TEXT_LENGTH) -> str:
    value = _field(obj, key, path, required=required)
    if value is None:
        if required:
            raise _wrong_type(_join(path, key), "a string", value)
        return ""
    if not isinstance(value, str):
        raise _wrong_type(_join(path, key), "a string", value)
    return _checked(value, _join(path, key), limit)


def _pairs(obj: dict[str, Any], key: str, path: str, *, required: bool = False,
           label_values: bool = True) -> dict[str, str]:
    """An object of strings: labels (short values) or annotations (long values)."""
    where = _join(path, key)
    value = _field(obj, key, path, required=required)
    if value is None:
        if required:
            raise _wrong_type(where, "an object of strings", value)
        return {}
    if not isinstance(value, dict):
        raise _wrong_type(where, "an object of strings", value)
    if len(value) > MAX_PAIRS:
        raise PayloadError(422, f"{where}: {len(value)} entries; at most {MAX_PAIRS} allowed")
    limit = MAX_LABEL_LENGTH if label_values else MAX_TEXT_LENGTH
    pairs: dict[str, str] = {}
    for name, item in value.items():
        if len(name) > MAX_LABEL_LENGTH:
            raise PayloadError(422, f"{where}: a name of {len(name)} characters; at most "
                                    f"{MAX_LABEL_LENGTH} allowed")
        _checked(name, f"{where} (the name {_quote(name)})", MAX_LABEL_LENGTH)
        item_path = _join(where, name)
        if not isinstance(item, str):
            raise _wrong_type(item_path, "a string", item)
        pairs[name] = _checked(item, item_path, limit)
    return pairs


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "an object", value)
    return value


def _checked(value: str, path: str, limit: int) -> str:
    if len(value) > limit:
        raise PayloadError(422, f"{path}: {len(value)} characters; at most {limit} allowed")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise PayloadError(422, f"{path}: not valid Unicode (a lone surrogate "
                                    f"\\u{ord(value[err.start]):04x} at character "
                                    f"{err.start})") from None
    return value


# --- messages -----------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    """``path.key``, or ``path["odd key"]`` when the key is not an identifier."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_quote(key)}]"


def _quote(value: str) -> str:
    """A received string as it may appear in a message: short, ASCII, JSON-quoted."""
    short = value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "..."
    return json.dumps(short)  # ensure_ascii: escapes control characters and lone surrogates


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(path: str, expected: str, value: object) -> PayloadError:
    return PayloadError(422, f"{path}: expected {expected}, got {_json_type(value)}")


def _bad_status(path: str, value: str) -> PayloadError:
    allowed = " or ".join(repr(s) for s in _ALERT_STATUSES)
    return PayloadError(422, f"{path}: {_quote(value)} is not an alert status; expected "
                             f"{allowed}")


# --- to vigil -----------------------------------------------------------------------------


def map_severity(label: str | None) -> str:
    """vigil's severity for a ``severity`` label value (see the module's table)."""
    if label is None:
        return DEFAULT_SEVERITY
    return SEVERITY_BY_LABEL.get(label.strip().lower(), DEFAULT_SEVERITY)


def _first(*values: str | None) -> str:
    return next((value for value in values if value), "")


def to_send_alert_kwargs(alert: WebhookAlert, notification: Notification) -> SendAlertKwargs:
    """The ``send_alert`` arguments for ``alert``: ``alert_manager.send_alert(**kwargs)``.

    ``component`` is the ``component`` label, else ``job``, else ``"alertmanager"``;
    ``message`` the ``summary`` annotation, else ``description``, else the ``alertname``;
    ``fingerprint`` is Alertmanager's (so a resolved alert matches its firing one);
    ``metadata`` keeps Alertmanager's names: ``generatorURL``, ``startsAt``, ``endsAt``,
    ``receiver``, ``groupKey``, ``externalURL``.
    """
    labels, annotations = dict(alert.labels), dict(alert.annotations)
    return {
        "severity": map_severity(labels.get("severity")),
        "component": _first(labels.get("component"), labels.get("job")) or SOURCE,
        "message": _first(annotations.get("summary"), annotations.get("description"),
                          alert.alertname) or "alert from Alertmanager",
        "metadata": {
            "generatorURL": alert.generator_url, "startsAt": alert.starts_at,
            "endsAt": alert.ends_at, "receiver": notification.receiver,
            "groupKey": notification.group_key, "externalURL": notification.external_url,
        },
        "source": SOURCE,
        "status": alert.status,
        "labels": labels,
        "annotations": annotations,
        "fingerprint": alert.fingerprint,
    }


# --- the OpenAPI description of the body (what the parser accepts, caps included) ---------

_LABEL_MAP: dict[str, Any] = {
    "type": "object", "maxProperties": MAX_PAIRS,
    "propertyNames": {"maxLength": MAX_LABEL_LENGTH},
    "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_LENGTH},
}
_ANNOTATION_MAP: dict[str, Any] = {
    "type": "object", "maxProperties": MAX_PAIRS,
    "propertyNames": {"maxLength": MAX_LABEL_LENGTH},
    "additionalProperties": {"type": "string", "maxLength": MAX_TEXT_LENGTH},
}
_TEXT: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT_LENGTH}
_STATUS: dict[str, Any] = {"type": "string", "enum": list(_ALERT_STATUSES)}

NOTIFICATION_SCHEMA: Final[dict[str, Any]] = {
    "title": "AlertmanagerNotification",
    "description": "Alertmanager's webhook payload, version 4 (what Alertmanager 0.25+ sends).",
    "type": "object",
    "required": ["version", "alerts"],
    "properties": {
        "version": {"type": "string", "enum": [WEBHOOK_VERSION]},
        "receiver": _TEXT,
        "status": _STATUS,
        "groupKey": _TEXT,
        "externalURL": _TEXT,
        "groupLabels": _LABEL_MAP,
        "commonLabels": _LABEL_MAP,
        "commonAnnotations": _ANNOTATION_MAP,
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "alerts": {
            "type": "array", "maxItems": MAX_ALERTS,
            "items": {
                "type": "object",
                "required": ["status", "labels", "fingerprint", "startsAt", "endsAt"],
                "properties": {
                    "status": _STATUS,
                    "labels": _LABEL_MAP,
                    "annotations": _ANNOTATION_MAP,
                    "fingerprint": {"type": "string", "minLength": 1,
                                    "maxLength": MAX_FINGERPRINT_LENGTH},
                    "startsAt": {"type": "string", "maxLength": MAX_TIME_LENGTH},
                    "endsAt": {"type": "string", "maxLength": MAX_TIME_LENGTH},
                    "generatorURL": _TEXT,
                },
            },
        },
    },
}
