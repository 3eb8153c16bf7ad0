"""The log level names ``monitoring.logging.level`` takes, with the stdlib's aliases."""

from __future__ import annotations

__all__ = ["LOG_LEVELS", "LOG_LEVEL_ALIASES", "log_level_name"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The spellings the stdlib's logging also takes (logging.WARN, logging.FATAL), in any case.
LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def log_level_name(level: str) -> str:
    """``level`` as one of :data:`LOG_LEVELS` when it is one in any case or an alias of one
    (``warn`` is WARNING, ``fatal`` CRITICAL, as in the stdlib); otherwise upper-cased, for
    the caller's check to refuse."""
    name = level.strip().upper()
    return LOG_LEVEL_ALIASES.get(name, name)
