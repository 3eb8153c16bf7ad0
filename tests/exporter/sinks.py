"""A stand-in alert manager for the exporter tests: it blocks until told, then forwards."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from vigil.monitoring.alerts import AlertManager

WAIT = 5.0  # real seconds a test waits for a worker thread before failing (never slept)


class BlockingSink:
    """send_alert waits for ``release`` (after setting ``entered``), then forwards."""

    def __init__(self, target: AlertManager) -> None:
        self.target = target
        self.entered = threading.Event()
        self.release = threading.Event()

    def send_alert(self, severity: str, component: str, message: str,
                   metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> object:
        self.entered.set()
        assert self.release.wait(WAIT)
        return self.target.send_alert(severity, component, message, metadata, **kwargs)
