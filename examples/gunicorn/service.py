"""A service as the README's "Running in production" recipe runs it under gunicorn.

vigil's exporter app (``/metrics``, ``/api/*``, the Alertmanager webhook) is the service's app,
with the service's own routes added: every worker serves all of them, and under
``PROMETHEUS_MULTIPROC_DIR`` every worker's ``/metrics`` answers for all workers.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vigil import CircuitBreaker, alert_manager, monitor_performance
from vigil_exporter.app import create_app

app = create_app()
payments = CircuitBreaker(name="payments", failure_threshold=1, recovery_timeout=3600.0)


@alert_manager.register_handler
def page(alert: Any) -> None:
    """The service's alert handler (here: one line per alert in ``$SERVICE_ALERT_LOG``)."""
    path = os.environ.get("SERVICE_ALERT_LOG")
    if path:
        line = json.dumps({"pid": os.getpid(), "source": alert.source,
                           "message": alert.message, "status": alert.status})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


@monitor_performance("checkout")
def checkout() -> int:
    return os.getpid()


@app.get("/checkout")
def checkout_route() -> dict[str, int]:
    return {"pid": checkout()}


@app.post("/payments/outage")
def payments_outage() -> dict[str, int]:
    """Open the payments breaker in the worker that serves this request."""
    payments.force_open()
    return {"pid": os.getpid()}


@app.post("/page")
def page_route() -> dict[str, int]:
    """Send a vigil alert from the worker that serves this request."""
    alert_manager.send_alert("high", "checkout", f"paged by worker {os.getpid()}")
    return {"pid": os.getpid()}
