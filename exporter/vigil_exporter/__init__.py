"""vigil's HTTP face: /metrics for Prometheus, a JSON API, the Alertmanager webhook receiver.

Embed it with ``vigil_exporter.start_exporter(port=9464)``, or run the
``vigil serve`` command. It needs the ``exporter`` extra (``pip install 'vigil[exporter]'``:
FastAPI and uvicorn); the names below are imported on first use, so the ``vigil`` command's
``check`` and ``rules`` (and ``--help``) work from the core install too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vigil import __version__  # one distribution, one version

if TYPE_CHECKING:
    from vigil_exporter.app import create_app
    from vigil_exporter.delivery import DeliveryLoop
    from vigil_exporter.server import ExporterHandle, start_exporter
    from vigil_exporter.store import AlertStore, open_store
    from vigil_exporter.webhook import (
        Notification,
        PayloadError,
        WebhookAlert,
        map_severity,
        parse_notification,
        to_send_alert_kwargs,
    )

# Public name -> the module that defines it.
_HOMES = {
    "AlertStore": "vigil_exporter.store",
    "DeliveryLoop": "vigil_exporter.delivery",
    "ExporterHandle": "vigil_exporter.server",
    "Notification": "vigil_exporter.webhook",
    "PayloadError": "vigil_exporter.webhook",
    "WebhookAlert": "vigil_exporter.webhook",
    "create_app": "vigil_exporter.app",
    "map_severity": "vigil_exporter.webhook",
    "open_store": "vigil_exporter.store",
    "parse_notification": "vigil_exporter.webhook",
    "start_exporter": "vigil_exporter.server",
    "to_send_alert_kwargs": "vigil_exporter.webhook",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


__all__ = [
    "AlertStore",
    "DeliveryLoop",
    "ExporterHandle",
    "Notification",
    "PayloadError",
    "WebhookAlert",
    "__version__",
    "create_app",
    "map_severity",
    "open_store",
    "parse_notification",
    "start_exporter",
    "to_send_alert_kwargs",
]
