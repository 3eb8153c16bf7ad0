"""The environment source: one ``VIGIL_*`` variable per setting, named after its path
(``monitoring.logging.level`` is ``VIGIL_MONITORING_LOGGING_LEVEL``), and ``VIGIL_<KEY>_FILE``
for a secret setting read from a file. Unknown variables that look like a misspelt setting are
errors; other ``VIGIL_*`` names may be the user's and are left alone."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from vigil.config.errors import ConfigError
from vigil.config.kinds import parse_text
from vigil.config.mapping import leaves
from vigil.config.root import VigilConfig
from vigil.config.secret_files import read_secret_file
from vigil.config.yaml_file import CONFIG_FILE_ENV

__all__ = ["ENV_PREFIX", "FILE_SUFFIX", "env_variables", "from_environment"]

ENV_PREFIX = "VIGIL_"
FILE_SUFFIX = "_FILE"  # VIGIL_<KEY>_FILE: a secret setting read from that file

Table = dict[str, tuple[str, dataclasses.Field[Any], Any]]


def env_variables() -> Table:
    """The ``VIGIL_*`` variable for every setting: name -> (key path, field, type)."""
    return {ENV_PREFIX + key.replace(".", "_").upper(): (key, f, t)
            for key, f, t in leaves(VigilConfig)}


def _from_file(name: str, raw: str, base: str, environ: Mapping[str, str], table: Table
               ) -> tuple[str, Any] | None:
    """``(key, secret)`` read from the file ``VIGIL_<KEY>_FILE`` (``name``) names."""
    key, field, _type = table[base]
    if not field.metadata.get("secret"):
        secrets = ", ".join(n for n, (_k, f, _t) in table.items() if f.metadata.get("secret"))
        raise ConfigError(name, raw, f"{base} is not a secret setting; the ones read "
                                     f"from a file are {secrets}")
    if not raw.strip():
        return None  # empty: not used (an image may set it for others to fill)
    if environ.get(base):
        raise ConfigError(name, raw, f"both {base} and {name} are set; set one of them")
    return key, read_secret_file(name, raw)


def _flag_misspelt(name: str, raw: str, table: Table) -> None:
    """Other VIGIL_* variables may belong to the exporter or the user; only flag the ones
    that look like a misspelt setting (without their value: it may be a secret)."""
    close = difflib.get_close_matches(name, table, n=1, cutoff=0.85)
    if close:
        raise ConfigError(name, raw, "unknown environment variable",
                          hint=f"did you mean {close[0]}?", secret=True)


def _setting_of(name: str, raw: str, environ: Mapping[str, str], table: Table
                ) -> tuple[str, Any] | None:
    """``(key path, value)`` that variable ``name`` sets, or ``None`` when it sets none."""
    if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
        return None
    base = name.removesuffix(FILE_SUFFIX)
    if base != name and base in table:
        return _from_file(name, raw, base, environ, table)
    if name not in table:
        _flag_misspelt(name, raw, table)
        return None
    if environ.get(name + FILE_SUFFIX, "").strip():
        return None  # empty, beside its _FILE variant (else the _FILE branch has failed)
    key, _field, expected = table[name]
    return key, parse_text(name, key, raw, expected)


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings ``environ``'s ``VIGIL_*`` variables set, in the file's shape."""
    table = env_variables()
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        found = _setting_of(name, raw, environ, table)
        if found is None:
            continue
        key, value = found
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return overrides
