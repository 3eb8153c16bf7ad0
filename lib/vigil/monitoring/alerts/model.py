"""What an alert is: the :class:`Alert` value, its statuses, its severity scale and the
handler signature; what one weighs against the buffers' byte budget; its one mutation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.vocabulary import Severity

__all__ = ["FIRING", "RESOLVED", "STATUSES", "Alert", "AlertHandler", "AlertSeverity",
           "alert_size", "count_repeat", "parse_status"]

FIRING = "firing"
RESOLVED = "resolved"
STATUSES = (FIRING, RESOLVED)

AlertHandler = Callable[["Alert"], object]
"""A handler: called with the :class:`Alert`; may return an awaitable (an ``async def``)."""


AlertSeverity = Severity
"""How bad an alert is: :class:`vigil.vocabulary.Severity`, the one scale of alerts and
handled errors. ``AlertSeverity("HIGH")`` and ``AlertSeverity("warning")`` work."""


def parse_status(value: str) -> str:
    """``value`` as one of :data:`STATUSES` (any case, surrounding blanks ignored), else a
    ``ValueError`` naming it and the allowed ones."""
    status = value.strip().lower() if isinstance(value, str) else value
    if status not in STATUSES:
        raise ValueError(f"invalid alert status {value!r}; expected one of: {', '.join(STATUSES)}")
    return status


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Alert(Mapping[str, Any]):
    """One alert. Read it as a mapping (``alert["message"]``, ``dict(alert)``) or by attribute.

    Fields are read-only; only ``count`` changes, when a repeat is folded into this alert.
    Treat ``metadata``, ``labels`` and ``annotations`` as read-only too: every handler gets the
    same object.
    """

    id: str
    timestamp: str
    severity: str
    component: str
    message: str
    metadata: dict[str, Any]
    fingerprint: str
    source: str = "vigil"
    status: str = FIRING
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    count: int = 1

    def __getitem__(self, key: str) -> Any:
        if key in _ALERT_KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_ALERT_KEYS)

    def __len__(self) -> int:
        return len(_ALERT_KEYS)


_ALERT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Alert))


def count_repeat(alert: Alert) -> None:
    """Fold one more repeat into ``alert``: the only mutation of an Alert (it is frozen so
    that handlers cannot change it)."""
    object.__setattr__(alert, "count", alert.count + 1)


def alert_size(alert: Alert) -> int:
    """About how many bytes ``alert`` holds: its text as UTF-8-ish characters, metadata as
    JSON (what the buffers' byte budget counts)."""
    text = len(alert.message) + len(alert.component) + len(alert.id) + 200
    text += sum(len(k) + len(v) for k, v in alert.labels.items())
    text += sum(len(k) + len(v) for k, v in alert.annotations.items())
    try:
        text += len(json.dumps(alert.metadata, ensure_ascii=False, default=str))
    except (TypeError, ValueError):  # pragma: no cover - metadata is JSON-safe by construction
        text += 1000
    return text
