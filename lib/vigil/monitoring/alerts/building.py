"""Building an :class:`~.model.Alert` from ``send_alert``'s arguments: the severity and status
checked, every text and the metadata made JSON-safe, the fingerprint computed. Pure: the
caller gives the wall-clock time.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from vigil.clock import format_rfc3339
from vigil.jsonsafe import json_safe
from vigil.monitoring.alerts.model import FIRING, Alert, AlertSeverity, parse_status
from vigil.text import safe_text

__all__ = ["build_alert"]


def build_alert(severity: AlertSeverity | str, component: str, message: str,
                metadata: Mapping[str, Any] | None = None, *, timestamp: float,
                source: str = "vigil", status: str = FIRING,
                labels: Mapping[str, str] | None = None,
                annotations: Mapping[str, str] | None = None,
                fingerprint: str | None = None, id: str | None = None) -> Alert:
    """The alert made at ``timestamp`` (epoch seconds); ``id`` defaults to a new random one.
    Raises ``ValueError`` for an unknown severity or status."""
    level = AlertSeverity.parse(severity, "alert severity").value
    state = parse_status(status)
    label_map = _str_dict(labels)
    component, message, source = safe_text(component), safe_text(message), safe_text(source)
    return Alert(
        id=id if id is not None else uuid.uuid4().hex,
        timestamp=format_rfc3339(timestamp),
        severity=level, component=component, message=message,
        metadata=json_safe(metadata or {}),
        fingerprint=fingerprint or _fingerprint(source, level, component, message, state,
                                                label_map),
        source=source, status=state, labels=label_map, annotations=_str_dict(annotations))


def _str_dict(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {safe_text(k): safe_text(v) for k, v in (values or {}).items()}


def _fingerprint(source: str, severity: str, component: str, message: str, status: str,
                 labels: Mapping[str, str]) -> str:
    """16 hex digits (Alertmanager's length) of a SHA-256 over the alert's identity."""
    identity = [source, severity, component, message, status, sorted(labels.items())]
    encoded = json.dumps(identity, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]

