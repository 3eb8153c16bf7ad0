"""How a seed name appears in Prometheus: its metric name, label names, base unit and buckets.

The seed names metrics with dots (``my_function.duration_ms``); Prometheus wants
``[a-zA-Z_][a-zA-Z0-9_]*``, counters ending in ``_total`` and durations in seconds. Pure
functions, no registry: :mod:`.binding` applies them.
"""

from __future__ import annotations

import re
from typing import Literal

from vigil.monitoring import instruments

__all__ = [
    "BYTE_BUCKETS",
    "GENERIC_BUCKETS",
    "MetricKind",
    "buckets_for",
    "exposed_name",
    "label_name",
    "prometheus_name",
]

MetricKind = Literal["counter", "gauge", "histogram"]

# Colons too: Prometheus reserves them for recording rules, and prometheus_client's OpenMetrics
# writer escapes them in sample names but not in the family's, so a name with one is exposed
# as two families that do not match (a parse error for some names, such as ":").
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_MILLISECONDS = re.compile(r"_(?:ms|milliseconds)(?=(?:_total)?$)", re.IGNORECASE)

BYTE_BUCKETS: tuple[float, ...] = tuple(
    float(1024 ** i * m) for i in range(1, 4) for m in (1, 4, 16, 64, 256))
GENERIC_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                                      20000, 50000, 100000)


def prometheus_name(name: str) -> str:
    """A valid Prometheus metric name for a seed-style name (``a.b-c`` -> ``a_b_c``; colons,
    reserved for recording rules, become underscores as well)."""
    if not name:
        raise ValueError("metric name must not be empty")
    cleaned = _INVALID_CHARS.sub("_", name)
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def label_name(tag: str) -> str:
    """A valid Prometheus label name for a tag key (never one of the reserved ``__`` names)."""
    cleaned = _INVALID_CHARS.sub("_", str(tag)) or "_"
    cleaned = "_" + cleaned if cleaned[0].isdigit() else cleaned
    return "tag" + cleaned if cleaned.startswith("__") else cleaned


def exposed_name(name: str, kind: MetricKind) -> tuple[str, float]:
    """The Prometheus name of seed name ``name`` and the factor its values take there.

    A name in milliseconds is exposed in seconds (``x.duration_ms`` -> ``x_duration_seconds``,
    factor 0.001); a counter ends in ``_total``; anything else is as :func:`prometheus_name`
    makes it, factor 1.
    """
    prom = prometheus_name(name)
    converted = _MILLISECONDS.sub("_seconds", prom)
    prom, scale = (converted, 0.001) if converted != prom else (prom, 1.0)
    if kind == "counter" and not prom.endswith("_total"):
        prom += "_total"
    return prom, scale


def buckets_for(name: str) -> tuple[float, ...]:
    """Histogram buckets fitting the unit suffix of Prometheus name ``name``."""
    lowered = name.lower()
    if lowered.endswith(("_ms", "_milliseconds")):
        return instruments.MILLISECOND_BUCKETS
    if lowered.endswith(("_seconds", "_s", "_sec")):
        return instruments.SECOND_BUCKETS
    if lowered.endswith("_bytes"):
        return BYTE_BUCKETS
    return GENERIC_BUCKETS
