"""Every dashboard panel query returns data from a real Prometheus that scraped the demo.

Grafana cannot be installed here, so this is the mock-free substitute for opening the dashboards:
the queries Grafana would send are taken from the generated ``dashboards/json/*.json``, their
template variables replaced (``$job`` -> ``vigil``, ``$instance`` -> ``.*``,
``$__rate_interval`` -> ``1m``), and each one is run against Prometheus's ``/api/v1/query``.
(``tests/unit/test_dashboards_build.py`` runs the same expressions through ``promtool check
rules``.)

Twice: the repository's ``alerts/`` (job ``vigil``) on one Prometheus, and on a second one the
same exporter scraped as job ``shop`` with the rules ``alerts.build.render()`` gives for
``--set job=shop`` (its ``prometheus.yml``, addresses and intervals replaced) and the
dashboards' variables set to ``$job`` = ``shop``: the same committed JSON, no regeneration,
recording-rule panels included; ``$instance`` filters the recording-rule panels too.

What runs (``tests/integration/live_demo.py``): the agent-studio demo in this process at
``scale=0.3`` (its minute-long story in about 18 s: breaker opening and recovering, runaway
agents raising critical errors, the embedding brownout with retry give-ups), recording into
vigil's process-wide registry; the exporter serving that registry; the resource sampler; and a
Prometheus from the Debian package with the repository's ``alerts/`` configuration and rules
(recording rules included), scraping and evaluating every second. No Alertmanager: ``ALERTS`` is
Prometheus's own series, and the demo's critical errors fire ``VigilCriticalError`` (no
``for:``) on the next evaluation. ``tests/integration/test_victoriametrics.py`` runs the same
queries against VictoriaMetrics behind the production recipe's ``remote_write``.

A query counts once it has returned a non-empty result with at least one finite, non-zero value
(so a panel shows something real, not only zeros or NaN from an idle histogram: e.g. "Breakers
open" must be seen while the breaker is OPEN, "Retry give-ups" after the brownout). The test
polls against a deadline and, on failure, lists the queries that returned nothing, and those that
returned only zeros or NaN.

The demo runs one process; the breaker panels under gunicorn (one state series per worker, a
``pid`` label) are checked by promtool on hand-made per-worker series
(``test_breaker_panels_show_the_worst_worker``).
"""


from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts.build import Settings, render
from dashboards import queries as q
from dashboards.model import PanelQuery, variable_queries, with_defaults
from dashboards.queries import DEFAULT_JOBS, RECORDING_RULES, TEST_VARIABLES, expand

from tests.integration.conftest import prom_query, wait_until
from tests.integration.live_demo import (
    DASHBOARDS,
    QUERIES,
    Demo,
    label_values,
    playing_demo,
    shows_something,
    variable_values,
    wait_for_every_query,
)
from tests.integration.recipe import Prometheus
from vigil_exporter.stack import ALERTS_DIR, LocalStack, find_prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_prometheus() is None,
                       reason="prometheus is not installed (./run test installs it)"),
]

# Seconds for every query to have shown data; typically ~12 s (Prometheus scrapes first about
# 5 s after it starts, the retry give-ups come with the brownout ~9-12 s into the demo).
DEADLINE = 75.0


def _alerts_dir(tmp_path: Path) -> Path:
    """A copy of alerts/; if it records none of the dashboards' rules yet, the contract's."""
    copy = tmp_path / "alerts"
    shutil.copytree(ALERTS_DIR, copy)
    recorded = set()
    for path in copy.glob("*.rules.yml"):
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            recorded |= {rule["record"] for rule in group.get("rules", []) if "record" in rule}
    if not recorded & RECORDING_RULES.keys():
        rules = [{"record": name, "expr": expr} for name, expr in RECORDING_RULES.items()]
        (copy / "dashboards-contract.rules.yml").write_text(
            yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}),
            encoding="utf-8")
    return copy


SHOP = "shop"  # the other job: the exporter scraped under a name that is not vigil
SHOP_VARIABLES: Mapping[str, str] = {**TEST_VARIABLES, "job": SHOP}


def _shop_prometheus(tmp_path: Path, target: str) -> Prometheus:
    """A Prometheus scraping ``target`` as job shop, with the rules rendered for job shop:
    the rendered prometheus.yml with the test's target and intervals, no Alertmanager."""
    folder = tmp_path / "shop-alerts"
    for name, text in render(Settings.from_overrides({"job": SHOP})).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    config = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(folder / name) for name in config["rule_files"]]
    config.pop("alerting")
    [job] = config["scrape_configs"]
    assert job["job_name"] == SHOP
    job["static_configs"] = [{"targets": [target]}]
    return Prometheus(tmp_path / "shop-prometheus", config)


@dataclass
class Running:
    prometheus_url: str
    demo: Demo
    shop: Prometheus


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The demo recording, the exporter serving it, two Prometheus scraping it every second:
    as job vigil with alerts/, and as job shop with the rules rendered for it."""
    tmp_path = tmp_path_factory.mktemp("dashboards")
    with playing_demo(tmp_path) as demo:
        stack = LocalStack(exporter_url=demo.exporter.url, webhook_url=None,
                           alerts_dir=_alerts_dir(tmp_path), scrape_interval="1s")
        shop = _shop_prometheus(tmp_path, demo.target)
        try:
            shop.spawn()  # starts while the other one does
            stack.start(alertmanager=False)
            shop.wait_ready()
            assert stack.prometheus_url is not None
            demo.play()
            yield Running(stack.prometheus_url, demo, shop)
        finally:
            shop.stop()
            stack.stop()


def _unhealthy_rules(base_url: str) -> str:
    """Rules Prometheus failed to evaluate (an explanation for queries on recording rules)."""
    with urllib.request.urlopen(f"{base_url}/api/v1/rules", timeout=5) as response:
        groups = json.load(response)["data"]["groups"]
    failing = "".join(f"  {rule['name']}: {rule.get('lastError')}\n" for group in groups
                      for rule in group["rules"] if rule.get("health") not in ("ok", "unknown"))
    return "rules failing in Prometheus:\n" + (failing or "  none\n")


def test_every_panel_query_returns_data(running: Running) -> None:
    """Each panel query of every dashboard returns non-zero data from the demo's metrics."""
    url = running.prometheus_url
    seconds = wait_for_every_query(url, running.demo, DEADLINE,
                                   explain=lambda: _unhealthy_rules(url))
    print(f"all {len(QUERIES)} panel queries showed data after {seconds:.1f}s")


def _on_rules(queries: list[PanelQuery]) -> list[PanelQuery]:
    return [query for query in queries if any(rule in query.expr for rule in RECORDING_RULES)]


def _expanded(variables: Mapping[str, str]) -> list[PanelQuery]:
    """Every panel query with ``variables`` filled in (what Grafana would send)."""
    return [dataclasses.replace(query, expr=query.expanded(variables)) for query in QUERIES]


def test_every_panel_query_returns_data_for_another_job(running: Running) -> None:
    """With $job = shop, each panel query of the committed JSON returns non-zero data from the
    Prometheus scraping the exporter as job shop with the rules built for job shop."""
    url = running.shop.url
    queries = _expanded(SHOP_VARIABLES)
    assert all("$" not in query.expr and 'job=~"shop"' in query.expr for query in queries)
    seconds = wait_for_every_query(url, running.demo, DEADLINE, queries=queries,
                                   explain=lambda: _unhealthy_rules(url))
    print(f"all {len(queries)} panel queries ({len(_on_rules(queries))} on recording rules) "
          f"showed data for job {SHOP} after {seconds:.1f}s")
    # The same queries for job vigil find nothing there: the data really is job shop's.
    for query in _expanded(TEST_VARIABLES):
        assert not shows_something(prom_query(url, query.expr)), query.name


def test_another_jobs_variables_and_instance_filter(running: Running) -> None:
    """On the shop Prometheus $job lists shop only (a default of vigil gives way to it in
    Grafana; with_defaults() writes shop in), and $instance filters recording-rule panels."""
    url = running.shop.url
    wait_until(lambda: prom_query(url, f'up{{job="{SHOP}"}} == 1'), 30, "the first scrape")
    for dash in DASHBOARDS.values():
        by_name = {variable.name: variable for variable in variable_queries(dash)}
        jobs = label_values(url, "job", by_name["job"].selector or "up")
        assert jobs == [SHOP]
        assert not set(DEFAULT_JOBS) & set(jobs)
        shop = with_defaults(dash, job=SHOP)
        [job] = [v for v in shop["templating"]["list"] if v["name"] == "job"]
        assert job["current"]["value"] == [SHOP]
        instances = label_values(url, "instance", expand(by_name["instance"].selector or "up",
                                                         SHOP_VARIABLES))
        assert instances == [running.demo.target]
    calls = next(query for query in _on_rules(QUERIES)
                 if q.FUNCTION_CALLS_RATE in query.expr and "sum(" in query.expr)
    here = calls.expanded({**SHOP_VARIABLES, "instance": running.demo.target})
    elsewhere = calls.expanded({**SHOP_VARIABLES, "instance": "elsewhere:9464"})
    wait_until(lambda: shows_something(prom_query(url, here)), DEADLINE,
               f"{calls.name} for instance {running.demo.target}")
    assert not shows_something(prom_query(url, elsewhere)), elsewhere


def test_template_variables_list_the_demo_target(running: Running) -> None:
    """$job offers the demo's job and $instance its exporter, as Grafana's label_values asks."""
    url = running.prometheus_url
    wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), 30, "the first scrape")
    for variable, values in variable_values(url):
        if variable.name == "job":
            assert TEST_VARIABLES["job"] in values


# --- the breaker panels under gunicorn: one state series per worker ---------------------------


def _state_series(breaker: str, states: dict[str, str], pid: str | None) -> list[dict[str, str]]:
    """Input series of the state gauge for one breaker in one worker (or one process)."""
    worker = f', pid="{pid}"' if pid is not None else ""
    return [{"series": f'vigil_circuit_breaker_state{{job="vigil", instance="app:8000", '
                       f'breaker="{breaker}", state="{state}"{worker}}}',
             "values": f"{value}x5"}
            for state, value in states.items()]


_CLOSED = {"CLOSED": "1", "HALF_OPEN": "0", "OPEN": "0"}
_HALF = {"CLOSED": "0", "HALF_OPEN": "1", "OPEN": "0"}
_OPEN = {"CLOSED": "0", "HALF_OPEN": "0", "OPEN": "1"}


def _panel_cases(pids: list[str | None]) -> dict[str, Any]:
    """payments: two workers OPEN, one HALF_OPEN; search: one probing; ledger: all CLOSED
    (with one pid, None: the single process, payments OPEN and search HALF_OPEN)."""
    series: list[dict[str, str]] = []
    for index, pid in enumerate(pids):
        series += _state_series("payments", _OPEN if index in (0, 2) else
                                _HALF if index == 1 else _CLOSED, pid)
        series += _state_series("search", _HALF if index == len(pids) - 1 else _CLOSED, pid)
        series += _state_series("ledger", _CLOSED, pid)
    many = len(pids) > 1

    def labels(breaker: str, state: str | None = None) -> str:
        state_label = f', state="{state}"' if state else ""
        return f'{{breaker="{breaker}", instance="app:8000"{state_label}}}'

    def samples(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
        return [{"labels": label, "value": value} for label, value in pairs]

    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": expand(q.BREAKER_STATE.expr), "eval_time": "2m",
             "exp_samples": samples([(labels("payments"), 2), (labels("search"), 1),
                                     (labels("ledger"), 0)])},
            {"expr": expand(q.BREAKERS_OPEN.expr), "eval_time": "2m",
             "exp_samples": samples([("{}", 1)])},
            {"expr": expand(q.BREAKER_WORKERS_NOT_CLOSED.expr), "eval_time": "2m",
             "exp_samples": samples([
                 (labels("payments", "OPEN"), 2 if many else 1),
                 (labels("payments", "HALF_OPEN"), int(many)),
                 (labels("search", "OPEN"), 0), (labels("search", "HALF_OPEN"), 1),
                 (labels("ledger", "OPEN"), 0), (labels("ledger", "HALF_OPEN"), 0)])},
        ],
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_breaker_panels_show_the_worst_worker(tmp_path: Path) -> None:
    """With 4 workers the state panel shows OPEN if any is, counts the open breakers once, and
    the workers panel counts the workers per state; one process gives the same answers."""
    used = {query.expr for query in QUERIES}
    for query in (q.BREAKER_STATE, q.BREAKERS_OPEN, q.BREAKER_WORKERS_NOT_CLOSED):
        assert query.expr in used, f"not on a dashboard: {query.expr}"
    (tmp_path / "empty.rules.yml").write_text("groups: []\n", encoding="utf-8")
    tests = {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m",
             "tests": [_panel_cases(["101", "102", "103", "104"]), _panel_cases([None])]}
    path = tmp_path / "breaker-panels.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
