"""De-duplication: the one rule both backends apply (see :func:`identity` and
:func:`is_redelivery`). Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Episode", "identity", "is_redelivery", "next_episode"]


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
