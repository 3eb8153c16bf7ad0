"""vigil's HTTP face: /metrics for Prometheus, a JSON API, the Alertmanager webhook receiver."""

__version__ = "0.1.0"

__all__ = ["__version__"]
