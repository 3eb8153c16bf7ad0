"""Reading the generated dashboard JSON: its panels, their queries, its template variables.

What Grafana loads is the JSON, so the checks (the schema test, promtool, the integration test
against a real Prometheus) read the JSON too, through these helpers; :func:`with_defaults`
writes another starting job (or datasource) into it. No SDK import here: the standard library
and :mod:`.queries` only, so a CLI can use it wherever the JSON ships.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .queries import TEST_VARIABLES, expand

__all__ = [
    "JSON_DIR",
    "PanelQuery",
    "VariableQuery",
    "load_dashboards",
    "panel_queries",
    "panels",
    "promtool_rules",
    "variable_queries",
    "with_defaults",
]

JSON_DIR = Path(__file__).resolve().parent / "json"

_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, as written in the dashboard."""

    dashboard: str  # the dashboard's uid
    panel_id: int
    panel: str  # the panel's title
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        """``<dashboard uid> #<panel id> "<title>" <refId>``: for messages."""
        return f'{self.dashboard} #{self.panel_id} "{self.panel}" {self.ref_id}'

    def expanded(self, variables: Mapping[str, str] = TEST_VARIABLES) -> str:
        """The expression with the template variables replaced (``$job`` -> ``vigil``, ...)."""
        return expand(self.expr, variables)


@dataclass(frozen=True)
class VariableQuery:
    """A ``label_values([selector,] label)`` template variable."""

    dashboard: str
    name: str
    label: str
    selector: str | None


def load_dashboards(directory: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    """File name -> parsed JSON, for every ``*.json`` in ``directory``."""
    return {path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.json"))}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row (the panels of collapsed rows included)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panels(panel)
        else:
            yield panel


def panel_queries(dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    """Every Prometheus query of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield PanelQuery(dashboard["uid"], panel["id"], panel["title"], target["refId"],
                             target["expr"])


def variable_queries(dashboard: Mapping[str, Any]) -> Iterator[VariableQuery]:
    """The dashboard's query variables, parsed (a query in another form raises ValueError)."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"].strip())
        if match is None:
            raise ValueError(f"variable ${variable['name']}: not label_values(...): "
                             f"{variable['query']!r}")
        yield VariableQuery(dashboard["uid"], variable["name"], match["label"],
                            match["selector"])


def promtool_rules(queries: list[PanelQuery],
                   variables: Mapping[str, str] = TEST_VARIABLES) -> dict[str, Any]:
    """A rule file recording each query (variables expanded), for ``promtool check rules``.

    Each rule is named ``dashboard_check:<dashboard>:p<panel id>_<refId>``, so promtool's
    errors say which panel's query is wrong.
    """
    rules = [{"record": f"dashboard_check:{_slug(q.dashboard)}:p{q.panel_id}_{q.ref_id}",
              "expr": q.expanded(variables)} for q in queries]
    return {"groups": [{"name": "dashboard_queries", "rules": rules}]}


def _slug(text: str) -> str:
    return re.sub(r"\W", "_", text)


def with_defaults(dashboard: Mapping[str, Any], *, job: str | Sequence[str] | None = None,
                  datasource: str | None = None) -> dict[str, Any]:
    """A copy of ``dashboard`` (parsed JSON) that opens on ``job`` and/or ``datasource``.

    ``job``: one job name or several, the ``$job`` variable's starting selection (the JSON
    works for any job without this: ``$job`` lists every job with vigil's metrics; this only
    changes where it starts). ``datasource``: the uid (or name) of the Prometheus-type
    datasource ``$datasource`` starts on, instead of Grafana's default. ``None`` leaves a
    variable as it is. Raises ValueError for an empty job name or a dashboard without the
    variable. Pure JSON: no Grafana SDK.
    """
    result: dict[str, Any] = copy.deepcopy(dict(dashboard))
    variables = {variable.get("name"): variable
                 for variable in result.get("templating", {}).get("list", [])}
    if job is not None:
        jobs = [job] if isinstance(job, str) else list(job)
        if not jobs or not all(isinstance(name, str) and name for name in jobs):
            raise ValueError(f"job: got {job!r}; expected a job name or a list of job names")
        if "job" not in variables:
            raise ValueError(f"dashboard {result.get('uid')!r} has no $job variable")
        variables["job"]["current"] = {"selected": True, "text": jobs, "value": jobs}
    if datasource is not None:
        if not datasource:
            raise ValueError("datasource: got ''; expected a datasource uid or name")
        if "datasource" not in variables:
            raise ValueError(f"dashboard {result.get('uid')!r} has no $datasource variable")
        variables["datasource"]["current"] = {"selected": True, "text": datasource,
                                              "value": datasource}
    return result
