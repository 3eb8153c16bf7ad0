"""vigil's Grafana dashboards, written as code with grafana-foundation-sdk.

``queries.py`` holds every PromQL expression; each dashboard module (``overview.py``) only lays
out panels; ``build.py`` writes ``json/*.json``, which Grafana loads through ``provisioning/``.
Rebuild with ``python -m dashboards.build`` from the repository root.
"""
