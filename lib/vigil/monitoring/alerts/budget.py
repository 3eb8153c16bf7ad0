"""The one bounded container of the alert manager: entries oldest first, each with its size in
bytes, trimmed from the oldest end to a count and a byte budget.

The recent-alerts buffer and the de-duplication index are both one of these, so they are kept
within ``buffer_size`` and ``buffer_max_bytes`` by the same rule: the newest entry stays,
however large. Not thread-safe: the manager's lock guards every call.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["BudgetedLog"]

V = TypeVar("V")


class BudgetedLog(Generic[V]):
    """Values in insertion order with their sizes; a keyed entry is replaced, not repeated."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._serial = itertools.count()  # the keys of entries added without one
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, value: V, size: int, key: Hashable | None = None) -> None:
        """``value`` as the newest entry; with a ``key``, in place of that key's entry."""
        if key is None:
            key = next(self._serial)
        else:
            self._discard(key)
        self._entries[key] = (value, size)
        self.bytes += size

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def oldest(self) -> V | None:
        """The oldest value, or ``None`` when empty."""
        if not self._entries:
            return None
        return next(iter(self._entries.values()))[0]

    def drop_oldest(self) -> None:
        self.bytes -= self._entries.popitem(last=False)[1][1]

    def trim(self, limit: int, budget: int) -> None:
        """Drop the oldest entries until at most ``limit`` are left holding at most ``budget``
        bytes, except that the newest entry always stays."""
        while len(self._entries) > limit or (self.bytes > budget and len(self._entries) > 1):
            self.drop_oldest()

    def values(self) -> list[V]:
        """Every value, oldest first (a copy)."""
        return [value for value, _ in self._entries.values()]

    def _discard(self, key: Hashable) -> None:
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes -= previous[1]
