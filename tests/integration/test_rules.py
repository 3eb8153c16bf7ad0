"""alerts/ as code: generated files up to date, promtool/amtool clean, every alert tested.

``alerts/build.py`` generates the rule files and the Prometheus/Alertmanager configs from one
``Settings`` (the docker-compose pair and the production recipe of ``alerts/production/``: an
HA pair of Prometheus configs and the Alertmanager cluster's config); these tests rebuild them,
run ``promtool check``/``test rules`` and ``amtool check-config``/``config routes test`` on
them, and check that each alert has a promtool case that fires and one that does not, a runbook
section, and uses only metrics the README documents. The inhibition rule is proven on a real
Alertmanager. The mixin built for other selectors is ``test_mixin_rules.py``.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts.build import RECORDING_RULES, RULE_FILES, Settings, render, runbook_url
from dashboards.queries import RECORDING_RULES as DASHBOARD_RULES

from tests.integration.conftest import wait_until
from vigil_exporter.stack import LocalStack, find_alertmanager, free_port

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"
BUILD = ALERTS / "build.py"
GENERATED = ("vigil.rules.yml", "vigil.recording.rules.yml", "demo.rules.yml", "alertmanager.yml",
             "prometheus.yml", "production/prometheus-a.yml", "production/prometheus-b.yml",
             "production/alertmanager.yml")
RULES = ("vigil.rules.yml", "demo.rules.yml")  # the general set's alerts, the demo's
PROMETHEUS_CONFIGS = ("prometheus.yml", "production/prometheus-a.yml",
                      "production/prometheus-b.yml")
ALERTMANAGER_CONFIGS = ("alertmanager.yml", "production/alertmanager.yml")
TEST_FILES = sorted((ALERTS / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(./run test installs the prometheus package)")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed "
                                  "(./run test installs prometheus-alertmanager)")
# Label values of the metrics table rows: | `vigil_name` | type | ...
README_METRIC = re.compile(r"^\| `(vigil_[a-z0-9_]+)` \| (\w+) \|", re.M)
METRIC_NAME = re.compile(r"\b([a-z_][a-z0-9_]*(?::[a-z0-9_]+)*)\s*(?=\{|\[|\)|$|\s)")
PROMQL_WORDS = {"sum", "by", "max", "min", "avg", "count", "rate", "increase", "and", "or",
                "unless", "offset", "absent", "avg_over_time", "without", "on", "ignoring",
                "count_over_time", "sum_over_time", "group_left"}
RUNBOOK_BASE = "https://github.com/vigil-monitoring/vigil/blob/main/alerts/runbook.md"


def _build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BUILD), *args], capture_output=True, text=True,
                          check=False, timeout=60)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def _load(name: str) -> Any:
    return yaml.safe_load((ALERTS / name).read_text(encoding="utf-8"))


def _alert_rules(*names: str) -> list[dict[str, Any]]:
    """The alerting rules of ``names`` (default: the general set's and the demo's)."""
    return [rule for name in names or RULES for group in _load(name)["groups"]
            for rule in group["rules"]]


def _recording_rules() -> list[dict[str, Any]]:
    return [rule for group in _load("vigil.recording.rules.yml")["groups"]
            for rule in group["rules"]]


def _unit_tests() -> list[dict[str, Any]]:
    return [test for path in TEST_FILES
            for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]]


# --- generated = committed, and the build tool -----------------------------------------------


def test_committed_files_match_build(tmp_path: Path) -> None:
    """Rebuilding alerts/ from build.py gives exactly the committed files."""
    result = _build("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(GENERATED)
    for name in GENERATED:
        built = (tmp_path / name).read_text(encoding="utf-8")
        committed = (ALERTS / name).read_text(encoding="utf-8")
        diff = "".join(difflib.unified_diff(committed.splitlines(True), built.splitlines(True),
                                            f"alerts/{name}", "build.py"))
        assert diff == "", f"alerts/{name} is stale: run python alerts/build.py\n{diff}"
    assert _build("--check").returncode == 0


def test_overrides_write_a_variant_and_never_the_committed_files(tmp_path: Path) -> None:
    """--set changes only the variant written to --out; without --out it is refused."""
    result = _build("--out", str(tmp_path), "--set", "breaker_open_for=5s",
                    "--set", "group_wait=1s")
    assert result.returncode == 0, result.stderr
    rules = yaml.safe_load((tmp_path / "vigil.rules.yml").read_text(encoding="utf-8"))
    fors = [(r["labels"]["severity"], r.get("for")) for g in rules["groups"] for r in g["rules"]
            if r["alert"] == "VigilCircuitBreakerOpen"]
    assert fors == [("warning", "5s"), ("critical", "30m")]
    am = yaml.safe_load((tmp_path / "alertmanager.yml").read_text(encoding="utf-8"))
    assert am["route"]["group_wait"] == "1s"

    refused = _build("--set", "breaker_open_for=5s")
    assert refused.returncode == 2
    assert "--set needs --out" in refused.stderr


def test_check_names_stale_and_stray_production_files(tmp_path: Path) -> None:
    """--check fails on an edited production file and on one build.py no longer writes."""
    assert _build("--out", str(tmp_path)).returncode == 0
    assert _build("--out", str(tmp_path), "--check").returncode == 0
    edited = tmp_path / "production" / "prometheus-b.yml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("replica: b", "replica: c"),
                      encoding="utf-8")
    stray = tmp_path / "production" / "prometheus-c.yml"
    stray.write_text("global: {}\n", encoding="utf-8")
    result = _build("--out", str(tmp_path), "--check")
    assert result.returncode == 1
    assert f"stale: {edited}" in result.stderr
    assert f"stray: {stray} is not generated any more" in result.stderr
    assert _build("--out", str(tmp_path)).returncode == 0  # a rebuild removes the stray
    assert not stray.exists()
    assert _build("--out", str(tmp_path), "--check").returncode == 0


@pytest.mark.parametrize(("pair", "message"), [
    ("breaker_open_fr=5s", "no such setting; did you mean 'breaker_open_for'?"),
    ("breaker_open_for=soon", "breaker_open_for: got 'soon'; expected a Prometheus duration"),
    ("breaker_flap_trips=many", "breaker_flap_trips: got 'many'; expected int (a whole"),
    ("memory_ratio=80", "memory_ratio: got 80.0; must be in (0, 1]"),
    ("breaker_open_for", "expected key=value"),
    ("replicas=a", "replicas: got 'a'; expected two or more distinct names"),
    ("replicas=a,a", "replicas: got 'a,a'; expected two or more distinct names"),
    ("replica_label=re-plica", "replica_label: got 're-plica'; expected a Prometheus label"),
    ("alertmanager_peers=am1", "alertmanager_peers: got 'am1'; expected host:port addresses"),
    ("alertmanager_cluster_port=70000", "alertmanager_cluster_port: got 70000; must be a TCP"),
    ("remote_write_url=vm:8428", "remote_write_url: got 'vm:8428'; expected an http://"),
    ("selector={job=\"x\"}", "selector: got '{job=\"x\"}'; expected PromQL label matchers"),
    ("selector=job=~\"(\"", "selector: got 'job=~\"(\"'; the regex '(' of job=~ does not"),
    ("selector=job=~\"a|b\"", "scrape_job: the selector job=~\"a|b\" names no single job"),
    ("scrape_job=shop", "scrape_job: got 'shop'; the selector job=\"vigil\" does not select"),
    ("job=my app", "job: got 'my app'; expected one job name"),
    ("runbook_base=alerts/runbook.md", "runbook_base: got 'alerts/runbook.md'; expected an "
                                       "absolute http:// or https:// URL"),
    ("oncall_email=nobody", "oncall_email: got 'nobody'; expected an email address"),
])
def test_bad_overrides_are_usage_errors(tmp_path: Path, pair: str, message: str) -> None:
    """A wrong --set names the setting and what is allowed, with exit status 2."""
    result = _build("--out", str(tmp_path), "--set", pair)
    assert result.returncode == 2
    assert message in result.stderr


# --- promtool --------------------------------------------------------------------------------


@needs_promtool
def test_promtool_check_rules() -> None:
    """promtool check rules accepts the three rule files."""
    assert PROMTOOL is not None
    result = _run([PROMTOOL, "check", "rules", *(str(ALERTS / name) for name in
                                                 ("vigil.rules.yml", "vigil.recording.rules.yml",
                                                  "demo.rules.yml"))])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("name", PROMETHEUS_CONFIGS)
def test_promtool_check_config(name: str) -> None:
    """promtool check config accepts each Prometheus config and finds its rule files: the
    general set, and for the demo's prometheus.yml the demo's rules too (production: not)."""
    assert PROMTOOL is not None
    result = _run([PROMTOOL, "check", "config", str(ALERTS / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    demo = name == "prometheus.yml"
    assert f"{3 if demo else 2} rule files found" in result.stdout
    assert ("demo.rules.yml" in result.stdout) is demo
    alerting = len(_alert_rules("vigil.rules.yml"))
    assert alerting >= 15
    assert f"SUCCESS: {alerting} rules found" in result.stdout  # the alerting rules, loaded
    assert f"SUCCESS: {len(_recording_rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    """promtool test rules passes every alerts/tests/*.yml file."""
    assert PROMTOOL is not None
    assert TEST_FILES
    result = _run([PROMTOOL, "test", "rules", *map(str, TEST_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """Each alert (each severity of it) fires in some promtool case; each has a quiet one."""
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                for alert in case["exp_alerts"]:
                    fired.add((case["alertname"], alert["exp_labels"]["severity"]))
                    assert set(alert["exp_annotations"]) == {"summary", "description",
                                                            "runbook_url"}
            else:
                quiet.add(case["alertname"])
    rules = {(r["alert"], r["labels"]["severity"]) for r in _alert_rules()}
    assert sorted(rules - fired) == []
    assert sorted({name for name, _ in rules} - quiet) == []


def test_every_recording_rule_is_tested() -> None:
    """Each recording rule is the expression of a promql_expr_test with expected samples."""
    tested = {case["expr"] for test in _unit_tests()
              for case in test.get("promql_expr_test", []) if case.get("exp_samples")}
    assert sorted({r["record"] for r in _recording_rules()} - tested) == []


# --- the rules themselves --------------------------------------------------------------------


def test_recording_rules_keep_the_dashboards_contract() -> None:
    """The recording rules are exactly the dashboards' contract (dashboards/queries.py), the
    selector in each metric's braces; they keep job and instance, aggregating what their
    names say."""
    rules = {r["record"]: r["expr"] for r in _recording_rules()}
    assert sorted(rules) == sorted(DASHBOARD_RULES) == sorted(RECORDING_RULES)
    for record, expr in DASHBOARD_RULES.items():
        assert rules[record] == re.sub(r"\((vigil_\w+)\[", r'(\1{job="vigil"}[', expr)
        level, metric, operation = record.split(":")
        labels = level.removesuffix("_le").split("_") + (["le"] if level.endswith("_le") else [])
        assert labels[:2] == ["job", "instance"], record
        function = operation.removesuffix("5m")
        suffix = "" if metric.endswith("_bucket") else "_total"
        assert rules[record] == (f"sum by ({', '.join(labels)}) "
                                 f'({function}({metric}{suffix}{{job="vigil"}}[5m]))')


def test_alerts_carry_severity_annotations_and_runbook_section() -> None:
    """Every alert (the demo's too) has a known severity, summary, description, an absolute
    runbook_url (Settings.runbook_base) and a runbook section."""
    runbook = (ALERTS / "runbook.md").read_text(encoding="utf-8")
    sections = {line[3:].strip().lower() for line in runbook.splitlines()
                if line.startswith("## ")}
    names = set()
    for rule in _alert_rules():
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{rule['alert'].lower()}"
        assert annotations["runbook_url"] == runbook_url(Settings(), rule["alert"])
        assert rule["alert"].lower() in sections, f"no '## {rule['alert']}' in runbook.md"
    assert sorted(sections - {n.lower() for n in names}) == [], "runbook sections without alert"
    assert {"VigilCriticalError", "VigilCircuitBreakerOpen"} <= names


def test_rules_use_only_documented_metrics() -> None:
    """Every series a rule reads is a README metric, a recording rule or up."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented: set[str] = set()
    for name, kind in README_METRIC.findall(readme):
        documented.add(name)
        if kind == "histogram":
            documented.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    recorded = {r["record"] for r in _recording_rules()}
    used: set[str] = set()
    for rule in _alert_rules() + _recording_rules():
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not names
        expr = re.sub(r"\{[^}]*\}", "{}", expr)  # nor are label names
        expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # nor grouping
        used.update(n for n in METRIC_NAME.findall(expr)
                    if n not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", n))
    assert used, "no metric names found: the pattern is wrong"
    assert sorted(used - documented - recorded - {"up"}) == []


# --- Prometheus and Alertmanager configs -----------------------------------------------------


def test_prometheus_config_scrapes_the_job_the_rules_select() -> None:
    """prometheus.yml scrapes job vigil at app:9464, loads the general rule files and the
    demo's, alerts alertmanager:9093; the production pair loads the general set only."""
    config = _load("prometheus.yml")
    assert config["rule_files"] == ["vigil.rules.yml", "vigil.recording.rules.yml",
                                    "demo.rules.yml"]
    for replica in ("a", "b"):
        production = _load(f"production/prometheus-{replica}.yml")
        assert production["rule_files"] == [f"../{name}" for name in RULE_FILES]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["vigil"]
    assert config["scrape_configs"][0]["static_configs"] == [{"targets": ["app:9464"]}]
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["alertmanager:9093"]}]
    for rule in _alert_rules() + _recording_rules():
        assert 'job="vigil"' in rule["expr"], rule.get("alert", rule.get("record"))


def test_alertmanager_config_sends_resolved_to_the_vigil_webhook() -> None:
    """Every receiver is the vigil webhook with send_resolved; groups split by breaker/category;
    the on-call person is the commented example, exactly what oncall_email adds."""
    config = _load("alertmanager.yml")
    assert {"alertname", "job", "breaker", "category"} <= set(config["route"]["group_by"])
    for receiver in config["receivers"]:
        [hook] = receiver["webhook_configs"]
        assert hook["url"] == "http://app:9464/alertmanager/webhook"
        assert hook["send_resolved"] is True
    text = (ALERTS / "alertmanager.yml").read_text(encoding="utf-8")
    example = text[text.index("# A person on call"):]
    commented = [line.removeprefix("#   ") for line in example.splitlines()
                 if line.startswith("#   ")]
    assert len(commented) > 10, example
    enabled = yaml.safe_load(render(Settings.from_overrides(
        {"oncall_email": "oncall@example.com"}))["alertmanager.yml"])
    routes = yaml.safe_load("\n".join(commented[:commented.index("- name: oncall")]))
    receivers = yaml.safe_load("\n".join(commented[commented.index("- name: oncall"):]))
    assert routes == [enabled["route"]["routes"][1]]
    assert receivers == [enabled["receivers"][-1]]


def test_stack_rewrites_the_generated_configs(tmp_path: Path) -> None:
    """LocalStack points every receiver at its webhook with its token, and scrapes its exporter."""
    assert _build("--out", str(tmp_path), "--set",
                  "webhook_credentials_file=/run/secrets/vigil-token").returncode == 0
    for alerts_dir in (ALERTS, tmp_path):
        stack = LocalStack(exporter_url="http://127.0.0.1:1234", alerts_dir=alerts_dir,
                           webhook_url="http://127.0.0.1:1234/alertmanager/webhook",
                           bearer_token="s3cret")
        am = stack.alertmanager_config()
        for receiver in am["receivers"]:
            assert receiver["webhook_configs"][0]["url"] == \
                "http://127.0.0.1:1234/alertmanager/webhook"
            assert receiver["webhook_configs"][0]["http_config"] == {
                "authorization": {"type": "Bearer", "credentials": "s3cret"}}
        prom = stack.prometheus_config(9093)
        assert prom["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:1234"]}]


@needs_amtool
def test_amtool_check_config(tmp_path: Path) -> None:
    """amtool check-config accepts both Alertmanager configs, and the variant with a token file."""
    assert AMTOOL is not None
    assert _build("--out", str(tmp_path), "--set",
                  "webhook_credentials_file=/run/secrets/vigil-token").returncode == 0
    variant = yaml.safe_load((tmp_path / "alertmanager.yml").read_text(encoding="utf-8"))
    assert variant["receivers"][0]["webhook_configs"][0]["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": "/run/secrets/vigil-token"}}
    paths = [ALERTS / name for name in ALERTMANAGER_CONFIGS] + [tmp_path / "alertmanager.yml"]
    for path in paths:
        result = _run([AMTOOL, "check-config", str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Found:\n - global config\n - route\n - 1 inhibit rules\n - 4 receivers" \
            in result.stdout, result.stdout


def _oncall_config(tmp_path: Path) -> Path:
    """alertmanager.yml built with a person on call (the placeholder addresses)."""
    out = tmp_path / "oncall"
    result = _build("--out", str(out), "--set", "oncall_email=oncall@example.com")
    assert result.returncode == 0, result.stderr
    return out / "alertmanager.yml"


@needs_amtool
def test_amtool_accepts_the_person_on_call(tmp_path: Path) -> None:
    """With oncall_email set, amtool accepts the email receiver (5 receivers), and routes each
    critical alert to the app's webhook and to the person, the others to the webhook only."""
    assert AMTOOL is not None
    path = _oncall_config(tmp_path)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    [oncall] = [r for r in config["receivers"] if r["name"] == "oncall"]
    assert oncall["email_configs"] == [{"to": "oncall@example.com",
                                        "from": "alertmanager@example.com",
                                        "smarthost": "smtp.example.com:587",
                                        "send_resolved": True}]
    result = _run([AMTOOL, "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 5 receivers" in result.stdout, result.stdout
    for severity, expected in (("critical", "vigil-critical,oncall"),
                               ("warning", "vigil-warning"), ("info", "vigil-info")):
        result = _run([AMTOOL, "config", "routes", "test", f"--config.file={path}",
                       f"--verify.receivers={expected}", "alertname=VigilExporterDown",
                       f"severity={severity}", "job=vigil"])
        assert result.returncode == 0, (severity, result.stdout + result.stderr)


@needs_amtool
@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_every_alert_routes_to_its_severity_receiver(name: str) -> None:
    """amtool config routes test sends each alert to vigil-<severity>; others to vigil."""
    assert AMTOOL is not None
    cases = {(r["alert"], r["labels"]["severity"]) for r in _alert_rules()} | {("Other", "page")}
    for alertname, severity in sorted(cases):
        expected = f"vigil-{severity}" if severity in ("critical", "warning", "info") else "vigil"
        result = _run([AMTOOL, "config", "routes", "test",
                       f"--config.file={ALERTS / name}",
                       f"--verify.receivers={expected}",
                       f"alertname={alertname}", f"severity={severity}", "job=vigil"])
        assert result.returncode == 0, (alertname, severity, result.stdout + result.stderr)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager with alerts/alertmanager.yml (webhook pointed nowhere); its URL."""
    binary = find_alertmanager()
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (./run test installs it)")
    config = LocalStack(exporter_url="http://127.0.0.1:9",
                        webhook_url="http://127.0.0.1:9/alertmanager/webhook").alertmanager_config()
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'alertmanager.yml'}",
             f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address="],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(ready, 30, "Alertmanager to be ready", interval=0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _alert_states(url: str) -> dict[tuple[str, str, str], list[str]]:
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=5) as response:
        alerts = json.load(response)
    return {(a["labels"]["alertname"], a["labels"].get("breaker", ""), a["labels"]["severity"]):
            a["status"]["inhibitedBy"] for a in alerts}


@pytest.mark.integration
def test_critical_inhibits_the_matching_warning(alertmanager: str) -> None:
    """On a real Alertmanager the critical breaker alert mutes its warning, not another's."""
    start = datetime.now(UTC).isoformat()
    end = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()

    def alert(breaker: str, severity: str) -> dict[str, Any]:
        return {"labels": {"alertname": "VigilCircuitBreakerOpen", "job": "vigil",
                           "instance": "app:9464", "breaker": breaker, "severity": severity},
                "startsAt": start, "endsAt": end}

    _post_alerts(alertmanager, [alert("vector_db", "critical"), alert("vector_db", "warning"),
                                alert("embeddings", "warning")])

    def settled() -> dict[tuple[str, str, str], list[str]] | None:
        states = _alert_states(alertmanager)
        return states if len(states) == 3 and states[
            ("VigilCircuitBreakerOpen", "vector_db", "warning")] else None

    states = wait_until(settled, 20, "the warning to be inhibited")
    assert states[("VigilCircuitBreakerOpen", "vector_db", "critical")] == []
    assert states[("VigilCircuitBreakerOpen", "embeddings", "warning")] == []
