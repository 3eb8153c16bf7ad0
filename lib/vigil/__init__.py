"""vigil: error handling and monitoring for Python services (public API filled in by the lead)."""

from vigil.config import ConfigError, configure, get_config

__all__ = ["ConfigError", "configure", "get_config"]
