"""The process fields of every line: ``service``, ``host`` and ``pid``.

They are made once per configuration (:func:`apply_settings`), not per line, and sit between
``span_id`` and ``metadata``; what each one holds is in the package docstring
(:mod:`vigil.monitoring.logs`).

:data:`fields` is rebound, never changed in place, so a line reads one global. It is read on
every line: read it as ``process.fields`` (this module's attribute); a name imported from here
would be a copy that no later configuration, and no fork, reaches.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from typing import Any

from vigil.config import SERVICE_MAX_CHARS, LoggingSettings
from vigil.forks import at_fork
from vigil.monitoring.multiprocess import MULTIPROCESS
from vigil.text import safe_text, valid_text

__all__ = ["apply_settings"]

# The service/host/pid fields every line carries (monitoring.logging.service, include_host,
# include_pid), in that order: made from the settings by the first formatter (every logger has
# one) and again by each configure(); a forked child replaces the pid with its own before it
# runs any code.
fields: dict[str, Any] = {}
ready = False  # whether fields was made from the settings yet


def _otel_service_name() -> str:
    """The service name OpenTelemetry would use: ``OTEL_SERVICE_NAME``, else ``service.name``
    in ``OTEL_RESOURCE_ATTRIBUTES`` (percent-decoded, the last one winning, as the SDK reads
    it); cut to printable text of at most ``SERVICE_MAX_CHARS`` characters; ``""`` if none."""
    name = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    if not name:
        for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip() == "service.name":
                name = urllib.parse.unquote(value.strip())
    name = "".join(c for c in valid_text(name) if c.isprintable()).strip()
    return name[:SERVICE_MAX_CHARS]


def _host_name() -> str:
    try:
        return safe_text(socket.gethostname())
    except OSError:  # pragma: no cover - gethostname() does not fail on Linux
        return "unknown"


def apply_settings(settings: LoggingSettings) -> None:
    """Make the service/host/pid fields of every line from ``settings``."""
    global fields, ready
    made: dict[str, Any] = {}
    service = settings.service or _otel_service_name()
    if service:
        made["service"] = service
    if settings.include_host:
        made["host"] = _host_name()
    if settings.include_pid == "true" or (settings.include_pid == "auto" and MULTIPROCESS):
        made["pid"] = os.getpid()
    fields = made
    ready = True


def _after_fork_in_child() -> None:
    """In a forked child (a gunicorn worker): its own pid on its lines.

    Registered with :func:`vigil.forks.at_fork` when the package is imported, so it runs
    before the hooks of vigil's other modules (they import the package first, or register
    when their objects are made), whose threads may log as soon as they restart.
    """
    global fields
    if "pid" in fields:
        fields = {**fields, "pid": os.getpid()}


at_fork(after_in_child=_after_fork_in_child)
