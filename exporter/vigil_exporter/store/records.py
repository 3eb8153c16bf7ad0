"""What goes into a store and comes out: the records every backend speaks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Accepted", "Claim", "DeadLetter", "Incoming", "StoreStats"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One alert of a webhook notification, ready to store.

    ``payload`` is what a handler gets back (JSON-able: the ``send_alert`` arguments);
    ``identity``, ``status``, ``starts_at`` and ``ends_at`` decide whether it is a redelivery.
    """

    id: str
    identity: str
    status: str
    starts_at: str
    ends_at: str
    payload: Mapping[str, Any]

    def encoded(self) -> str:
        """The payload as stored: compact JSON (its length counts against ``store_max_bytes``)."""
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :meth:`AlertStore.accept` did.

    ``status``: ``"accepted"`` (``stored`` alerts committed for delivery, ``duplicates``
    recognised as redeliveries and dropped; ``new_ids`` are the stored alerts' ids) or
    ``"full"`` (nothing committed, nothing remembered: ask Alertmanager to retry).
    """

    status: Literal["accepted", "full"]
    stored: int = 0
    duplicates: int = 0
    new_ids: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery taken out of the store by one owner: call ``handler`` with ``payload``.

    ``attempt`` is 1 for the first call (crashed calls are not counted: a delivery whose owner
    died is handed out again with the same attempt number).
    """

    alert_id: str
    handler: str
    attempt: int
    payload: dict[str, Any]
    received_at: float
    owner: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery given up after ``attempts`` failed calls; kept for inspection."""

    alert_id: str
    handler: str
    attempts: int
    error: str
    failed_at: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoreStats:
    """How full the store is: alerts and bytes waiting (what the caps bound), and per handler."""

    pending_alerts: int
    pending_bytes: int
    dead_letters: int
    pending_by_handler: dict[str, int] = field(default_factory=dict)
    running_by_handler: dict[str, int] = field(default_factory=dict)
