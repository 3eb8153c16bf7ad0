"""Level names and their numbers: the five of ``monitoring.logging.level``, as the stdlib's."""

from __future__ import annotations

import logging

from vigil.config import LOG_LEVELS, ConfigError, log_level_name

__all__ = ["LEVEL_NUMBERS", "level_number"]

LEVEL_NUMBERS: dict[str, int] = {name: logging.getLevelNamesMapping()[name] for name in LOG_LEVELS}


def level_number(level: str) -> int:
    """The number of ``level`` (any case); a :class:`~vigil.config.ConfigError` naming the
    levels for anything else."""
    name = log_level_name(str(level))
    if name not in LEVEL_NUMBERS:
        raise ConfigError("level", level, f"must be one of {', '.join(LOG_LEVELS)}")
    return LEVEL_NUMBERS[name]
