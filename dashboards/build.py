"""Generate ``dashboards/json/*.json`` from the dashboard modules (run from the repository root).

    python -m dashboards.build            # (re)write every dashboard's JSON
    python -m dashboards.build --check    # exit 1, naming the files, if the JSON is stale
    python -m dashboards.build --table    # the panels and the question each answers (Markdown)

The JSON is stable: keys sorted, two-space indent, a trailing newline, panel ids numbered in
order, so a rebuild of unchanged code gives the same bytes and a diff shows real changes only.
Grafana loads the files through ``provisioning/dashboards/vigil.yml``; they import as they are
too (Dashboards > New > Import): every panel queries the ``$datasource`` variable, not a uid,
and ``__requires`` lists the Grafana version and plugins they need. They fit any job:
``$job`` lists the jobs with vigil's metrics (``dashboards.model.with_defaults`` changes where
it starts).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from . import overview
from .model import JSON_DIR
from .queries import RECORDING_RULES

__all__ = ["DASHBOARDS", "check", "main", "render", "render_all", "write"]

# File stem (the dashboard's uid) -> the function building it.
DASHBOARDS: Mapping[str, Callable[[], dashboard_models.Dashboard]] = {
    overview.UID: overview.build,
}


# The Grafana version the SDK's schema is pinned to (pyproject.toml: grafana-foundation-sdk).
GRAFANA_VERSION = "11.6.0"
_PANEL_NAMES = {"heatmap": "Heatmap", "stat": "Stat", "state-timeline": "State timeline",
                "table": "Table", "timeseries": "Time series"}


def _requires(dashboard: Mapping[str, object]) -> list[dict[str, str]]:
    """Grafana's ``__requires`` (what the import dialog checks): Grafana, the Prometheus
    datasource plugin, each panel plugin used."""
    panels = dashboard.get("panels")
    kinds = sorted({str(p["type"]) for p in panels if isinstance(p, dict)} - {"row"}) \
        if isinstance(panels, list) else []
    return ([{"type": "grafana", "id": "grafana", "name": "Grafana",
              "version": GRAFANA_VERSION},
             {"type": "datasource", "id": "prometheus", "name": "Prometheus",
              "version": "1.0.0"}]
            + [{"type": "panel", "id": kind, "name": _PANEL_NAMES.get(kind, kind),
                "version": ""} for kind in kinds])


def render(build: Callable[[], dashboard_models.Dashboard]) -> str:
    """One dashboard as the JSON text written to disk."""
    data = json.loads(json.dumps(build(), cls=JSONEncoder))
    data["__requires"] = _requires(data)
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {f"{uid}.json": render(build) for uid, build in sorted(DASHBOARDS.items())}


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``directory``; remove stale ``*.json``; the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for stale in sorted(directory.glob("*.json")):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, text in rendered.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def check(directory: Path = JSON_DIR) -> list[str]:
    """The file names in ``directory`` that differ from a rebuild (missing, stale or extra)."""
    rendered = render_all()
    present = {path.name for path in directory.glob("*.json")}
    wrong = sorted(present - rendered.keys())
    for name, text in rendered.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            wrong.append(name)
    return sorted(wrong)


def _table() -> str:
    """Markdown: each panel, the question it answers, and what it filters on."""
    lines = []
    for name, text in render_all().items():
        dashboard = json.loads(text)
        lines += [f"**{dashboard['title']}** (`dashboards/json/{name}`)", "",
                  "| row | panel | answers | filtered by |", "| --- | --- | --- | --- |"]
        section = ""
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                section = panel["title"]
                continue
            exprs = [target["expr"] for target in panel["targets"]]
            scope = ", ".join(name for name in ("job", "instance")
                              if all(f"${name}" in expr for expr in exprs))
            if any(rule in expr for expr in exprs for rule in RECORDING_RULES):
                scope += " (recording rule)"
            lines.append(f"| {section} | {panel['title']} | {panel['description']} | {scope} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build",
                                     description="Generate dashboards/json/*.json.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="do not write; exit 1 if the committed JSON differs from a rebuild")
    mode.add_argument("--table", action="store_true",
                      help="print each panel and the question it answers, as Markdown")
    args = parser.parse_args(argv)
    if args.table:
        print(_table())
        return 0
    if args.check:
        wrong = check()
        if wrong:
            print("stale dashboard JSON (run python -m dashboards.build): " + ", ".join(wrong),
                  file=sys.stderr)
            return 1
        return 0
    for path in write():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
