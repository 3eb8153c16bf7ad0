"""One seed-named metric: its kind, tag keys, bounded local history and Prometheus child.

The local history is what ``get_metric_stats`` / ``get_all_metrics`` read; the family (absent
for the decorator's seed names, whose Prometheus side is ``vigil_function_*``) is where the
same record goes, in base units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vigil.monitoring import instruments
from vigil.monitoring.metrics.naming import MetricKind
from vigil.text import safe_text

__all__ = ["Record", "Series", "frozen_tags"]

Record = tuple[float, float, Mapping[str, str] | None]
"""One local record: (wall time, value as recorded, tags as text or None)."""


@dataclass(slots=True)
class Series:
    """One seed-named metric: its local history and (unless local-only) its Prometheus family."""

    name: str
    kind: MetricKind
    tag_keys: tuple[str, ...]  # sorted, as given by the caller
    history: deque[Record]
    family: instruments.Family[Any] | None
    unlabelled: Any = None  # the metric itself when there are no tags
    scale: float = 1.0  # Prometheus value = recorded value x scale (0.001: ms -> seconds)
    # The decorator's seed names (name.duration_ms/.calls/.errors) are views of one shared
    # history of calls instead of three histories appended to on every call.
    view: Callable[[], list[Record]] | None = None

    def records(self) -> list[Record]:
        """The retained records, oldest first."""
        return self.view() if self.view is not None else list(self.history)

    def child(self, tags: Mapping[str, object] | None) -> Any:
        """The Prometheus child for ``tags`` (checked against ``tag_keys``), or None."""
        if not self.tag_keys:
            return self.unlabelled
        assert self.family is not None
        assert tags is not None
        return self.family.labels(*(tags[k] for k in self.tag_keys))

    def resize(self, retention: int) -> None:
        """Keep the newest ``retention`` records from now on."""
        if self.history.maxlen != retention:
            self.history = deque(self.history, maxlen=retention)


def frozen_tags(tags: Mapping[str, object] | None) -> Mapping[str, str] | None:
    """``tags`` as they are kept in the history: text keys and values, None when empty."""
    return {safe_text(k): safe_text(v) for k, v in tags.items()} if tags else None
