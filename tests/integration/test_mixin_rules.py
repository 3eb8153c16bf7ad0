"""The rules as a mixin: rendered for another selector they watch those targets and no others.

``alerts.build.render(Settings.from_overrides(...))`` gives the files a user's own Prometheus
loads; here they are written into ``tmp_path`` and ``promtool test rules`` runs cases written
for them: built for ``job="shop"`` they fire on job shop and not on job vigil (and the
shipped ones the other way round); built for ``namespace="prod", job=~"api|worker"`` they fire
on both jobs of that namespace, carry the namespace, and keep it in the recording rules; and
``promtool check config`` accepts the Prometheus config each variant writes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts.build import RULE_FILES, Settings, render

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                "(./run test installs the prometheus package)")

SHOP = 'job="shop", instance="shop:8000"'
VIGIL = 'job="vigil", instance="app:9464"'
CRITICAL = 'category="api_call", severity="critical", component="Gateway"'


def _write(folder: Path, settings: Settings) -> Path:
    for name, text in render(settings).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _promtool(*argv: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *argv], capture_output=True, text=True, check=False,
                          timeout=120)


def _test_rules(folder: Path, tests: list[dict[str, Any]]) -> None:
    """Run ``tests`` (promtool test cases) against ``folder``'s general rule files."""
    path = folder / "mixin-test.yml"
    path.write_text(yaml.safe_dump({"rule_files": list(RULE_FILES), "evaluation_interval": "1m",
                                    "tests": tests}, sort_keys=False), encoding="utf-8")
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _series(selector: str, values: str, name: str = "up", extra: str = "") -> dict[str, str]:
    labels = f"{selector}, {extra}" if extra else selector
    return {"series": f"{name}{{{labels}}}", "values": values}


def _critical_alert(settings: Settings, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "critical", **labels, "category": "api_call",
                       "component": "Gateway"},
        "exp_annotations": {
            "summary": "Critical error in Gateway (api_call)",
            "description": f"Gateway handled 1 critical api_call error(s) in the last 5m on "
                           f"{labels['instance']}.",
            "runbook_url": f"{settings.runbook_base}#vigilcriticalerror"},
    }


def _two_jobs() -> list[dict[str, str]]:
    """Job shop and job vigil, alike: scraped from 0m, a critical error at 3m (a series born
    after the target's first scrape), a breaker out of CLOSED from 0m, 1 error a second."""
    series = []
    for target in (SHOP, VIGIL):
        series += [
            _series(target, "1x40"),
            _series(target, "_x3 1x37", "vigil_errors_total", CRITICAL),
            _series(target, "0+60x40", "vigil_errors_total",
                    'category="vector_db", severity="high", component="MemoryStore"'),
            _series(target, "0x40", "vigil_circuit_breaker_state",
                    'breaker="payments", state="CLOSED"'),
        ]
    return series


def test_built_for_job_shop_it_fires_on_shop_and_not_on_vigil(tmp_path: Path) -> None:
    """--set job=shop (and a runbook base of its own): each alert and recording rule sees job
    shop only; the shipped rules, on the same series, see job vigil only."""
    shop = Settings.from_overrides({"job": "shop", "runbook_base": "https://wiki.shop/vigil"})
    folder = _write(tmp_path / "shop", shop)
    rules = yaml.safe_load((folder / "vigil.rules.yml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert all('job="shop"' in expr and 'job="vigil"' not in expr for expr in exprs)
    shop_labels = {"job": "shop", "instance": "shop:8000"}
    breaker = {"exp_labels": {"severity": "warning", **shop_labels, "breaker": "payments"},
               "exp_annotations": {
                   "summary": "Circuit breaker payments is open",
                   "description": "Breaker payments on shop:8000 has been rejecting calls "
                                  "(OPEN, HALF_OPEN probes that failed, or FORCED_OPEN by hand) "
                                  "in at least one worker for "
                                  "more than 5m; now in 1 worker(s): calls there to the service "
                                  "behind it are rejected or answered by its fallback.",
                   "runbook_url": "https://wiki.shop/vigil#vigilcircuitbreakeropen"}}
    recorded = "job_instance_category_severity:vigil_errors:rate5m"
    _test_rules(folder, [{
        "interval": "1m",
        "input_series": _two_jobs(),
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "VigilCriticalError", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "VigilCriticalError",
             "exp_alerts": [_critical_alert(shop, shop_labels)]},
            {"eval_time": "10m", "alertname": "VigilCircuitBreakerOpen",
             "exp_alerts": [breaker]},
            {"eval_time": "10m", "alertname": "VigilExporterAbsent", "exp_alerts": []},
        ],
        "promql_expr_test": [{
            "expr": f'{recorded}{{severity="high"}}', "eval_time": "10m",
            "exp_samples": [{"labels": f'{recorded}{{{SHOP}, category="vector_db", '
                                       f'severity="high"}}', "value": 1}]}],
    }, {
        # Only job vigil is scraped: the shop rules miss their target.
        "interval": "1m",
        "input_series": [_series(VIGIL, "1x20")],
        "alert_rule_test": [{"eval_time": "6m", "alertname": "VigilExporterAbsent",
                             "exp_alerts": [{
                                 "exp_labels": {"severity": "critical", "job": "shop"},
                                 "exp_annotations": {
                                     "summary": 'No target matching job="shop" in Prometheus',
                                     "description": 'Prometheus has had no target matching '
                                                    'job="shop" for 5m: nothing of vigil is '
                                                    "monitored (or the rules' selector is not "
                                                    "the application's job).",
                                     "runbook_url": "https://wiki.shop/vigil"
                                                    "#vigilexporterabsent"}}]}],
    }])
    # The shipped rules on the same series: job vigil's alert, not shop's.
    shipped = _write(tmp_path / "shipped", Settings())
    _test_rules(shipped, [{
        "interval": "1m",
        "input_series": _two_jobs(),
        "alert_rule_test": [{"eval_time": "3m", "alertname": "VigilCriticalError",
                             "exp_alerts": [_critical_alert(Settings(), {
                                 "job": "vigil", "instance": "app:9464"})]}],
    }])
    config = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    assert [job["job_name"] for job in config["scrape_configs"]] == ["shop"]
    result = _promtool("check", "config", str(folder / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_selector_of_several_jobs_and_a_namespace(tmp_path: Path) -> None:
    """namespace="prod", job=~"api|worker": both jobs of prod fire, staging's api does not;
    the alerts carry the namespace and the recording rules keep it."""
    settings = Settings.from_overrides({"selector": 'namespace="prod", job=~"api|worker"',
                                        "scrape_job": "api"})
    folder = _write(tmp_path, settings)
    targets = {"api": 'namespace="prod", job="api", instance="10.0.0.1:8000"',
               "worker": 'namespace="prod", job="worker", instance="10.0.0.2:8000"',
               "staging": 'namespace="staging", job="api", instance="10.0.9.1:8000"'}
    series = []
    for target in targets.values():
        series += [_series(target, "1x20"),
                   _series(target, "_x3 1x17", "vigil_errors_total", CRITICAL),
                   _series(target, "0+60x20", "vigil_function_calls_total",
                           'function="ingest_file"')]

    def fired(job: str, instance: str) -> dict[str, Any]:
        return _critical_alert(settings, {"namespace": "prod", "job": job, "instance": instance})

    recorded = "job_instance_function:vigil_function_calls:rate5m"
    _test_rules(folder, [{
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "VigilCriticalError",
             "exp_alerts": [fired("api", "10.0.0.1:8000"), fired("worker", "10.0.0.2:8000")]},
            {"eval_time": "10m", "alertname": "VigilExporterAbsent", "exp_alerts": []},
        ],
        "promql_expr_test": [{
            "expr": recorded, "eval_time": "10m",
            "exp_samples": [
                {"labels": f'{recorded}{{{targets["api"]}, function="ingest_file"}}',
                 "value": 1},
                {"labels": f'{recorded}{{{targets["worker"]}, function="ingest_file"}}',
                 "value": 1}]}],
    }])
    am = yaml.safe_load((folder / "alertmanager.yml").read_text(encoding="utf-8"))
    assert "namespace" in am["route"]["group_by"]
    assert "namespace" in am["inhibit_rules"][0]["equal"]
    config = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    assert [job["job_name"] for job in config["scrape_configs"]] == ["api"]
    result = _promtool("check", "rules", *(str(folder / name) for name in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
