"""The :class:`AlertStore` protocol: what the webhook and the delivery loop need from a store.

Both backends implement it and pass the same contract tests (``tests/exporter/test_store.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from vigil_exporter.store.records import Accepted, Claim, DeadLetter, Incoming, StoreStats

__all__ = ["AlertStore"]


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
