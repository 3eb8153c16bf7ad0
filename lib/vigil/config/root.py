"""The root of the settings tree: :class:`VigilConfig`, one section per top-level key."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.config.error_handling import ErrorHandlingSettings
from vigil.config.exporter import ExporterSettings
from vigil.config.fields import Settings
from vigil.config.monitoring import MonitoringSettings

__all__ = ["VigilConfig"]


@dataclass(frozen=True)
class VigilConfig(Settings):
    """All of vigil's settings. Build it with :func:`load_config`; it is immutable."""

    error_handling: ErrorHandlingSettings = field(default_factory=ErrorHandlingSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    exporter: ExporterSettings = field(default_factory=ExporterSettings)
