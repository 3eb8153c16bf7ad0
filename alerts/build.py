#!/usr/bin/env python3
"""vigil's alerting as code: rules, Alertmanager and Prometheus configs from one ``Settings``.

Every threshold, window, ``for:`` duration, the job selector and the addresses live in
:class:`Settings` below; :func:`render` turns them into these files of ``alerts/``:

======================================  ===================================================
``vigil.rules.yml``                     the alerting rules
``vigil.recording.rules.yml``           the recording rules (the dashboards query them too)
``alertmanager.yml``                    routes by severity, grouping, inhibition, receivers
``prometheus.yml``                      scrape the app, load ``*.rules.yml``, send alerts
                                        (one Prometheus, one Alertmanager: docker-compose)
``production/prometheus-a.yml``         replica ``a`` of a Prometheus HA pair:
                                        ``external_labels: {replica: a}``, alerts to every
                                        peer of the Alertmanager cluster, ``remote_write``
                                        to VictoriaMetrics, rules from ``../*.rules.yml``
``production/prometheus-b.yml``         replica ``b``: the same but for the replica label
``production/alertmanager.yml``         the one file all three Alertmanager peers load (the
                                        same routes as ``alertmanager.yml``); its header
                                        gives each peer's ``--cluster.*`` command line
======================================  ===================================================

The production files are a recipe (host names as a compose file or Kubernetes would give
them: ``alertmanager-1..3``, ``victoriametrics``, ``app``); their headers hold the command
lines, and ``dashboards/provisioning/victoriametrics/`` the Grafana datasource that points the
dashboards at VictoriaMetrics. The replica label is dropped from alerts
(``alert_relabel_configs``: the cluster holds one alert per condition, whichever replica is
up) and from ``remote_write`` (``write_relabel_configs``: both replicas write the same series,
which VictoriaMetrics's ``-dedup.minScrapeInterval`` reduces to one). The exporter still ignores
replica labels when it de-duplicates (``exporter.replica_labels``), for setups that keep them.
``tests/integration/test_victoriametrics.py`` and ``tests/durability/test_ha.py`` run these
files (addresses and timings replaced) on real servers.

Usage::

    python alerts/build.py                       # regenerate the committed files in alerts/
    python alerts/build.py --check               # exit 1 (and name them) if they are stale
    python alerts/build.py --out DIR --set breaker_open_for=5s --set group_wait=1s

``--set`` writes a variant with other values (the end-to-end tests use fast timings this way);
it needs ``--out``, so the committed files always hold the shipped, production values.
``tests/integration/test_rules.py`` rebuilds the files and fails when they differ from the
committed ones, then runs ``promtool check``/``test rules`` and ``amtool check-config`` on them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ALERTS_DIR = Path(__file__).resolve().parent
RULES_FILE = "vigil.rules.yml"
RECORDING_FILE = "vigil.recording.rules.yml"
ALERTMANAGER_FILE = "alertmanager.yml"
PROMETHEUS_FILE = "prometheus.yml"
PRODUCTION_DIR = "production"
PRODUCTION_ALERTMANAGER_FILE = f"{PRODUCTION_DIR}/alertmanager.yml"
SEVERITIES = ("critical", "warning", "info")

_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_DURATION_SUFFIXES = ("_for", "_window", "_wait", "_interval")
_RATIOS = ("retry_giveup_ratio", "file_failure_ratio", "memory_ratio")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_REPLICA = re.compile(r"[a-z0-9][a-z0-9_-]*")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]+")


@dataclass(frozen=True, slots=True)
class Settings:
    """The one place for vigil's alerting values. Durations are Prometheus durations."""

    # --- where things are (docker-compose service names; stack.py replaces the addresses)
    job: str = "vigil"  # the scrape job of the app; every rule selects job="<job>"
    app_target: str = "app:9464"
    alertmanager_target: str = "alertmanager:9093"
    webhook_url: str = "http://app:9464/alertmanager/webhook"
    # A file holding the token the webhook requires (the app's exporter.webhook_bearer_token;
    # a relative path is relative to alertmanager.yml's folder). docker-compose mounts its
    # secret vigil-token there, and the app reads the same file
    # (VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE). Empty: no Authorization header.
    webhook_credentials_file: str = "/run/secrets/vigil-token"
    runbook_url: str = "alerts/runbook.md#{anchor}"  # {anchor}: the alert name in lowercase
    scrape_interval: str = "5s"
    evaluation_interval: str = "5s"

    # --- circuit breakers
    breaker_open_for: str = "5m"  # not CLOSED (OPEN or probing) this long: warning
    breaker_open_critical_for: str = "30m"  # ...and this long: critical
    breaker_flap_window: str = "15m"
    breaker_flap_trips: int = 3  # CLOSED -> OPEN transitions within the window

    # --- errors
    critical_error_window: str = "5m"  # VigilCriticalError stays firing this long
    error_rate_warning: float = 0.1  # errors per second in one category (5m rate)
    error_rate_warning_for: str = "10m"
    error_rate_critical: float = 1.0
    error_rate_critical_for: str = "5m"
    retry_giveup_ratio: float = 0.1  # share of calls through @with_retry that gave up
    retry_giveup_for: str = "10m"
    agent_limit_window: str = "15m"
    agent_limit_hits: int = 5  # agents stopped (high/critical agent_execution errors)
    # @monitor_performance functions that each handle one file: the failure ratio's
    # denominator (the demo's ingest_file, the seed's process_file). A PromQL regex.
    file_functions: str = "ingest_file|process_file"
    file_failure_ratio: float = 0.25
    file_failure_for: str = "15m"

    # --- the process
    memory_ratio: float = 0.8  # resident set size / physical memory
    memory_for: str = "15m"
    cpu_cores: float = 0.9  # average cores busy over cpu_window
    cpu_window: str = "5m"
    cpu_for: str = "15m"

    # --- the exporter and the alert path
    target_down_for: str = "2m"
    target_absent_for: str = "5m"
    webhook_failure_window: str = "10m"  # webhook/handler/dispatch failures fire this long

    # --- traces
    trace_drop_window: str = "10m"  # spans dropped (export queue full or failed, active cap)

    # --- Alertmanager timings (critical overrides the defaults; info repeats less)
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    critical_group_wait: str = "5s"  # pages go out fast; still one notification per incident
    critical_group_interval: str = "1m"
    critical_repeat_interval: str = "1h"
    info_repeat_interval: str = "24h"

    # --- the production recipe (alerts/production/): a Prometheus HA pair, a 3-peer
    # Alertmanager cluster, VictoriaMetrics behind remote_write
    # The external label telling the pair apart: one of the exporter's replica_labels
    # (replica, prometheus_replica, __replica__), which it ignores when de-duplicating.
    replica_label: str = "replica"
    replicas: str = "a,b"  # comma-separated: one production/prometheus-<name>.yml each
    alertmanager_peers: str = "alertmanager-1:9093,alertmanager-2:9093,alertmanager-3:9093"
    alertmanager_cluster_port: int = 9094  # the peers' gossip port (--cluster.listen-address)
    remote_write_url: str = "http://victoriametrics:8428/api/v1/write"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith(_DURATION_SUFFIXES) and not _DURATION.fullmatch(value):
                raise ValueError(f"{field.name}: got {value!r}; expected a Prometheus "
                                 "duration such as 30s, 5m or 1h30m")
            if isinstance(value, int | float) and value <= 0:
                raise ValueError(f"{field.name}: got {value!r}; must be greater than 0")
            if isinstance(value, str) and '"' in value:
                raise ValueError(f"{field.name}: got {value!r}; must not contain '\"'")
        for name in _RATIOS:
            if getattr(self, name) > 1:
                raise ValueError(f"{name}: got {getattr(self, name)!r}; must be in (0, 1]")
        if not self.job:
            raise ValueError("job: must not be empty")
        if "{anchor}" not in self.runbook_url:
            raise ValueError(f"runbook_url: got {self.runbook_url!r}; must contain {{anchor}}")
        if not _LABEL_NAME.fullmatch(self.replica_label):
            raise ValueError(f"replica_label: got {self.replica_label!r}; expected a "
                             "Prometheus label name")
        names = self.replica_names
        if len(names) < 2 or len(set(names)) != len(names) \
                or not all(_REPLICA.fullmatch(n) for n in names):
            raise ValueError(f"replicas: got {self.replicas!r}; expected two or more distinct "
                             "names (a-z, 0-9, _ and -) separated by commas, such as a,b")
        peers = self.peers
        if not peers or not all(_HOST_PORT.fullmatch(p) for p in peers):
            raise ValueError(f"alertmanager_peers: got {self.alertmanager_peers!r}; expected "
                             "host:port addresses separated by commas")
        if self.alertmanager_cluster_port > 65535:
            raise ValueError(f"alertmanager_cluster_port: got {self.alertmanager_cluster_port}; "
                             "must be a TCP port (1-65535)")
        if not self.remote_write_url.startswith(("http://", "https://")):
            raise ValueError(f"remote_write_url: got {self.remote_write_url!r}; expected an "
                             "http:// or https:// URL")

    @property
    def sel(self) -> str:
        """The job selector every rule uses."""
        return f'job="{self.job}"'

    @property
    def replica_names(self) -> list[str]:
        """The HA pair's replica names (``replicas`` split)."""
        return [name.strip() for name in self.replicas.split(",") if name.strip()]

    @property
    def peers(self) -> list[str]:
        """The Alertmanager cluster's peers, host:port of their HTTP API."""
        return [peer.strip() for peer in self.alertmanager_peers.split(",") if peer.strip()]


def production_prometheus_file(replica: str) -> str:
    """The path (under ``alerts/``) of the HA pair's config for ``replica``."""
    return f"{PRODUCTION_DIR}/prometheus-{replica}.yml"


def with_overrides(settings: Settings, pairs: Sequence[str]) -> Settings:
    """``settings`` with ``key=value`` pairs applied (values parsed as the field's type)."""
    known = {f.name: type(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set {pair!r}: expected key=value")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"--set {key}: no such setting{hint}")
        kind = known[key]
        try:
            changes[key] = kind(raw)
        except ValueError:
            raise ValueError(f"--set {key}: got {raw!r}; expected {kind.__name__}") from None
    return dataclasses.replace(settings, **changes)


# --- PromQL helpers ----------------------------------------------------------------------


def _events(selector: str, window: str) -> str:
    """Counter increments within ``window``, per series, counting series born inside it.

    ``increase()`` needs two samples, so a series that appears with its first event (labelled
    counters do) would miss that event: for a series absent ``window`` ago, its whole value is
    the count (the ``unless ... offset`` clause).
    """
    return (f"(increase({selector}[{window}]) and {selector} offset {window})\n"
            f"  or\n"
            f"({selector} unless {selector} offset {window})")


def _sum_events(by: str, selector: str, window: str) -> str:
    inner = _events(selector, window).replace("\n", "\n  ")
    return f"sum by ({by}) (\n  {inner}\n)"


def _zero_duration(value: str) -> bool:
    return all(c in "0" for c in re.sub(r"[a-z]", "", value))


# --- recording rules ---------------------------------------------------------------------


def recording_rules(s: Settings) -> list[dict[str, Any]]:
    """The recorded series; their names are a contract with dashboards/."""
    j = s.sel

    def rate(by: str, metric: str, extra: str = "") -> str:
        return f"sum by ({by}) (rate({metric}{{{j}{extra}}}[5m]))"

    return [
        {"record": "job_category_severity:vigil_errors:rate5m",
         "expr": rate("job, category, severity", "vigil_errors_total")},
        {"record": "job_function:vigil_function_calls:rate5m",
         "expr": rate("job, function", "vigil_function_calls_total")},
        {"record": "job_function:vigil_function_errors:rate5m",
         "expr": rate("job, function", "vigil_function_errors_total")},
        {"record": "job_function_le:vigil_function_duration_seconds_bucket:rate5m",
         "expr": rate("job, function, le", "vigil_function_duration_seconds_bucket")},
        {"record": "job_breaker:vigil_circuit_breaker_transitions:increase5m",
         "expr": f"sum by (job, breaker) "
                 f"(increase(vigil_circuit_breaker_transitions_total{{{j}}}[5m]))"},
        {"record": "job_breaker_outcome:vigil_circuit_breaker_calls:rate5m",
         "expr": rate("job, breaker, outcome", "vigil_circuit_breaker_calls_total")},
        {"record": "job_operation_outcome:vigil_retry_calls:rate5m",
         "expr": rate("job, operation, outcome", "vigil_retry_calls_total")},
        {"record": "job_operation:vigil_retry_attempts:rate5m",
         "expr": rate("job, operation", "vigil_retry_attempts_total")},
        {"record": "job_component_operation_le:vigil_trace_duration_seconds_bucket:rate5m",
         "expr": rate("job, component, operation, le", "vigil_trace_duration_seconds_bucket")},
    ]


# --- alerting rules ----------------------------------------------------------------------


def _alert(s: Settings, name: str, expr: str, severity: str, summary: str,
           description: str, for_: str = "") -> dict[str, Any]:
    assert severity in SEVERITIES, severity
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ and not _zero_duration(for_):
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": s.runbook_url.format(anchor=name.lower()),
    }
    return rule


def breaker_alerts(s: Settings) -> list[dict[str, Any]]:
    """The breaker alerts, right in one process and under prefork servers alike.

    Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` the state gauge is per worker (the
    ``liveall`` mode adds a ``pid`` label): ``count by`` the series with CLOSED at 0 is the
    number of workers whose breaker is not CLOSED (1 in a single process, no ``pid`` label).
    The alert's labels leave ``pid`` out, so ``for:`` measures how long at least one worker has
    been out of CLOSED without a break, whichever workers they are; a second worker opening
    changes the value, not the alert. The transitions counter is summed over the workers by
    prometheus_client, so one outage seen by N workers counts N trips: the flapping alert
    divides by the number of live workers (the state gauge's CLOSED series), trips per worker.
    """
    j = s.sel
    closed = f'vigil_circuit_breaker_state{{{j}, state="CLOSED"}}'
    not_closed = f"count by (job, instance, breaker) ({closed} == 0)"
    workers = f"count by (job, instance, breaker) ({closed})"

    def open_alert(severity: str, for_: str) -> dict[str, Any]:
        return _alert(
            s, "VigilCircuitBreakerOpen", not_closed, severity,
            "Circuit breaker {{ $labels.breaker }} is open",
            f"Breaker {{{{ $labels.breaker }}}} on {{{{ $labels.instance }}}} has been out of "
            f"CLOSED (OPEN, or HALF_OPEN probes that failed) in at least one worker for more "
            f"than {for_}; now in {{{{ $value | printf \"%.0f\" }}}} worker(s): calls there to "
            f"the service behind it are rejected or answered by its fallback.", for_)

    trips = f'vigil_circuit_breaker_transitions_total{{{j}, from_state="CLOSED", to_state="OPEN"}}'
    return [
        open_alert("warning", s.breaker_open_for),
        open_alert("critical", s.breaker_open_critical_for),
        _alert(
            s, "VigilCircuitBreakerFlapping",
            f"{_sum_events('job, instance, breaker', trips, s.breaker_flap_window)}\n"
            f"/ on (job, instance, breaker)\n"
            f"{workers}\n"
            f">= {s.breaker_flap_trips}",
            "warning",
            "Circuit breaker {{ $labels.breaker }} is flapping",
            f"Breaker {{{{ $labels.breaker }}}} on {{{{ $labels.instance }}}} tripped (CLOSED -> "
            f"OPEN) {{{{ $value | printf \"%.3g\" }}}} times per worker process in the last "
            f"{s.breaker_flap_window}: the service behind it recovers and fails again."),
    ]


def error_alerts(s: Settings) -> list[dict[str, Any]]:
    j = s.sel
    critical = f'vigil_errors_total{{{j}, severity="critical"}}'
    by_component = "job, instance, category, component"
    by_category = f"sum by (job, category) (job_category_severity:vigil_errors:rate5m{{{j}}})"

    def rate_alert(severity: str, threshold: float, for_: str) -> dict[str, Any]:
        return _alert(
            s, "VigilErrorRateHigh", f"{by_category} > {threshold:g}", severity,
            "High rate of {{ $labels.category }} errors in {{ $labels.job }}",
            f"{{{{ $labels.job }}}} handled {{{{ $value | printf \"%.2f\" }}}} "
            f"{{{{ $labels.category }}}} "
            f"errors per second over 5m, above {threshold:g}/s for {for_}.", for_)

    giveups = (
        f"sum by (job, operation) (job_operation_outcome:vigil_retry_calls:rate5m"
        f'{{{j}, outcome="failure_after_retry"}})\n'
        f"/\n"
        f"sum by (job, operation) (job_operation_outcome:vigil_retry_calls:rate5m{{{j}}})\n"
        f"> {s.retry_giveup_ratio:g}")
    limits = f'vigil_errors_total{{{j}, category="agent_execution", severity=~"high|critical"}}'
    files = (
        f"sum by (job) (job_category_severity:vigil_errors:rate5m"
        f'{{{j}, category="file_processing"}})\n'
        f"/\n"
        f"sum by (job) (job_function:vigil_function_calls:rate5m"
        f'{{{j}, function=~"{s.file_functions}"}})\n'
        f"> {s.file_failure_ratio:g}")
    return [
        _alert(
            s, "VigilCriticalError",
            f"{_sum_events(by_component, critical, s.critical_error_window)}\n> 0",
            "critical",
            "Critical error in {{ $labels.component }} ({{ $labels.category }})",
            f"{{{{ $labels.component }}}} handled {{{{ $value | printf \"%.0f\" }}}} critical "
            f"{{{{ $labels.category }}}} error(s) in the last {s.critical_error_window} on "
            f"{{{{ $labels.instance }}}}."),
        rate_alert("warning", s.error_rate_warning, s.error_rate_warning_for),
        rate_alert("critical", s.error_rate_critical, s.error_rate_critical_for),
        _alert(
            s, "VigilRetryGiveUps", giveups, "warning",
            "Retries of {{ $labels.operation }} are giving up",
            f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.operation }}}} in "
            f"{{{{ $labels.job }}}} failed after every retry (over 5m, above "
            f"{s.retry_giveup_ratio:.0%} for {s.retry_giveup_for}).", s.retry_giveup_for),
        _alert(
            s, "VigilAgentLimitHits",
            f"{_sum_events('job, instance, component', limits, s.agent_limit_window)}\n"
            f">= {s.agent_limit_hits}",
            "warning",
            "Agents in {{ $labels.component }} are being stopped at their limits",
            f"{{{{ $labels.component }}}} on {{{{ $labels.instance }}}} stopped "
            f"{{{{ $value | printf \"%.0f\" }}}} agent runs in the last {s.agent_limit_window} "
            f"(agent_execution errors at high or critical severity: step/resource limits and "
            f"runaway loops)."),
        _alert(
            s, "VigilFileProcessingFailureRatio", files, "warning",
            "Many files fail to process in {{ $labels.job }}",
            f"In {{{{ $labels.job }}}}, file_processing errors were "
            f"{{{{ $value | humanizePercentage }}}} of the calls to {s.file_functions} over 5m "
            f"(above {s.file_failure_ratio:.0%} for {s.file_failure_for}).", s.file_failure_for),
    ]


def process_alerts(s: Settings) -> list[dict[str, Any]]:
    j = s.sel
    return [
        _alert(
            s, "VigilProcessMemoryHigh",
            f"max by (job, instance) (vigil_process_memory_usage_ratio{{{j}}}) "
            f"> {s.memory_ratio:g}",
            "warning",
            "{{ $labels.job }} on {{ $labels.instance }} uses a lot of memory",
            f"The process's resident set is {{{{ $value | humanizePercentage }}}} of physical "
            f"memory, above {s.memory_ratio:.0%} for {s.memory_for}.", s.memory_for),
        _alert(
            s, "VigilProcessCPUHigh",
            f"max by (job, instance) "
            f"(avg_over_time(vigil_process_cpu_usage_cores{{{j}}}[{s.cpu_window}])) "
            f"> {s.cpu_cores:g}",
            "warning",
            "{{ $labels.job }} on {{ $labels.instance }} is busy",
            f"The process used {{{{ $value | printf \"%.2f\" }}}} CPU cores on average over "
            f"{s.cpu_window}, above {s.cpu_cores:g} for {s.cpu_for}.", s.cpu_for),
    ]


def exporter_alerts(s: Settings) -> list[dict[str, Any]]:
    j = s.sel
    w = s.webhook_failure_window
    failed_requests = f'vigil_webhook_requests_total{{{j}, code!~"2.."}}'
    handler_failures = f"vigil_alert_handler_failures_total{{{j}}}"
    dead_letters = f'vigil_webhook_deliveries_total{{{j}, outcome="dead_lettered"}}'
    return [
        _alert(
            s, "VigilExporterDown", f"up{{{j}}} == 0", "critical",
            "vigil exporter {{ $labels.instance }} is down",
            f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job "
            f"{{{{ $labels.job }}}}) for {s.target_down_for}: no metrics, and alerts sent to its "
            f"webhook cannot arrive.", s.target_down_for),
        _alert(
            s, "VigilExporterAbsent", f"absent(up{{{j}}})", "critical",
            f"No {s.job} target in Prometheus",
            f"Prometheus has had no target for job {s.job} for {s.target_absent_for}: "
            f"nothing of vigil is monitored.", s.target_absent_for),
        _alert(
            s, "VigilWebhookRequestsFailing",
            f"{_sum_events('job, instance, code', failed_requests, w)}"
            f"\n> 0",
            "warning",
            "The Alertmanager webhook of {{ $labels.instance }} answers {{ $labels.code }}",
            f"{{{{ $value | printf \"%.0f\" }}}} request(s) to the webhook on "
            f"{{{{ $labels.instance }}}} got HTTP {{{{ $labels.code }}}} in the last {w}: "
            f"notifications are rejected (401: credentials, 4xx: payload) or delayed (503)."),
        _alert(
            s, "VigilAlertHandlerFailures",
            f"{_sum_events('job, instance, handler, reason', handler_failures, w)}"
            f"\n> 0",
            "warning",
            "Alert handler {{ $labels.handler }} is failing ({{ $labels.reason }})",
            f"Handler {{{{ $labels.handler }}}} on {{{{ $labels.instance }}}} failed "
            f"{{{{ $value | printf \"%.0f\" }}}} time(s) in the last {w} with reason "
            f"{{{{ $labels.reason }}}} (error: raised, hung: past handler_timeout, dropped: "
            f"its queue was full): alerts did not reach it."),
        _alert(
            s, "VigilWebhookDeadLetters",
            f"{_sum_events('job, instance, handler', dead_letters, w)}"
            f"\n> 0",
            "warning",
            "Alerts from Alertmanager were dead-lettered for handler {{ $labels.handler }}",
            f"{{{{ $value | printf \"%.0f\" }}}} alert(s) received by the webhook on "
            f"{{{{ $labels.instance }}}} were given up for handler {{{{ $labels.handler }}}} "
            f"after its last allowed attempt in the last {w}; they are kept in the store "
            f"(GET /api/deliveries)."),
    ]


def trace_alerts(s: Settings) -> list[dict[str, Any]]:
    dropped = f"vigil_traces_dropped_total{{{s.sel}}}"
    w = s.trace_drop_window
    return [
        _alert(
            s, "VigilTracesDropped",
            f"{_sum_events('job, instance, reason', dropped, w)}\n> 0",
            "warning",
            "{{ $labels.instance }} is dropping spans ({{ $labels.reason }})",
            f"{{{{ $labels.instance }}}} dropped {{{{ $value | printf \"%.0f\" }}}} trace "
            f"entries in the last {w} with reason {{{{ $labels.reason }}}} (export_queue_full: "
            f"the OTLP collector is slower than the spans, or down; export_failed: it refused "
            f"or could not be reached; active_cap: spans started and never ended). The "
            f"application is not slowed; traces in the backend have gaps."),
    ]


def alert_groups(s: Settings) -> list[dict[str, Any]]:
    return [
        {"name": "vigil.breakers", "rules": breaker_alerts(s)},
        {"name": "vigil.errors", "rules": error_alerts(s)},
        {"name": "vigil.process", "rules": process_alerts(s)},
        {"name": "vigil.exporter", "rules": exporter_alerts(s)},
        {"name": "vigil.traces", "rules": trace_alerts(s)},
    ]


# --- Alertmanager and Prometheus ---------------------------------------------------------


def alertmanager_config(s: Settings) -> dict[str, Any]:
    webhook: dict[str, Any] = {"url": s.webhook_url, "send_resolved": True, "max_alerts": 100}
    if s.webhook_credentials_file:
        webhook["http_config"] = {"authorization": {
            "type": "Bearer", "credentials_file": s.webhook_credentials_file}}

    def receiver(name: str) -> dict[str, Any]:
        return {"name": name, "webhook_configs": [copy.deepcopy(webhook)]}  # no YAML anchors

    return {
        "route": {
            "receiver": "vigil",
            "group_by": ["alertname", "job", "breaker", "category"],
            "group_wait": s.group_wait,
            "group_interval": s.group_interval,
            "repeat_interval": s.repeat_interval,
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "vigil-critical",
                 "group_wait": s.critical_group_wait,
                 "group_interval": s.critical_group_interval,
                 "repeat_interval": s.critical_repeat_interval},
                {"matchers": ['severity="warning"'], "receiver": "vigil-warning"},
                {"matchers": ['severity="info"'], "receiver": "vigil-info",
                 "repeat_interval": s.info_repeat_interval},
            ],
        },
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'],
             "target_matchers": ['severity="warning"'],
             "equal": ["alertname", "job", "instance", "breaker", "category"]},
        ],
        "receivers": [receiver(name) for name in
                      ("vigil", "vigil-critical", "vigil-warning", "vigil-info")],
    }


def prometheus_config(s: Settings) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": s.scrape_interval,
                   "evaluation_interval": s.evaluation_interval},
        "rule_files": ["*.rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [s.alertmanager_target]}]}]},
        "scrape_configs": [{"job_name": s.job,
                            "static_configs": [{"targets": [s.app_target]}]}],
    }


def production_prometheus_config(s: Settings, replica: str) -> dict[str, Any]:
    """Replica ``replica`` of the HA pair: ``prometheus.yml`` plus the replica label, every
    Alertmanager peer and ``remote_write``; the replica label dropped from alerts and writes."""
    drop_replica = [{"action": "labeldrop", "regex": s.replica_label}]
    base = prometheus_config(s)
    return {
        "global": {**base["global"], "external_labels": {s.replica_label: replica}},
        "rule_files": ["../*.rules.yml"],  # relative to this file: alerts/*.rules.yml
        "alerting": {
            "alert_relabel_configs": copy.deepcopy(drop_replica),
            "alertmanagers": [{"static_configs": [{"targets": s.peers}]}],
        },
        "remote_write": [{"url": s.remote_write_url,
                          "write_relabel_configs": copy.deepcopy(drop_replica)}],
        "scrape_configs": base["scrape_configs"],
    }


def _peer_host(peer: str) -> str:
    return peer.rsplit(":", 1)[0]


def _production_prometheus_about(s: Settings, replica: str) -> str:
    others = ", ".join(production_prometheus_file(r).split("/")[-1]
                       for r in s.replica_names if r != replica)
    vm = s.remote_write_url.split("://", 1)[-1].split("/", 1)[0]
    vm_port = vm.rsplit(":", 1)[-1] if ":" in vm else "8428"
    return (
        f"# Prometheus HA pair, replica {replica} ({others}: the same but for the replica "
        f"label).\n"
        f"# Each replica scrapes the same targets and evaluates the same rules (mount alerts/ "
        f"whole:\n# rule_files is ../*.rules.yml), and sends every alert to all "
        f"{len(s.peers)} Alertmanager peers\n# (never through a load balancer: the cluster "
        f"de-duplicates the notifications). The\n# {s.replica_label} label is dropped from "
        f"alerts, so the peers hold one alert whichever replica\n# is up, and from "
        f"remote_write, so both replicas write the same series, which\n# VictoriaMetrics "
        f"keeps once (-dedup.minScrapeInterval = the scrape interval). Run:\n"
        f"#   prometheus --config.file=alerts/{production_prometheus_file(replica)} "
        f"--storage.tsdb.path=/var/lib/prometheus\n"
        f"#   victoria-metrics -httpListenAddr=:{vm_port} "
        f"-storageDataPath=/var/lib/victoria-metrics \\\n"
        f"#     -retentionPeriod=1y -dedup.minScrapeInterval={s.scrape_interval}\n"
        f"# Grafana: dashboards/provisioning/victoriametrics/ (the datasource, on "
        f"VictoriaMetrics).\n")


def _production_alertmanager_about(s: Settings) -> str:
    port = s.alertmanager_cluster_port
    lines = [
        f"# Alertmanager cluster: this same file on each of the {len(s.peers)} peers. They "
        f"gossip on port {port}\n# so that each notification is sent once (by the first "
        f"peer, the others only if it did not);\n# every Prometheus replica sends to all of "
        f"them. The routes and receivers are those of\n# alerts/alertmanager.yml. On each "
        f"peer (the gossip port must be reachable from the others\n# only: keep it off the "
        f"internet):",
    ]
    for peer in s.peers:
        host = _peer_host(peer)
        web = peer.rsplit(":", 1)[1]
        flags = " ".join(f"--cluster.peer={_peer_host(other)}:{port}"
                         for other in s.peers if other != peer)
        lines.append(
            f"#   {host}: prometheus-alertmanager "
            f"--config.file=alerts/{PRODUCTION_ALERTMANAGER_FILE} \\\n"
            f"#     --storage.path=/var/lib/alertmanager --web.listen-address=:{web} \\\n"
            f"#     --cluster.listen-address=0.0.0.0:{port} "
            f"--cluster.advertise-address={host}:{port} \\\n"
            f"#     {flags}")
    return "\n".join(lines) + "\n"


# --- rendering ---------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_HEADER = """\
# Generated by alerts/build.py from its Settings: edit build.py, then run
# `python alerts/build.py`; tests/integration/test_rules.py fails when they disagree.
"""
_ABOUT: Mapping[str, str] = {
    RULES_FILE: "# vigil's alerting rules. Each alert's runbook section is in alerts/runbook.md.\n",
    RECORDING_FILE: "# vigil's recording rules (level:metric:operations). The names are a "
                    "contract:\n# dashboards/ queries them; keep them.\n",
    ALERTMANAGER_FILE:
        "# Alertmanager: every alert goes back to the vigil webhook receiver, which turns it "
        "into\n# a vigil alert (source=\"alertmanager\") for the application's handlers. "
        "Routed by the\n# severity label (one receiver per severity, all the same webhook "
        "until you point one\n# elsewhere); a critical alert inhibits the warning of the same "
        "alert and labels.\n# docker-compose mounts it as it is, with the webhook's bearer token "
        "in the secret file\n# /run/secrets/vigil-token (webhook_credentials_file in build.py; "
        "the app reads the\n# same file); stack.py replaces the URL and the webhook's "
        "credentials with its own.\n",
    PROMETHEUS_FILE:
        "# Prometheus: scrape the app's exporter, load vigil's rules, send alerts to "
        "Alertmanager.\n# docker-compose mounts it as it is; `vigil demo` "
        "(exporter/vigil_exporter/stack.py) loads it\n# and replaces the addresses with "
        "the loopback ports it picked (and the intervals).\n",
}


def _dump(about: str, data: Any) -> str:
    # No folding: a PromQL expression or an annotation stays on one line unless it has several.
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1 << 16, allow_unicode=True)
    return _HEADER + about + body


def render(s: Settings) -> dict[str, str]:
    """Path (relative to alerts/) -> text, for every generated file of alerts/."""
    builders: dict[str, Callable[[], Any]] = {
        RULES_FILE: lambda: {"groups": alert_groups(s)},
        RECORDING_FILE: lambda: {"groups": [
            {"name": "vigil.recording", "rules": recording_rules(s)}]},
        ALERTMANAGER_FILE: lambda: alertmanager_config(s),
        PROMETHEUS_FILE: lambda: prometheus_config(s),
    }
    files = {name: _dump(_ABOUT[name], build()) for name, build in builders.items()}
    for replica in s.replica_names:
        files[production_prometheus_file(replica)] = _dump(
            _production_prometheus_about(s, replica), production_prometheus_config(s, replica))
    files[PRODUCTION_ALERTMANAGER_FILE] = _dump(_production_alertmanager_about(s),
                                                alertmanager_config(s))
    return files


def _strays(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Files of ``out/production/`` that no longer come out of build.py (a renamed replica)."""
    folder = out / PRODUCTION_DIR
    if not folder.is_dir():
        return []
    return [path for path in sorted(folder.glob("*.yml"))
            if f"{PRODUCTION_DIR}/{path.name}" not in files]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder to write (default: alerts/ itself)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a Settings value (needs --out)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in the folder are stale")
    args = parser.parse_args(argv)
    if args.overrides and args.out is None:
        parser.error("--set needs --out: the committed files hold the shipped settings")
    try:
        settings = with_overrides(Settings(), args.overrides)
    except ValueError as err:
        parser.error(str(err))
    out: Path = args.out if args.out is not None else ALERTS_DIR
    files = render(settings)
    if args.check:
        stale = [name for name, text in files.items()
                 if not (out / name).is_file() or (out / name).read_text("utf-8") != text]
        for name in stale:
            print(f"stale: {out / name} (run python alerts/build.py)", file=sys.stderr)
        strays = _strays(out, files)
        for path in strays:
            print(f"stray: {path} is not generated any more (run python alerts/build.py)",
                  file=sys.stderr)
        return 1 if stale or strays else 0
    for path in _strays(out, files):
        path.unlink()
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
