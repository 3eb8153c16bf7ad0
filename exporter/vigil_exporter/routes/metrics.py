"""``GET /metrics``: the Prometheus exposition, in the format the scrape's ``Accept`` asks for.

Text format 0.0.4 by default, OpenMetrics 1.0.0 (with exemplars) when ``Accept`` prefers it (q
values honoured: :mod:`vigil_exporter.negotiation`), 406 when it refuses both; gzip when
``Accept-Encoding`` allows it; ``name[]`` limits the families. The exposition is rendered in a
worker thread (a scrape of 10k series takes ~100 ms), never on the event loop; under
prometheus_client's multiprocess mode it adds up every worker's numbers.
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import gzip_accepted
from starlette.concurrency import run_in_threadpool

from vigil.monitoring.multiprocess import exposition
from vigil_exporter.negotiation import encoder_for, metrics_media_range
from vigil_exporter.responses import error_response as _error
from vigil_exporter.responses import short as _short
from vigil_exporter.routes.openapi import pick

__all__ = ["add_metrics_route", "render_metrics"]


def render_metrics(registry: CollectorRegistry, accept: str, accept_encoding: str,
                   names: list[str] | None = None) -> tuple[bytes, dict[str, str]]:
    """The exposition of ``registry`` and its headers, as a scrape with these headers wants.

    Text format 0.0.4 by default; OpenMetrics (with exemplars) when ``Accept`` prefers it
    (:func:`~vigil_exporter.negotiation.metrics_media_range`; when neither format is
    acceptable, text: the route answers 406 before calling this); gzip when
    ``Accept-Encoding`` allows it; only the families in ``names`` when given.
    """
    encoder, content_type = encoder_for(accept)
    served = exposition(registry)  # every worker's numbers under multiprocess mode
    target: Any = served.restricted_registry(names) if names else served
    body = encoder(target)
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """``GET /metrics`` serving ``registry`` (:func:`render_metrics`, in a worker thread)."""

    @app.get("/metrics", tags=["prometheus"], summary="Prometheus scrape endpoint",
             response_class=Response, responses={
                 200: {"description": "the exposition: text format 0.0.4, or OpenMetrics "
                                      "1.0.0 (with exemplars) when Accept prefers it (q "
                                      "values honoured, a tie goes to text); gzip when "
                                      "Accept-Encoding allows",
                       "content": {"text/plain": {"schema": {"type": "string"}},
                                   "application/openmetrics-text":
                                       {"schema": {"type": "string"}}}},
                 **pick(406, 422, 500)})
    async def metrics(request: Request, name: Annotated[list[str] | None, Query(
            alias="name[]", description="only these metric families")] = None) -> Response:
        accept = request.headers.get("accept", "")
        if metrics_media_range(accept) is None:
            return _error(406, f"Accept {_short(accept)} refuses both text/plain and "
                               "application/openmetrics-text")
        body, headers = await run_in_threadpool(
            render_metrics, registry, accept, request.headers.get("accept-encoding", ""), name)
        return Response(body, headers=headers)
