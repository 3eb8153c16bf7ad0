"""vigil's HTTP face: /metrics for Prometheus, a JSON API, the Alertmanager webhook receiver.

Embed it with ``vigil.start_exporter(port=9464)`` (or :func:`start_exporter` here), or run the
``vigil serve`` command.
"""

from vigil import __version__  # one distribution, one version
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
