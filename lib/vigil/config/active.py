"""The process-wide active configuration: loaded on first use, replaced by :func:`configure`,
which then calls the listeners :func:`on_configure` registered (vigil's shared objects)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from vigil.config.errors import ConfigError
from vigil.config.loading import Source, load_config
from vigil.config.root import VigilConfig

__all__ = ["configure", "get_config", "get_config_or_defaults", "on_configure"]

_lock = threading.Lock()
# vigil.config._current reads and writes this one (see vigil.config's docstring).
_current: VigilConfig | None = None
_DEFAULTS = VigilConfig()  # what get_config_or_defaults answers when loading fails
_listeners: list[Callable[[VigilConfig], None]] = []


def get_config() -> VigilConfig:
    """The active configuration, loaded on first use from ``VIGIL_CONFIG`` and ``VIGIL_*``.

    Raises :class:`ConfigError` when they are wrong. ``import vigil`` never calls it: vigil's
    shared objects are built on first use (see :mod:`vigil._lazy`), so a bad variable is
    reported by the first call that needs the configuration.
    """
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = load_config()
    return _current


def get_config_or_defaults() -> VigilConfig:
    """The active configuration, or the built-in defaults when it cannot load: for code that
    must not raise (the interpreter's exit flushes), where the first call that needed the
    configuration has reported the error already."""
    try:
        return get_config()
    except ConfigError:
        return _DEFAULTS


def configure(path_or_mapping: Source = None, *,
              overrides: Mapping[str, Any] | None = None) -> VigilConfig:
    """Load a configuration, make it the active one and apply it to vigil's shared objects.

    Objects built afterwards read it; the module-level singletons (``performance_monitor``,
    ``execution_tracer``, ``alert_manager``, loggers without an explicit level) are updated.
    Returns the configuration. Raises :class:`ConfigError` and changes nothing on bad input.
    ``overrides`` win over the file and the environment (see :func:`load_config`).
    """
    global _current
    config = load_config(path_or_mapping, overrides=overrides)
    with _lock:
        _current = config
        listeners = list(_listeners)
    for listener in listeners:
        listener(config)
    return config


def on_configure(listener: Callable[[VigilConfig], None]) -> Callable[[VigilConfig], None]:
    """Call ``listener(config)`` each time :func:`configure` installs a configuration."""
    with _lock:
        _listeners.append(listener)
    return listener
