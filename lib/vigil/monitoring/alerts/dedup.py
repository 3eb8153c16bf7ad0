"""De-duplication: which dispatched alert a new one repeats, if any.

The index holds the dispatched alerts by fingerprint in dispatch order, each with the
injected-clock time it was dispatched. A new alert repeats one when it has the same
fingerprint *and* the same status within ``dedup_window`` seconds of that dispatch (the window
is fixed from the dispatch, not slid by repeats). The index is bounded like the recent buffer
(:class:`~.budget.BudgetedLog`), so a flood of distinct alerts cannot grow it. Not
thread-safe: the manager's lock guards every call.
"""

from __future__ import annotations

from vigil.monitoring.alerts.budget import BudgetedLog
from vigil.monitoring.alerts.model import Alert

__all__ = ["RepeatIndex"]


class RepeatIndex:
    """The dispatched alerts by fingerprint, for :meth:`repeat_of`."""

    def __init__(self) -> None:
        self._dispatched: BudgetedLog[tuple[Alert, float]] = BudgetedLog()

    def repeat_of(self, alert: Alert, now: float, window: float) -> Alert | None:
        """The dispatched alert ``alert`` repeats at ``now``, or ``None``; forgets the
        dispatches whose window has ended."""
        self._expire(now, window)
        entry = self._dispatched.get(alert.fingerprint)
        if entry is None or entry[0].status != alert.status:
            return None
        return entry[0]

    def remember(self, alert: Alert, now: float, size: int) -> None:
        """``alert`` was dispatched at ``now`` (in place of an earlier one of its fingerprint)."""
        self._dispatched.add((alert, now), size, key=alert.fingerprint)

    def trim(self, limit: int, budget: int) -> None:
        self._dispatched.trim(limit, budget)

    def _expire(self, now: float, window: float) -> None:
        # Entries are in dispatch order, so expired ones are all at the front.
        while (oldest := self._dispatched.oldest()) is not None and now - oldest[1] >= window:
            self._dispatched.drop_oldest()
