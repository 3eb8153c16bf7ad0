"""What vigil reads from prometheus_client beyond its public API, in one place.

A custom collector that writes its own ``_created`` samples must follow the switch
prometheus_client's own counters and histograms obey (``PROMETHEUS_DISABLE_CREATED_SERIES``),
and the library exposes it only as a private module attribute. If a prometheus_client release
renames it, this module is the one to change, and
``tests/unit/monitoring/test_prometheus_private.py`` is the test that fails.
"""

from __future__ import annotations

from prometheus_client import metrics as _metrics

__all__ = ["created_series_enabled"]


def created_series_enabled() -> bool:
    """Whether ``_created`` series are written (prometheus_client's own rule, read live)."""
    return bool(_metrics._use_created)
