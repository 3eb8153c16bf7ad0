"""The generated dashboards: fresh, well-formed, on the provisioned datasource, valid PromQL.

Fast checks on ``dashboards/json/*.json`` (what Grafana loads). That every query also returns
data from a Prometheus scraping the demo is ``tests/integration/test_dashboards.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboards import build, queries
from dashboards.model import (
    PanelQuery,
    load_dashboards,
    panel_queries,
    panels,
    promtool_rules,
    variable_queries,
)
from dashboards.panels import DATASOURCE_UID, PER_JOB_NOTE

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "dashboards" / "provisioning"
DASHBOARDS = load_dashboards()
ALL_PANELS = [(name, panel) for name, dash in DASHBOARDS.items() for panel in panels(dash)]
ALL_QUERIES = [query for dash in DASHBOARDS.values() for query in panel_queries(dash)]
UNITS = {"s", "ms", "ops", "reqps", "percentunit", "bytes", "short"}


def _panel_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}#{item[1]['id']}"


def _provisioned_datasource() -> dict[str, Any]:
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    assert isinstance(datasource, dict)
    return datasource


def test_committed_json_matches_a_rebuild() -> None:
    """dashboards/json is what `python -m dashboards.build` writes today (nothing stale)."""
    assert build.check() == [], "run: .venv/bin/python -m dashboards.build"
    assert set(DASHBOARDS) == {f"{uid}.json" for uid in build.DASHBOARDS}


def test_rendering_is_stable_and_ends_with_a_newline() -> None:
    """Two renders give the same bytes: sorted keys, two-space indent, trailing newline."""
    first, second = build.render_all(), build.render_all()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        assert '\n  "panels": [' in text


def test_dashboards_have_uids_titles_and_job_instance_variables() -> None:
    """Each dashboard has its file's uid, a title, and $job/$instance from label_values(up)."""
    for name, dash in DASHBOARDS.items():
        assert name == f"{dash['uid']}.json"
        assert dash["title"]
        variables = {v.name: v for v in variable_queries(dash)}
        assert variables["job"].label == "job"
        assert variables["instance"].label == "instance"
        assert variables["instance"].selector is not None
        assert "$job" in variables["instance"].selector
        for variable in dash["templating"]["list"]:
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["allValue"] == ".*"  # "All" must work inside =~ matchers


@pytest.mark.parametrize("item", ALL_PANELS, ids=_panel_id)
def test_panel_has_datasource_unit_description_and_queries(item: tuple[str, dict[str, Any]]
                                                           ) -> None:
    """A panel queries the provisioned datasource, has a unit, says what it answers."""
    _, panel = item
    assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
    assert panel["fieldConfig"]["defaults"].get("unit") in UNITS
    assert len(panel.get("description", "")) > 20
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_filters_by_job_and_instance_unless_on_a_recording_rule(query: PanelQuery
                                                                     ) -> None:
    """Every query uses $job; those on raw metrics use $instance; the others say why not."""
    assert 'job=~"$job"' in query.expr
    on_rule = any(rule in query.expr for rule in queries.RECORDING_RULES)
    if on_rule:
        panel = next(p for _, p in ALL_PANELS if p["id"] == query.panel_id)
        assert panel["description"].endswith(PER_JOB_NOTE)
    else:
        assert 'instance=~"$instance"' in query.expr


def test_panels_tile_the_grid_without_overlapping() -> None:
    """Panels fit the 24-column grid, and no two panels cover the same cell."""
    for dash in DASHBOARDS.values():
        taken: set[tuple[int, int]] = set()
        for panel in dash["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0, panel["title"]
            assert 0 < pos["w"] <= 24 - pos["x"], panel["title"]
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                     for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & taken, f"{panel['title']} overlaps another panel"
            taken |= cells
        ids = [panel["id"] for panel in dash["panels"]]
        assert len(ids) == len(set(ids))


def _documented_metrics() -> set[str]:
    """Names the README's metrics table lists, histograms with their series suffixes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Metrics", 1)[1]
    names = set()
    for name, kind in re.findall(r"^\| `(vigil_\w+)` \| (\w+) \|", table, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    assert names, "README.md: no metrics table found"
    return names


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # matchers, ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text):
        if match.group(1) not in {"and", "or", "unless", "offset", "bool", "inf", "nan"}:
            names.add(match.group(1))
    return names


def test_queries_select_only_documented_metrics_and_the_recording_rules() -> None:
    """Panels query README-listed metrics, the contract's recording rules, up and ALERTS only."""
    allowed = _documented_metrics() | set(queries.RECORDING_RULES) | {"up", "ALERTS"}
    used = {name for query in ALL_QUERIES for name in _metric_names(query.expr)}
    assert used, "no metric names found in the queries"
    assert used <= allowed, f"not emitted by vigil: {sorted(used - allowed)}"
    # The recording rules themselves are built from documented metrics.
    for expr in queries.RECORDING_RULES.values():
        assert _metric_names(expr) <= _documented_metrics(), expr


def test_recording_rule_names_follow_their_expressions() -> None:
    """Each contract rule keeps exactly the labels its level:metric:operation name lists."""
    for name, expr in queries.RECORDING_RULES.items():
        level, metric, operation = name.split(":")
        by = re.search(r"sum by \(([^)]*)\)", expr)
        assert by is not None, expr
        labels = level.removesuffix("_le").split("_") + (["le"] if level.endswith("_le") else [])
        assert by.group(1).split(", ") == labels, name
        kind = re.fullmatch(r"(rate|increase)(\d+m)", operation)
        assert kind is not None, name
        assert f"{kind[1]}({metric}" in expr, name
        assert f"[{kind[2]}]" in expr, name


def test_alerts_recording_rules_define_every_name_the_dashboards_use() -> None:
    """alerts/*.rules.yml records every rule name the dashboards read (once that file exists)."""
    recorded: dict[str, str] = {}
    for path in sorted((ROOT / "alerts").glob("*.rules.yml")):
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    recorded[rule["record"]] = rule["expr"]
    if not recorded.keys() & queries.RECORDING_RULES.keys():
        pytest.skip("alerts/ defines none of the dashboards' recording rules yet "
                    "(alerts/vigil.recording.rules.yml)")
    missing = sorted(queries.RECORDING_RULES.keys() - recorded.keys())
    assert not missing, f"alerts/*.rules.yml does not record {missing}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_panel_query_passes_promtool(tmp_path: Path) -> None:
    """promtool check rules accepts every panel query (variables expanded) as a recording rule."""
    rules = tmp_path / "dashboard_queries.rules.yml"
    rules.write_text(yaml.safe_dump(promtool_rules(ALL_QUERIES), sort_keys=False))
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALL_QUERIES)} rules found" in result.stdout


def test_expand_replaces_grafana_variables_and_refuses_unknown_ones() -> None:
    """expand() fills $job, ${instance} and $__rate_interval; an unknown variable raises."""
    expr = 'rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval])'
    assert queries.expand(expr) == 'rate(x{job=~"vigil", instance=~".*"}[1m])'
    with pytest.raises(KeyError, match=r"\$nope"):
        queries.expand("x{a=~\"$nope\"}")


def test_datasource_provisioning_matches_the_panels() -> None:
    """The provisioned Prometheus datasource has the uid every panel uses and compose's URL."""
    datasource = _provisioned_datasource()
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    prometheus = yaml.safe_load((ROOT / "alerts" / "prometheus.yml").read_text())
    # $__rate_interval is computed from timeInterval: it must be Prometheus's scrape interval.
    assert datasource["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def _mounts(volumes: list[Any]) -> list[tuple[str, str]]:
    """docker-compose short-syntax volumes as (source, target) without trailing slashes."""
    pairs = []
    for volume in volumes:
        source, target = str(volume).split(":")[:2]
        pairs.append((source.rstrip("/"), target.rstrip("/")))
    return pairs


def test_dashboard_provider_points_at_the_mounted_json_folder() -> None:
    """The file provider reads the folder docker-compose mounts dashboards/json into."""
    config = yaml.safe_load((PROVISIONING / "dashboards" / "vigil.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards"
    compose = ROOT / "docker-compose.yaml"
    if not compose.exists():
        pytest.skip("docker-compose.yaml is not written yet")
    grafana = yaml.safe_load(compose.read_text(encoding="utf-8"))["services"]["grafana"]
    mounts = _mounts(grafana.get("volumes", []))
    assert any(src.endswith("dashboards/json") and dst == path for src, dst in mounts), mounts
    target = "/etc/grafana/provisioning"
    for sub in ("datasources", "dashboards"):
        assert any((src.endswith("dashboards/provisioning") and dst == target)
                   or (src.endswith(f"dashboards/provisioning/{sub}")
                       and dst == f"{target}/{sub}") for src, dst in mounts), (sub, mounts)
    environment = grafana.get("environment") or {}
    if isinstance(environment, list):  # the KEY=value list form
        environment = dict(str(item).partition("=")[::2] for item in environment)
    home = environment.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home is not None:
        assert home.startswith(path + "/")
        assert home.removeprefix(path + "/") in DASHBOARDS
