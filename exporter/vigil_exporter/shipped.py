"""Where vigil's rules, configs and dashboards are: the checkout's or the installed wheel's.

The top-level ``alerts/`` and ``dashboards/`` folders ship in the wheel as package data of
``vigil_exporter.assets.alerts`` and ``vigil_exporter.assets.dashboards`` (see pyproject.toml).
Run from a checkout (or an editable install) these functions answer the checkout's folders, so
an edit there is what ``vigil check``, ``vigil rules`` and ``vigil demo`` see; installed from a
wheel, the package's copies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["alerts_dir", "dashboards_dir"]

_CHECKOUT = Path(__file__).resolve().parents[2]


def _folder(name: str, marker: str) -> Path:
    checkout = _CHECKOUT / name
    if (checkout / marker).is_file():
        return checkout
    try:  # a data-only folder is a namespace package: its one location is the folder
        spec = importlib.util.find_spec(f"vigil_exporter.assets.{name}")
    except ModuleNotFoundError:
        spec = None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return Path(locations[0]) if locations else checkout  # neither: errors name the checkout


def alerts_dir() -> Path:
    """The folder holding ``*.rules.yml``, ``prometheus.yml``, ``alertmanager.yml``,
    ``runbook.md``, ``build.py``, ``tests/`` and ``production/``."""
    return _folder("alerts", "vigil.rules.yml")


def dashboards_dir() -> Path:
    """The folder holding ``json/*.json`` (the Grafana dashboards) and ``provisioning/``."""
    return _folder("dashboards", "json/vigil-overview.json")
