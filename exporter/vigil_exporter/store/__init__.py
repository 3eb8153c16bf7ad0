"""The durable store between the Alertmanager webhook and the alert handlers.

The webhook answers 2xx only once :meth:`AlertStore.accept` has committed the notification's
alerts; the :class:`~vigil_exporter.delivery.DeliveryLoop` takes them out again, one delivery
(alert, handler) at a time, and removes each once its handler returned. So the store is the one
queue between receiver and handlers, and what it holds survives the process.

Backends: :class:`~vigil_exporter.store.sqlite.SQLiteStore` (the default: a file in
``exporter.state_dir``, WAL mode, synchronous commits; several receiver processes on one host
may share it) and :class:`~vigil_exporter.store.redis.RedisStore` (``exporter.store_url:
redis://...``: receivers on several hosts). Both implement :class:`AlertStore` and pass the
same contract tests (``tests/exporter/test_store.py``).

Pieces that are the same for every backend live here, without I/O:

- :func:`identity` and :func:`is_redelivery`: the de-duplication rule (see there);
- :class:`Incoming` / :class:`Accepted` / :class:`Claim`: what goes in and comes out;
- :func:`owner_id` and :func:`owner_is_dead`: who holds a claimed delivery.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil

from vigil.config import ExporterSettings

__all__ = [
    "Accepted",
    "AlertStore",
    "Claim",
    "DeadLetter",
    "Episode",
    "Incoming",
    "StoreStats",
    "default_state_dir",
    "identity",
    "is_redelivery",
    "open_store",
    "owner_id",
    "owner_is_dead",
]


# --- what goes in and comes out -------------------------------------------------------------


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


class AlertStore(Protocol):
    """What the webhook and the delivery loop need from a store. Every method is atomic.

    ``now`` is wall-clock seconds (``time.time()``): receivers on several hosts compare them.
    """

    def accept(self, alerts: Sequence[Incoming], handlers: Sequence[str],
               now: float) -> Accepted:
        """Commit the alerts that are not redeliveries, each with one delivery per handler.

        All or nothing: when the new alerts would pass ``store_max_alerts`` or
        ``store_max_bytes``, nothing is stored and no identity is remembered (``"full"``), so
        Alertmanager's retry is taken as new. With no handlers, alerts are only remembered for
        de-duplication.
        """
        ...

    def claim(self, handler: str, owner: str, now: float, lease: float) -> Claim | None:
        """The oldest due delivery for ``handler``, now held by ``owner`` until ``now + lease``.

        Due: pending and past its retry time, or claimed by an owner whose lease ran out.
        """
        ...

    def complete(self, claim: Claim) -> None:
        """The handler returned: the delivery is gone (and the alert, once all are)."""
        ...

    def retry(self, claim: Claim, error: str, due: float) -> None:
        """The handler raised: try again at ``due`` (attempt + 1)."""
        ...

    def dead_letter(self, claim: Claim, error: str, now: float) -> int:
        """The handler raised for the last allowed time: keep it as a dead letter.

        Returns how many older dead letters were discarded to stay within
        ``dead_letter_limit``.
        """
        ...

    def renew(self, owner: str, until: float, held: Sequence[tuple[str, str]]) -> None:
        """Extend the leases of the deliveries ``held`` (``(alert_id, handler)`` pairs) by
        ``owner`` (its heartbeat).

        Only those the owner knows it is running: a claim whose answer was lost (a timeout
        after the store took it) is not renewed, so its lease runs out and it is handed out
        again instead of being held forever by a live process that never calls its handler.
        """
        ...

    def release(self, owner: str) -> int:
        """Hand back every delivery ``owner`` holds (a stop that did not finish); returns how
        many."""
        ...

    def owners(self) -> set[str]:
        """The owners holding deliveries now."""
        ...

    def stats(self) -> StoreStats:
        ...

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, newest first."""
        ...

    def open_alert_ids(self, limit: int) -> list[str]:
        """The ids of up to ``limit`` alerts with a delivery still pending or running, newest
        (last accepted) first: which alerts the handlers have not all finished."""
        ...

    def close(self) -> None:
        ...


# --- de-duplication: the one rule both backends apply -----------------------------------------


@dataclass(frozen=True, slots=True)
class Episode:
    """What the store remembers of an alert identity: its last status and that episode's times."""

    status: str
    starts_at: str
    ends_at: str


def identity(labels: Mapping[str, str], replica_labels: Iterable[str]) -> str:
    """An alert's identity: a hash of its labels without the HA replica labels.

    Alertmanager's fingerprint hashes every label, so the two Prometheus servers of an HA pair
    (``external_labels: {replica: a|b}``) send the same alert under two fingerprints. Without
    the replica labels they have one identity.
    """
    skip = set(replica_labels)
    kept = sorted((k, v) for k, v in labels.items() if k not in skip)
    encoded = json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _instant(text: str) -> float | None:
    """An RFC 3339 time as epoch seconds; None when it does not parse (or is Go's zero time)."""
    value = text.strip()
    if not value or value.startswith("0001-01-01"):
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:  # Alertmanager writes nanoseconds; Python's parser takes at most microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}" if digits else head + rest
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _after(later: str, earlier: str) -> bool:
    """Whether time ``later`` is after time ``earlier`` (unparsable times: whether they differ)."""
    a, b = _instant(later), _instant(earlier)
    if a is None or b is None:
        return later != earlier
    return a > b


def is_redelivery(previous: Episode | None, status: str, starts_at: str) -> bool:
    """Whether an alert (``status``, ``startsAt``) adds nothing to what was delivered before.

    The store keeps, per identity, the last status delivered and the times of that episode:

    - **firing**: a redelivery while the identity is firing (a retry, a group re-notification,
      ``repeat_interval``, another Alertmanager peer, or the other replica of an HA pair, whose
      ``startsAt`` differs by its own evaluation time). After a resolution it is a new episode
      only when it started after that resolution's ``endsAt``: a lagging replica still firing
      the episode that just resolved is a redelivery.
    - **resolved**: new while the identity is firing; after a resolution, a redelivery unless it
      belongs to a later episode (it started after that resolution ended: its firing was never
      seen, so it is news).

    This relies on resolved notifications being sent (Alertmanager's default,
    ``send_resolved: true``): without them, an identity stays "firing" until it is evicted from
    the ``webhook_dedup_size`` identities remembered.
    """
    if previous is None:
        return False
    if status == "firing":
        if previous.status == "firing":
            return True
        return not _after(starts_at, previous.ends_at)
    if previous.status == "firing":
        return False
    return not _after(starts_at, previous.ends_at)


def next_episode(previous: Episode | None, status: str, starts_at: str,
                 ends_at: str) -> Episode:
    """What to remember after delivering an alert that :func:`is_redelivery` found new."""
    del previous  # the new alert replaces what was known
    return Episode(status, starts_at, ends_at)


# --- owners: who holds a claimed delivery -----------------------------------------------------

_HOST = socket.gethostname()


def owner_id(pid: int | None = None) -> str:
    """``host:pid:start-time`` of this process: unique even when a pid is reused."""
    pid = os.getpid() if pid is None else pid
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = 0.0
    return f"{_HOST}:{pid}:{started:.3f}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that no longer runs (False: alive, or on
    another host, where only its lease can tell)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_text, started = parts
    if host != _HOST or not pid_text.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid_text)).create_time():.3f}" != started
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


# --- opening --------------------------------------------------------------------------------


def default_state_dir() -> Path:
    """Where ``vigil serve`` keeps its store without ``exporter.state_dir``: XDG's state home."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "state")
    return Path(base) / "vigil"


def open_store(settings: ExporterSettings, state_dir: str | os.PathLike[str] | None = None
               ) -> AlertStore:
    """The store ``settings`` name: Redis for ``store_url``, else SQLite in the state folder.

    ``state_dir`` overrides ``settings.state_dir``; with neither, :func:`default_state_dir`.
    """
    if settings.store_url:
        from vigil_exporter.store.redis import RedisStore

        return RedisStore(settings.store_url, settings)
    from vigil_exporter.store.sqlite import SQLiteStore

    folder = Path(state_dir) if state_dir is not None else (
        Path(settings.state_dir) if settings.state_dir else default_state_dir())
    return SQLiteStore(folder, settings)
