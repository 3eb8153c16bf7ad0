"""vigil's Grafana dashboards, written as code with grafana-foundation-sdk.

``queries.py`` holds every PromQL expression; each dashboard module (``overview.py``) only lays
out panels; ``build.py`` writes ``json/*.json``, which Grafana loads through ``provisioning/``
or imports as it is (the ``$datasource``, ``$job`` and ``$instance`` variables make it fit any
Prometheus-type datasource and any job). ``model.py`` reads the JSON and, with
``with_defaults(dashboard, job=..., datasource=...)``, changes where those variables start;
it and ``queries.py`` need no SDK. The modules import each other relatively, so the folder
works under another package name. Rebuild with ``python -m dashboards.build`` from the
repository root.
"""
