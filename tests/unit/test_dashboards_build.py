"""The generated dashboards: fresh, well-formed, on the $datasource variable, valid PromQL.

Fast checks on ``dashboards/json/*.json`` (what Grafana loads, provisioned or imported): no
datasource uid and no job baked into a query, ``$job`` starting on the job the shipped rules
select, every query filtered by ``$job`` and ``$instance`` (recording rules included), counts
that show 0. That every query also returns data from a Prometheus scraping the demo, as job
vigil and as another job, is ``tests/integration/test_dashboards.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts.build import Settings
from dashboards import build, queries
from dashboards.model import (
    PanelQuery,
    load_dashboards,
    panel_queries,
    panels,
    promtool_rules,
    variable_queries,
    with_defaults,
)
from dashboards.panels import DATASOURCE_UID

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "dashboards" / "provisioning"
DASHBOARDS = load_dashboards()
ALL_PANELS = [(name, panel) for name, dash in DASHBOARDS.items() for panel in panels(dash)]
ALL_QUERIES = [query for dash in DASHBOARDS.values() for query in panel_queries(dash)]
UNITS = {"s", "ms", "ops", "reqps", "percentunit", "bytes", "short"}
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Panels that count (events, series, alerts): 0 when nothing matches, never "No data". Every
# panel in "ops" (per second) but the latency heatmap is one; a new count must be added here.
COUNTS = {"Handled errors", "Function calls", "Breakers open", "Alerts firing",
          "Workers with the breaker open", "Breaker transitions (5 min)",
          "Firing alerts over time"}


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


def test_dashboards_have_uids_titles_and_datasource_job_instance_variables() -> None:
    """Each dashboard has its file's uid, a title, $datasource (any Prometheus-type datasource,
    starting on Grafana's default), $job (the jobs with vigil_* series) and $instance."""
    for name, dash in DASHBOARDS.items():
        assert name == f"{dash['uid']}.json"
        assert dash["title"]
        first, *others = dash["templating"]["list"]
        assert first["type"] == "datasource"
        assert first["name"] == "datasource"
        assert first["query"] == "prometheus"
        assert first["current"] == {"selected": True, "text": "default", "value": "default"}
        variables = {v.name: v for v in variable_queries(dash)}
        assert variables["job"].label == "job"
        assert variables["job"].selector == '{__name__=~"vigil_.+"}'
        assert variables["instance"].label == "instance"
        assert variables["instance"].selector is not None
        assert "$job" in variables["instance"].selector
        for variable in others:
            assert variable["datasource"] == PANEL_DATASOURCE
            assert variable["includeAll"] is True
        by_name = {variable["name"]: variable for variable in others}
        # $job's "All" is the jobs it lists, not .* (every job of a shared Prometheus).
        assert "allValue" not in by_name["job"]
        assert by_name["instance"]["allValue"] == ".*"  # "All" works inside =~ matchers


def test_job_starts_on_the_jobs_the_shipped_rules_select() -> None:
    """$job opens on Settings().selector's job(s) (vigil), not on "All"; $instance on all."""
    assert queries.DEFAULT_JOBS == Settings().jobs == ("vigil",)
    for dash in DASHBOARDS.values():
        by_name = {variable["name"]: variable for variable in dash["templating"]["list"]}
        assert by_name["job"]["current"] == {"selected": True, "text": ["vigil"],
                                             "value": ["vigil"]}
        assert by_name["instance"]["current"]["value"] == "$__all"


def test_no_datasource_uid_or_job_name_is_baked_in() -> None:
    """The JSON names neither the provisioned datasource's uid nor a job: it fits any
    Grafana and any job; only $job's starting value is vigil."""
    for name, text in build.render_all().items():
        assert DATASOURCE_UID not in text, name
        dash = json.loads(text)
        for query in panel_queries(dash):
            assert "vigil\"" not in query.expr, query.name
            assert "job=\"" not in query.expr, query.name


def test_requires_lists_grafana_prometheus_and_every_panel_plugin() -> None:
    """__requires (checked by Grafana's import dialog) names each panel type used."""
    for dash in DASHBOARDS.values():
        required = {(item["type"], item["id"]) for item in dash["__requires"]}
        assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
        kinds = {panel["type"] for panel in panels(dash)}
        assert {kind for kind_type, kind in required if kind_type == "panel"} == kinds


def test_with_defaults_changes_only_where_job_and_datasource_start() -> None:
    """with_defaults(dash, job=...) sets $job's starting selection (one job or several) and
    datasource= $datasource's; the input is not modified; no variable: ValueError."""
    dash = DASHBOARDS["vigil-overview.json"]
    before = json.dumps(dash, sort_keys=True)
    shop = with_defaults(dash, job="shop")
    variables = {variable["name"]: variable for variable in shop["templating"]["list"]}
    assert variables["job"]["current"] == {"selected": True, "text": ["shop"],
                                           "value": ["shop"]}
    assert json.dumps(dash, sort_keys=True) == before
    both = with_defaults(dash, job=["api", "worker"], datasource="my-prometheus")
    variables = {variable["name"]: variable for variable in both["templating"]["list"]}
    assert variables["job"]["current"]["value"] == ["api", "worker"]
    assert variables["datasource"]["current"] == {"selected": True, "text": "my-prometheus",
                                                  "value": "my-prometheus"}
    unchanged = dict(shop)
    unchanged["templating"] = dash["templating"]
    assert json.dumps(unchanged, sort_keys=True) == before  # nothing else changed
    with pytest.raises(ValueError, match="job"):
        with_defaults(dash, job="")
    with pytest.raises(ValueError, match="no \\$job variable"):
        with_defaults({"uid": "x", "templating": {"list": []}}, job="shop")


@pytest.mark.parametrize("item", ALL_PANELS, ids=_panel_id)
def test_panel_has_datasource_unit_description_and_queries(item: tuple[str, dict[str, Any]]
                                                           ) -> None:
    """A panel queries the provisioned datasource, has a unit, says what it answers."""
    _, panel = item
    assert panel["datasource"] == PANEL_DATASOURCE
    assert panel["fieldConfig"]["defaults"].get("unit") in UNITS
    assert len(panel.get("description", "")) > 20
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"] == PANEL_DATASOURCE


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_filters_by_job_and_instance(query: PanelQuery) -> None:
    """Every series a query selects is filtered by $job and $instance, recording rules too
    (they keep job and instance)."""
    selectors = re.findall(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", query.expr)
    assert selectors, query.expr
    for name, matchers in selectors:
        assert 'job=~"$job"' in matchers, (name, query.expr)
        assert 'instance=~"$instance"' in matchers, (name, query.expr)


def test_recording_rule_panels_are_a_good_share_of_the_queries() -> None:
    """The recording-rule queries (that went blank for other jobs) are checked like the rest."""
    on_rules = [q for q in ALL_QUERIES if any(r in q.expr for r in queries.RECORDING_RULES)]
    assert len(on_rules) >= len(ALL_QUERIES) // 3, len(on_rules)


def test_counts_show_zero_rather_than_no_data() -> None:
    """A count summed into one number ends in `or vector(0)`; a count with a series per label
    value sets noValue 0 (a 0 series without labels would be a wrong extra series)."""
    seen = set()
    for _, panel in ALL_PANELS:
        exprs = [target["expr"] for target in panel["targets"]]
        defaults = panel["fieldConfig"]["defaults"]
        if panel["type"] == "heatmap":  # a distribution (calls/s per bucket): none is empty
            continue
        if defaults.get("unit") != "ops" and panel["title"] not in COUNTS:
            assert "noValue" not in defaults or panel["type"] == "table", panel["title"]
            assert not any("vector(0)" in expr for expr in exprs), panel["title"]
            continue
        seen.add(panel["title"])
        single = panel["type"] == "stat"
        for expr in exprs:
            assert expr.endswith(" or vector(0)") is single, (panel["title"], expr)
        if not single:
            assert defaults.get("noValue") == "0", panel["title"]
    assert seen >= COUNTS


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_single_number_counts_are_zero_on_an_empty_prometheus(tmp_path: Path) -> None:
    """Against no series at all, each `or vector(0)` query gives one 0 (promtool)."""
    zero = [q for q in ALL_QUERIES if q.expr.endswith(" or vector(0)")]
    assert len(zero) >= 4
    (tmp_path / "empty.rules.yml").write_text("groups: []\n", encoding="utf-8")
    tests = {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'up{job="vigil", instance="app:9464"}', "values": "1x5"}],
        "promql_expr_test": [{"expr": q.expanded(), "eval_time": "2m",
                              "exp_samples": [{"labels": "{}", "value": 0}]} for q in zero]}]}
    path = tmp_path / "zero.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


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
    """Each contract rule keeps exactly the labels its level:metric:operation name lists,
    job and instance first."""
    for name, expr in queries.RECORDING_RULES.items():
        level, metric, operation = name.split(":")
        by = re.search(r"sum by \(([^)]*)\)", expr)
        assert by is not None, expr
        labels = level.removesuffix("_le").split("_") + (["le"] if level.endswith("_le") else [])
        assert by.group(1).split(", ") == labels, name
        assert labels[:2] == ["job", "instance"], name
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
    """The provisioned Prometheus datasource is the default one (where $datasource starts),
    of the panels' type, at compose's URL."""
    datasource = _provisioned_datasource()
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
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
