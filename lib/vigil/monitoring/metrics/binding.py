"""The Prometheus side of the seed's recording API: one family per seed name on one registry.

A seed name becomes the family :func:`~.naming.exposed_name` says, of its kind, with its tag
keys as labels (capped by :mod:`vigil.monitoring.instruments`), histogram buckets fitting its
unit, and HELP from ``description=`` or generated. Two seed names that would share one
Prometheus name, or tags that collide as label names, are refused with a ``ValueError``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from vigil.monitoring import instruments
from vigil.monitoring.metrics.naming import MetricKind, buckets_for, exposed_name, label_name
from vigil.text import safe_text

__all__ = ["Binding"]


class Binding:
    """Seed names bound to Prometheus families on ``registry``. Not thread-safe by itself:
    :class:`~.catalog.Catalog` calls it under its lock."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._owners: dict[str, str] = {}  # Prometheus name -> the seed name that owns it

    def family(self, name: str, kind: MetricKind, tag_keys: tuple[str, ...],
               description: str | None = None) -> tuple[instruments.Family[Any], float]:
        """The Prometheus family of seed name ``name`` and the factor its values take there."""
        prom, scale = exposed_name(name, kind)
        owner = self._owners.get(prom)
        if owner is not None and owner != name:
            raise ValueError(f"metric {name!r} and {owner!r} both become the Prometheus name "
                             f"{prom!r}; rename one of them")
        labels = [label_name(k) for k in tag_keys]
        if len(set(labels)) != len(labels):
            raise ValueError(f"metric {name!r}: tags {list(tag_keys)} collide as label names "
                             f"{labels}")
        doc = (safe_text(description) if description else
               f"vigil metric {name!r} ({kind}) recorded through PerformanceMonitor"
               + (" (in seconds; recorded in milliseconds)." if scale != 1.0 else "."))
        family: instruments.Family[Any]
        if kind == "counter":
            family = instruments.counter(self.registry, prom, doc, labels)
        elif kind == "gauge":
            family = instruments.gauge(self.registry, prom, doc, labels)
        else:
            family = instruments.histogram(self.registry, prom, doc, labels,
                                           buckets=buckets_for(prom))
        self._owners[prom] = name
        return family, scale
