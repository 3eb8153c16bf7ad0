"""The Alertmanager webhook receiver (payload version 4), and the webhook's request counter.

In order, before anything is stored: credentials (401, checked before the body is read, so an
unauthenticated client cannot make the exporter read a body), then the media type (415 for
anything but ``application/json``: a browser's cross-site form or text/plain POST, sent without
a CORS preflight), then the body is parsed in the thread pool
(:func:`~vigil_exporter.webhook.parse_notification`: 400/422). The notification's new alerts
are committed to the durable :class:`~vigil_exporter.store.AlertStore` and only then the
answer is 200 with the counts; 503 with ``Retry-After`` when the store is full, failing or
the app is stopping, so that Alertmanager retries. Redeliveries of accepted alerts are dropped
(HA replica labels ignored) and counted; the
:class:`~vigil_exporter.delivery.DeliveryLoop` hands the stored alerts to the handlers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.instruments import counter
from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.auth import Credentials
from vigil_exporter.delivery import DeliveryLoop
from vigil_exporter.models import ErrorResponse, WebhookAccepted
from vigil_exporter.responses import SafeJSONResponse
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short
from vigil_exporter.routes.openapi import pick
from vigil_exporter.store import AlertStore, Incoming, identity
from vigil_exporter.webhook import (
    NOTIFICATION_SCHEMA,
    Notification,
    PayloadError,
    parse_notification,
    to_send_alert_kwargs,
)

__all__ = ["RETRY_AFTER_SECONDS", "add_webhook_route", "webhook_request_counter"]

RETRY_AFTER_SECONDS = 5  # what a 503 asks for (Alertmanager uses its own backoff anyway)


def webhook_request_counter(registry: CollectorRegistry,
                            path: str) -> Callable[[Scope, int], None]:
    """``on_response`` for :class:`~vigil_exporter.middleware.RequestLimitsMiddleware`: counts
    the answers to requests for ``path`` in ``vigil_webhook_requests_total{code}``, the
    middlewares' refusals (408, 413, 421, 403) included."""
    webhook_requests = counter(registry, "vigil_webhook_requests_total",
                               "Requests to the Alertmanager webhook, by HTTP status code.",
                               ["code"])
    webhook_requests.labels("200")  # present from the start, so rate() works at once

    def count_webhook(scope: Scope, status: int) -> None:
        if scope.get("path") == path:
            webhook_requests.labels(str(status)).inc()

    return count_webhook


def add_webhook_route(app: FastAPI, settings: ExporterSettings, auth: Credentials,
                      manager: AlertManager, registry: CollectorRegistry,
                      logger: StructuredLogger) -> None:
    """``POST settings.webhook_path``: the receiver, committing to ``app.state.store`` and
    waking ``app.state.delivery``; its alerts are recorded on ``manager`` too."""
    received = counter(
        registry, "vigil_alertmanager_alerts_received_total",
        "Alerts received on the Alertmanager webhook and committed to the store (redeliveries "
        "not included).", ["alertname", "status"])
    duplicates = counter(
        registry, "vigil_webhook_duplicates_total",
        "Alerts in webhook notifications dropped as redeliveries of accepted ones (HA replica "
        "labels ignored).").metric

    def unavailable(message: str) -> Response:
        return _error(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    def incoming(notification: Notification) -> list[Incoming]:
        return [Incoming(id=uuid.uuid4().hex,
                         identity=identity(alert.labels, settings.replica_labels),
                         status=alert.status, starts_at=alert.starts_at, ends_at=alert.ends_at,
                         payload=dict(to_send_alert_kwargs(alert, notification)))
                for alert in notification.alerts]

    def accept(request_app: Any, body: bytes) -> Response:
        """Parse and commit; runs in the thread pool (parsing and fsync both take a while)."""
        try:
            notification = parse_notification(body)
        except PayloadError as err:
            logger.warning("webhook notification rejected",
                           {"status": err.status, "error": err.message})
            return _error(err.status, err.message)
        store: AlertStore | None = request_app.state.store
        if store is None or not request_app.state.accepting:
            return unavailable("the webhook is not accepting alerts (starting or stopping); "
                               "retry later")
        alerts = incoming(notification)
        try:
            result = store.accept(alerts, list(manager.handlers()), time.time())
        except Exception as exc:  # disk full, database locked past its timeout, Redis down
            logger.error("webhook notification not stored: the alert store failed; "
                         "Alertmanager will retry", {"receiver": notification.receiver,
                                                     "group_key": notification.group_key,
                                                     "store": repr(store)}, exc_info=exc)
            return unavailable("the alert store failed; retry later")
        if not result.accepted:
            logger.warning("webhook notification refused: the alert store is full; "
                           "Alertmanager will retry",
                           {"receiver": notification.receiver,
                            "group_key": notification.group_key, "alerts": len(alerts)})
            return unavailable("the alert store is full; retry later")
        new = set(result.new_ids)
        for alert in alerts:
            if alert.id in new:
                kwargs = alert.payload
                manager.record(manager.build_alert(**kwargs, id=alert.id))
                received.labels(kwargs["labels"].get("alertname", ""), alert.status).inc()
        if result.duplicates:
            duplicates.inc(result.duplicates)
        delivery: DeliveryLoop | None = request_app.state.delivery
        if delivery is not None and result.stored:
            delivery.notify()
        logger.info("webhook notification accepted",
                    {"receiver": notification.receiver, "group_key": notification.group_key,
                     "alerts": result.stored, "duplicates": result.duplicates})
        return SafeJSONResponse({"status": "accepted", "alerts": result.stored,
                                 "duplicates": result.duplicates})

    async def receive_webhook(request: Request) -> Response:
        # Credentials before the body: an unauthenticated client cannot make us read 1 MiB.
        if not auth.check(request.headers.get("authorization")):
            logger.warning("webhook request without valid credentials",
                           {"credentials": "missing" if "authorization" not in request.headers
                            else "invalid"})
            return _error(401, "valid webhook credentials are required",
                          headers={"WWW-Authenticate": auth.challenge()})
        # Only JSON: a browser's cross-site form or text/plain POST (a "simple" request, sent
        # without a CORS preflight) is refused before its body is read.
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            got = f"Content-Type {_short(media_type)}" if media_type else "no Content-Type"
            return _error(415, f"the webhook takes application/json bodies, not {got}")
        body = await request.body()
        return await run_in_threadpool(accept, request.app, body)

    app.add_api_route(
        settings.webhook_path, receive_webhook, methods=["POST"], tags=["alertmanager"],
        summary="Alertmanager webhook receiver (payload version 4)",
        description="Each alert, firing or resolved, becomes a vigil alert with "
                    'source="alertmanager". The answer is 200 only once the new alerts are '
                    "committed to the durable store; the handlers registered on the "
                    "AlertManager get them from there, at least once. Redeliveries of "
                    "accepted alerts are dropped (HA replica labels ignored). 503 asks "
                    "Alertmanager to retry (store full or failing, app stopping).",
        response_model=WebhookAccepted,
        responses={**pick(400, 408, 413, 415, 422, 500),
                   401: {"model": ErrorResponse, "description": "credentials missing or wrong"},
                   503: {"model": ErrorResponse,
                         "description": "store full or failing, or stopping: retry later"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": NOTIFICATION_SCHEMA}}}})
