"""The exporter's routes, one module per group, each an ``add_*(app, ...)`` that registers its
routes on the FastAPI app :func:`vigil_exporter.app.create_app` builds:

- :mod:`~vigil_exporter.routes.metrics`: ``GET /metrics`` (the Prometheus exposition);
- :mod:`~vigil_exporter.routes.health`: ``GET /healthz`` and ``GET /readyz``;
- :mod:`~vigil_exporter.routes.api`: the read-only JSON API under ``/api/``;
- :mod:`~vigil_exporter.routes.webhook`: the Alertmanager webhook receiver;
- :mod:`~vigil_exporter.routes.errors`: the exception handlers (the one JSON error shape);
- :mod:`~vigil_exporter.routes.openapi`: the documented error answers, and the HTTP policy and
  credentials written into ``/openapi.json``.

The HTML console's routes are :mod:`vigil_exporter.console`'s.
"""
