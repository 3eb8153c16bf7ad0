"""The one rule for explicit arguments: a value given to a component's constructor wins over
the configured one, at construction and on every later :func:`vigil.configure`."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping

from vigil.config.errors import ConfigError

__all__ = ["with_arguments"]

SettingsT = typing.TypeVar("SettingsT")


def with_arguments(settings: SettingsT,
                   arguments: Mapping[str, tuple[str, object]]) -> SettingsT:
    """``settings`` with the constructor arguments that were given in place of the configured
    values: the one rule for explicit arguments (see "Configuration" in the README).

    ``arguments`` maps a settings field to ``(argument name, value)``; a value of ``None``
    means "not given". Components call this at construction *and* on every later
    :func:`configure`, so an argument given to a constructor is never overwritten by
    configuration. The settings class validates the values as it validates a file; the
    :class:`ConfigError` names the argument (``retention: got 0; ...`` for
    ``ExecutionTracer(retention=0)``).
    """
    given = {field: value for field, (_, value) in arguments.items() if value is not None}
    if not given:
        return settings
    try:
        return dataclasses.replace(settings, **given)  # type: ignore[type-var]
    except ConfigError as err:
        argument = arguments.get(err.key, (err.key, None))[0]
        raise ConfigError(argument, err.value, err.allowed, hint=err.hint) from None
