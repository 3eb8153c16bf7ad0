"""The YAML file source: reading the settings file (the one :func:`load_config` is given, or
the one ``VIGIL_CONFIG`` names) into a mapping, with errors that say where it is wrong."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vigil.config.errors import ConfigError

__all__ = ["CONFIG_FILE_ENV", "read_file"]

CONFIG_FILE_ENV = "VIGIL_CONFIG"  # names the file to read when none is given


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        key = CONFIG_FILE_ENV if path == os.environ.get(CONFIG_FILE_ENV) else "file"
        raise ConfigError(key, str(Path(path)), f"cannot read it: {err.strerror or err}"
                          ) from None


def _parse(text: str, file: Path) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError("file", str(file),
                          f"is not valid YAML at {where}: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError("file", str(file), f"is not valid YAML: {err}") from None


def read_file(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The settings in the YAML file at ``path`` (empty file: none), in the file's shape."""
    data = _parse(_read_text(path), Path(path))
    if data is None:
        return {}
    if not isinstance(data, Mapping):  # not shown: it may be a secret file given by mistake
        raise ConfigError("<root>", data, f"{Path(path)} must hold a mapping at the top level",
                          secret=True)
    return data
