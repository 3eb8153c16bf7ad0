"""Every dashboard panel query returns data from a real Prometheus that scraped the demo.

Grafana cannot be installed here, so this is the mock-free substitute for opening the dashboards:
the queries Grafana would send are taken from the generated ``dashboards/json/*.json``, their
template variables replaced (``$job`` -> ``vigil``, ``$instance`` -> ``.*``,
``$__rate_interval`` -> ``1m``), and each one is run against Prometheus's ``/api/v1/query``.
(``tests/unit/test_dashboards_build.py`` runs the same expressions through ``promtool check
rules``.)

What runs: the agent-studio demo in this process at ``scale=0.3`` (its minute-long story in about
18 s: breaker opening and recovering, runaway agents raising critical errors, the embedding
brownout with retry give-ups), recording into vigil's process-wide registry; the exporter serving
that registry; the resource sampler; and a Prometheus from the Debian package with the
repository's ``alerts/`` configuration and rules (recording rules included), scraping and
evaluating every second. No Alertmanager: ``ALERTS`` is Prometheus's own series, and the demo's
critical errors fire ``VigilCriticalError`` (no ``for:``) on the next evaluation.

A query counts once it has returned a non-empty result with at least one finite, non-zero value
(so a panel shows something real, not only zeros or NaN from an idle histogram: e.g. "Breakers
open" must be seen while the breaker is OPEN, "Retry give-ups" after the brownout). The test
polls against a deadline and, on failure, lists the queries that returned nothing, and those that
returned only zeros or NaN.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboards.model import PanelQuery, load_dashboards, panel_queries, variable_queries
from dashboards.queries import RECORDING_RULES, TEST_VARIABLES, expand

import vigil
import vigil.config
from tests.integration.conftest import prom_query, wait_until
from vigil_exporter.server import ExporterHandle, start_exporter
from vigil_exporter.stack import ALERTS_DIR, LocalStack, find_prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_prometheus() is None,
                       reason="prometheus is not installed (./run test installs it)"),
]

SCALE = 0.3
# Seconds for every query to have shown data; typically ~12 s (Prometheus scrapes first about
# 5 s after it starts, the retry give-ups come with the brownout ~9-12 s into the demo).
DEADLINE = 75.0

DASHBOARDS = load_dashboards()
QUERIES = [query for dash in DASHBOARDS.values() for query in panel_queries(dash)]


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


@dataclass
class Running:
    prometheus_url: str
    demo_errors: list[BaseException]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The demo recording, the exporter serving it, Prometheus scraping it every second."""
    from vigil_exporter.demo import AgentStudioDemo  # its decorators register demo series

    tmp_path = tmp_path_factory.mktemp("dashboards")
    # The demo repeats a few alert messages. With the default 60 s de-duplication the first of
    # each is dispatched before Prometheus's first scrape and the next a minute later, so
    # "vigil alerts dispatched" (a rate) would stay 0 for this whole test: dispatch them all.
    before = vigil.config.get_config()
    vigil.configure({"monitoring": {"alerts": {"dedup_window": 0}}})
    errors: list[BaseException] = []
    stop = threading.Event()
    exporter: ExporterHandle | None = None
    stack: LocalStack | None = None
    sampler_started = False
    thread: threading.Thread | None = None
    with open(tmp_path / "demo.log", "w", encoding="utf-8") as log, \
            AgentStudioDemo(scale=SCALE, seed=7, log_stream=log) as demo:

        def play() -> None:
            try:
                demo.run(None, stop)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        try:
            exporter = start_exporter(port=0)
            stack = LocalStack(exporter_url=exporter.url, webhook_url=None,
                               alerts_dir=_alerts_dir(tmp_path), scrape_interval="1s")
            stack.start(alertmanager=False)
            assert stack.prometheus_url is not None
            sampler_started = vigil.performance_monitor.start_monitoring(1.0)
            thread = threading.Thread(target=play, name="agent-studio-demo", daemon=True)
            thread.start()
            yield Running(stack.prometheus_url, errors)
        finally:
            stop.set()
            if thread is not None:
                thread.join(15)
            if sampler_started:
                vigil.performance_monitor.stop_monitoring()
            if stack is not None:
                stack.stop()
            if exporter is not None:
                exporter.stop()
            vigil.configure(before)


def _label_values(base_url: str, label: str, selector: str) -> list[str]:
    query = urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(f"{base_url}/api/v1/label/{label}/values?{query}",
                                timeout=5) as response:
        body: dict[str, Any] = json.load(response)
    assert body["status"] == "success", body
    values: list[str] = body["data"]
    return values


def _unhealthy_rules(base_url: str) -> str:
    """Rules Prometheus failed to evaluate (an explanation for queries on recording rules)."""
    with urllib.request.urlopen(f"{base_url}/api/v1/rules", timeout=5) as response:
        groups = json.load(response)["data"]["groups"]
    return "".join(f"  {rule['name']}: {rule.get('lastError')}\n" for group in groups
                   for rule in group["rules"] if rule.get("health") not in ("ok", "unknown"))


def _shows_something(result: list[dict[str, Any]]) -> bool:
    """Whether an instant-query result has a finite, non-zero value."""
    for series in result:
        value = float(series["value"][1])
        if math.isfinite(value) and value != 0:
            return True
    return False


def test_every_panel_query_returns_data(running: Running) -> None:
    """Each panel query of every dashboard returns non-zero data from the demo's metrics."""
    url = running.prometheus_url
    started = time.monotonic()
    pending: dict[str, PanelQuery] = {query.name: query for query in QUERIES}
    assert len(pending) == len(QUERIES), "two queries share a panel id and refId"
    answered: set[str] = set()  # returned a non-empty result, if only zeros or NaN
    deadline = started + DEADLINE
    while pending and time.monotonic() < deadline and not running.demo_errors:
        for name, query in list(pending.items()):
            result = prom_query(url, query.expanded())
            if result:
                answered.add(name)
            if _shows_something(result):
                del pending[name]
        if pending:
            time.sleep(0.5)  # polling Prometheus against the deadline above
    assert not running.demo_errors, f"the demo crashed: {running.demo_errors[0]!r}"
    empty = [q for name, q in pending.items() if name not in answered]
    zeros = [q for name, q in pending.items() if name in answered]
    assert not pending, (
        f"{len(pending)} of {len(QUERIES)} panel queries showed no data within "
        f"{DEADLINE:.0f}s\nreturned nothing:\n"
        + "".join(f"  {q.name}: {q.expanded()}\n" for q in empty)
        + "returned only zeros or NaN:\n"
        + "".join(f"  {q.name}: {q.expanded()}\n" for q in zeros)
        + "rules failing in Prometheus:\n" + (_unhealthy_rules(url) or "  none\n"))
    print(f"all {len(QUERIES)} panel queries showed data after "
          f"{time.monotonic() - started:.1f}s")


def test_template_variables_list_the_demo_target(running: Running) -> None:
    """$job offers the demo's job and $instance its exporter, as Grafana's label_values asks."""
    url = running.prometheus_url
    wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), 30, "the first scrape")
    for dash in DASHBOARDS.values():
        for variable in variable_queries(dash):
            selector = expand(variable.selector or "up", TEST_VARIABLES)
            values = _label_values(url, variable.label, selector)
            assert values, f"{variable.dashboard} ${variable.name}: no {variable.label} values"
            if variable.name == "job":
                assert TEST_VARIABLES["job"] in values
