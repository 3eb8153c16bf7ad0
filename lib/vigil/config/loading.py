"""The precedence of the sources, in one function: built-in defaults < the YAML file (or a
mapping, or a whole :class:`VigilConfig`) < ``VIGIL_*`` environment variables < explicit
overrides (the command line's options)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from vigil.config.environment import from_environment
from vigil.config.mapping import build, merge, to_mapping
from vigil.config.root import VigilConfig
from vigil.config.yaml_file import CONFIG_FILE_ENV, read_file

__all__ = ["Source", "load_config"]

Source = str | os.PathLike[str] | Mapping[str, Any] | VigilConfig | None


def _from_source(source: Source, env: Mapping[str, str]) -> dict[str, Any]:
    """The defaults with ``source`` (or the file ``VIGIL_CONFIG`` names) laid on them."""
    if isinstance(source, VigilConfig):
        return to_mapping(source)
    defaults = to_mapping(VigilConfig())
    if isinstance(source, Mapping):
        return merge(defaults, source)
    if source is not None:
        return merge(defaults, read_file(source))
    if env.get(CONFIG_FILE_ENV):
        return merge(defaults, read_file(env[CONFIG_FILE_ENV]))
    return defaults


def load_config(source: Source = None, *, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> VigilConfig:
    """Build a :class:`VigilConfig` without installing it.

    ``source`` is a YAML path, a (partial) mapping in the file's shape, or ``None`` for the file
    named by ``VIGIL_CONFIG`` (if any). ``VIGIL_*`` variables from ``environ`` (default: the
    process environment) override both; ``overrides`` (a partial mapping in the file's shape:
    the command line's options) override everything.
    """
    env = os.environ if environ is None else environ
    data = merge(_from_source(source, env), from_environment(env))
    if overrides:
        data = merge(data, overrides)
    built: VigilConfig = build(VigilConfig, data)
    return built
