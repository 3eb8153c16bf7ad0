#!/usr/bin/env python3
"""vigil's alerting as code: rules, Alertmanager and Prometheus configs from one ``Settings``.

A mixin in kubernetes-mixin's ``_config`` style: every threshold, window, ``for:`` duration,
the **selector** (the PromQL label matchers that pick vigil's targets, ``job="vigil"`` by
default; any matchers, e.g. ``job=~"api|worker"`` or ``namespace="shop", job="api"``), the
runbook's base URL and the addresses live in :class:`Settings` below; :func:`render` turns
them into these files of ``alerts/``:

======================================  ===================================================
``vigil.rules.yml``                     the alerting rules (the general set: for any app)
``vigil.recording.rules.yml``           the recording rules (the dashboards query them too)
``demo.rules.yml``                      the demo's own alerts (agent limits, the files of
                                        ``ingest_file``): only ``prometheus.yml`` loads it
``alertmanager.yml``                    routes by severity, grouping, inhibition, receivers
                                        (the app's webhook; a person on call, commented
                                        out until ``oncall_email`` is set)
``prometheus.yml``                      the demo's Prometheus (``vigil demo``,
                                        docker-compose): scrape the app, load the three
                                        rule files, send alerts
``production/prometheus-a.yml``         replica ``a`` of a Prometheus HA pair:
                                        ``external_labels: {replica: a}``, alerts to every
                                        peer of the Alertmanager cluster, ``remote_write``
                                        to VictoriaMetrics, the general rule files only
``production/prometheus-b.yml``         replica ``b``: the same but for the replica label
``production/alertmanager.yml``         the one file all three Alertmanager peers load (the
                                        same routes as ``alertmanager.yml``); its header
                                        gives each peer's ``--cluster.*`` command line
======================================  ===================================================

What a user's own Prometheus takes is :data:`RULE_FILES` (``vigil.rules.yml`` and
``vigil.recording.rules.yml``) rendered for their selector, e.g.
``render(Settings.from_overrides({"job": "myapp"}))``; ``runbook_base`` must then point at a
copy of ``runbook.md`` they can open (the default is a placeholder repository URL).

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
    python alerts/build.py --out DIR --set job=myapp --set runbook_base=https://wiki/vigil

``--set`` writes a variant with other values (the end-to-end tests use fast timings this way);
it needs ``--out``, so the committed files always hold the shipped, production values. From
Python: :func:`render` (file name -> text) and :meth:`Settings.from_overrides` (string values,
as a command line gives them). This module needs only PyYAML and the standard library.
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
DEMO_RULES_FILE = "demo.rules.yml"
# The general set: what a user's own Prometheus loads (rendered for their selector).
RULE_FILES = (RULES_FILE, RECORDING_FILE)
ALERTMANAGER_FILE = "alertmanager.yml"
PROMETHEUS_FILE = "prometheus.yml"
PRODUCTION_DIR = "production"
PRODUCTION_ALERTMANAGER_FILE = f"{PRODUCTION_DIR}/alertmanager.yml"
SEVERITIES = ("critical", "warning", "info")
ONCALL_RECEIVER = "oncall"

_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_DURATION_SUFFIXES = ("_for", "_window", "_wait", "_interval")
_RATIOS = ("retry_giveup_ratio", "file_failure_ratio", "memory_ratio")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_REPLICA = re.compile(r"[a-z0-9][a-z0-9_-]*")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]+")
_EMAIL = re.compile(r"[^@\s\"]+@[A-Za-z0-9.-]+")
_URL = re.compile(r"https?://[^\s#\"]+")
# One PromQL label matcher: name, operator, double-quoted value (escapes allowed).
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\\n]|\\.)*)"\s*')
_LITERAL_JOB = re.compile(r"[A-Za-z0-9_:-]+")  # a job name with no regex metacharacters
_JOB_NAME = re.compile(r"[^\s\"\\]+")  # what the job= shorthand takes
_SELECTOR_HELP = ('expected PromQL label matchers without braces, such as job="vigil", '
                  'job=~"api|worker" or namespace="shop", job="api"')


class SettingsError(ValueError):
    """A setting that does not exist or has a value it cannot take; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


Matcher = tuple[str, str, str]  # (label, operator, value as written, escapes undone)


def _unescape(value: str) -> str:
    """A PromQL double-quoted string's content with its escapes undone (\\" \\\\ \\n \\t)."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), value)


def parse_selector(text: str) -> list[Matcher]:
    """PromQL label matchers written without braces (``job="vigil", namespace=~"a|b"``).

    Raises :class:`SettingsError` (key ``selector``) when ``text`` is not such a list, when a
    regex does not compile, or when it matches on ``__name__`` or another reserved label.
    """
    matchers: list[Matcher] = []
    pos = 0
    while True:
        match = _MATCHER.match(text, pos)
        if match is None:
            raise SettingsError("selector", f"got {text!r}; {_SELECTOR_HELP}")
        label, op, value = match[1], match[2], _unescape(match[3])
        if label.startswith("__"):
            raise SettingsError("selector", f"got {text!r}; {label} is reserved: match on "
                                "target labels (job, namespace, ...)")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as err:
                raise SettingsError("selector", f"got {text!r}; the regex {value!r} of "
                                    f"{label}{op} does not compile: {err}") from None
        matchers.append((label, op, value))
        pos = match.end()
        if pos == len(text) or (text[pos] == "," and not text[pos + 1:].strip()):
            return matchers  # PromQL allows one trailing comma
        if text[pos] != ",":
            raise SettingsError("selector", f"got {text!r}; {_SELECTOR_HELP}")
        pos += 1


def _matches(matchers: Sequence[Matcher], label: str, value: str) -> bool:
    """Whether ``value`` of ``label`` passes every matcher on that label (regexes anchored)."""
    for name, op, pattern in matchers:
        if name != label:
            continue
        ok = {"=": value == pattern, "!=": value != pattern,
              "=~": re.fullmatch(pattern, value) is not None,
              "!~": re.fullmatch(pattern, value) is None}[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Settings:
    """The one place for vigil's alerting values. Durations are Prometheus durations.

    Build one from strings with :meth:`from_overrides` (what a command line gives); every
    value is checked here, and an error names the setting, the value and what is allowed.
    """

    # --- which targets are vigil's (the mixin's one selector) and where things are
    # PromQL label matchers (no braces) used by every alerting and recording rule; the
    # dashboards' $job variable defaults to the job(s) it names. job="<name>" for one job,
    # job=~"a|b" for several, other target labels too (namespace="shop", job="api"): those
    # are kept in every aggregation, so alerts carry them and the recording rules keep them.
    selector: str = 'job="vigil"'
    # The job_name prometheus.yml (and production/) scrape the app as. Empty: the one job the
    # selector names (job="vigil" -> vigil); needed when it names several or none.
    scrape_job: str = ""
    app_target: str = "app:9464"
    alertmanager_target: str = "alertmanager:9093"
    webhook_url: str = "http://app:9464/alertmanager/webhook"
    # A file holding the token the webhook requires (the app's exporter.webhook_bearer_token;
    # a relative path is relative to alertmanager.yml's folder). docker-compose mounts its
    # secret vigil-token there, and the app reads the same file
    # (VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE). Empty: no Authorization header.
    webhook_credentials_file: str = "/run/secrets/vigil-token"
    # Where runbook.md is published: each alert's runbook_url is <runbook_base>#<alert name in
    # lowercase> (an absolute URL, so that links in notifications open). The default is a
    # placeholder: set it to your copy (a repository, a wiki page).
    runbook_base: str = "https://github.com/vigil-monitoring/vigil/blob/main/alerts/runbook.md"
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

    # --- the demo's own alerts (demo.rules.yml): the agent-studio demo's domain
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

    # --- a person on call: critical alerts also go by email to oncall_email (the app's
    # webhook keeps receiving them). Empty: alertmanager.yml shows the receiver commented out.
    oncall_email: str = ""
    oncall_email_from: str = "alertmanager@example.com"
    oncall_smarthost: str = "smtp.example.com:587"

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
                raise SettingsError(field.name, f"got {value!r}; expected a Prometheus "
                                    "duration such as 30s, 5m or 1h30m")
            if isinstance(value, int | float) and value <= 0:
                raise SettingsError(field.name, f"got {value!r}; must be greater than 0")
            if isinstance(value, str) and "\n" in value:
                raise SettingsError(field.name, f"got {value!r}; must be one line")
            if isinstance(value, str) and '"' in value and field.name != "selector":
                raise SettingsError(field.name, f"got {value!r}; must not contain '\"'")
        for name in _RATIOS:
            if getattr(self, name) > 1:
                raise SettingsError(name, f"got {getattr(self, name)!r}; must be in (0, 1]")
        matchers = parse_selector(self.selector)
        if self.scrape_job:
            if not _matches(matchers, "job", self.scrape_job):
                raise SettingsError("scrape_job", f"got {self.scrape_job!r}; the selector "
                                    f"{self.selector} does not select that job")
        elif len(self.jobs) != 1:
            raise SettingsError("scrape_job", f"the selector {self.selector} names no single "
                                'job (job="<name>"): set scrape_job to the job name '
                                "prometheus.yml scrapes the app as")
        if not _URL.fullmatch(self.runbook_base):
            raise SettingsError("runbook_base", f"got {self.runbook_base!r}; expected an "
                                "absolute http:// or https:// URL without a #fragment (each "
                                "alert adds #<its name in lowercase>)")
        for name in ("oncall_email", "oncall_email_from"):
            value = getattr(self, name)
            if (value or name != "oncall_email") and not _EMAIL.fullmatch(value):
                raise SettingsError(name, f"got {value!r}; expected an email address such "
                                    "as oncall@example.com" + (" (or empty: no email)"
                                                               if name == "oncall_email" else ""))
        if not _HOST_PORT.fullmatch(self.oncall_smarthost):
            raise SettingsError("oncall_smarthost", f"got {self.oncall_smarthost!r}; expected "
                                "the SMTP server as host:port, such as smtp.example.com:587")
        if not _LABEL_NAME.fullmatch(self.replica_label):
            raise SettingsError("replica_label", f"got {self.replica_label!r}; expected a "
                                "Prometheus label name")
        names = self.replica_names
        if len(names) < 2 or len(set(names)) != len(names) \
                or not all(_REPLICA.fullmatch(n) for n in names):
            raise SettingsError("replicas", f"got {self.replicas!r}; expected two or more "
                                "distinct names (a-z, 0-9, _ and -) separated by commas, "
                                "such as a,b")
        peers = self.peers
        if not peers or not all(_HOST_PORT.fullmatch(p) for p in peers):
            raise SettingsError("alertmanager_peers", f"got {self.alertmanager_peers!r}; "
                                "expected host:port addresses separated by commas")
        if self.alertmanager_cluster_port > 65535:
            raise SettingsError("alertmanager_cluster_port", f"got "
                                f"{self.alertmanager_cluster_port}; must be a TCP port "
                                "(1-65535)")
        if not self.remote_write_url.startswith(("http://", "https://")):
            raise SettingsError("remote_write_url", f"got {self.remote_write_url!r}; "
                                "expected an http:// or https:// URL")

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names, plus ``job`` (a short way to set ``selector``)."""
        return ["job", *(field.name for field in dataclasses.fields(cls))]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, str], *,
                       base: Settings | None = None) -> Settings:
        """``base`` (the shipped defaults) with ``overrides`` applied: name -> value as text.

        Each value is parsed as its setting's type (int, float or text). ``job`` is a short
        way to set ``selector``: ``{"job": "myapp"}`` is ``{"selector": 'job="myapp"'}``.
        Raises :class:`SettingsError` (a ``ValueError``) naming the key, the value and what
        is allowed: for a name that is no setting (with the closest one and the list), a
        value of the wrong type, or a value the setting cannot take.
        """
        base = base if base is not None else cls()
        known = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(base)}
        changes: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key == "job":
                if "selector" in overrides:
                    raise SettingsError("job", f"got {raw!r} and selector "
                                        f"{overrides['selector']!r}; set one of them")
                if not _JOB_NAME.fullmatch(raw):
                    raise SettingsError("job", f"got {raw!r}; expected one job name (no "
                                        "spaces, quotes or backslashes); for several jobs or "
                                        'other labels set selector, e.g. job=~"api|worker"')
                changes["selector"] = f'job="{raw}"'
                continue
            if key not in known:
                close = difflib.get_close_matches(key, cls.names(), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SettingsError(key, f"no such setting{hint} (got the value {raw!r}; the "
                                    f"settings are {', '.join(cls.names())})")
            kind = known[key]
            try:
                changes[key] = kind(raw.strip()) if kind is not str else raw
            except ValueError:
                example = {"int": "a whole number such as 3",
                           "float": "a number such as 0.25"}.get(kind.__name__, "")
                raise SettingsError(key, f"got {raw!r}; expected {kind.__name__} "
                                    f"({example})") from None
        return dataclasses.replace(base, **changes)

    @property
    def matchers(self) -> list[Matcher]:
        """The selector's label matchers, parsed."""
        return parse_selector(self.selector)

    @property
    def jobs(self) -> tuple[str, ...]:
        """The job names the selector names: ``job="a"`` -> (a,), ``job=~"a|b"`` -> (a, b);
        () when it names none (no job matcher, or a regex that is not a list of names)."""
        for label, op, value in self.matchers:
            if label == "job" and op == "=":
                return (value,)
            if label == "job" and op == "=~":
                names = tuple(value.split("|"))
                if all(_LITERAL_JOB.fullmatch(name) for name in names):
                    return names
        return ()

    @property
    def job(self) -> str:
        """The one job name the app is scraped as: ``scrape_job``, or the selector's job."""
        return self.scrape_job or self.jobs[0]

    @property
    def extra_labels(self) -> list[str]:
        """The labels the selector matches on besides job and instance (namespace, ...)."""
        extra: list[str] = []
        for label, _, _ in self.matchers:
            if label not in ("job", "instance", *extra):
                extra.append(label)
        return extra

    def by(self, *labels: str) -> str:
        """A ``by``/``on`` label list: :attr:`extra_labels` first, so that aggregations keep
        them (alerts carry them, recording rules keep them for the selector), then ``labels``."""
        return ", ".join([*(e for e in self.extra_labels if e not in labels), *labels])

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
    """``settings`` with ``key=value`` pairs applied (``--set``; a later pair wins)."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair!r}: expected key=value")
        overrides[key.strip()] = raw
    try:
        return Settings.from_overrides(overrides, base=settings)
    except SettingsError as err:
        raise ValueError(f"--set {err}") from None


# --- PromQL helpers ----------------------------------------------------------------------


def _events(s: Settings, series: str, window: str) -> str:
    """Counter increments within ``window``, per series, never a counter's first appearance.

    ``increase()`` alone needs two samples of a series: prometheus_client creates a labelled
    child on first use, so a series born with its first event (the first critical error, the
    first trip) would go unseen until a second one. Counting a series' whole value when it
    was absent ``window`` ago (``x unless x offset w``) sees that event, but also fires for a
    counter Prometheus merely sees for the first time (a new Prometheus, one restarted without
    its storage, a target added later: flat at 7 from the start is not 7 new events).

    So a series absent ``window`` ago counts its whole value only if it was born *after* its
    target was first scraped: Prometheus scraped the target successfully
    (``sum_over_time(up)``, up being 1 or 0) more often within the window than it has samples
    of the series, i.e. the series was missing from a successful scrape and then appeared. A
    series present from the target's first scrape (or every scrape since) is counted by
    ``increase()`` only: what it did before Prometheus saw it is unknown, and its first
    increment is counted once a second sample shows it. Failed scrapes (up 0, the series
    stale) do not make a series look new. Matching is on the target's labels (job, instance
    and the selector's others); ``max by`` keeps one ``up`` per target so that the match never
    fails on duplicates.
    """
    up = f"up{{{s.selector}}}"
    target = s.by("job", "instance")
    return (f"(\n"
            f"  ({series} unless {series} offset {window})\n"
            f"  and\n"
            f"  (count_over_time({series}[{window}])"
            f" < on ({target}) group_left () max by ({target}) (sum_over_time({up}[{window}])))\n"
            f")\n"
            f"or\n"
            f"increase({series}[{window}])")


def _sum_events(s: Settings, by: str, series: str, window: str) -> str:
    inner = _events(s, series, window).replace("\n", "\n  ")
    return f"sum by ({by}) (\n  {inner}\n)"


def _zero_duration(value: str) -> bool:
    return all(c in "0" for c in re.sub(r"[a-z]", "", value))


# --- recording rules ---------------------------------------------------------------------

# Record name -> (labels kept besides job and instance, function, metric). The names are a
# contract with dashboards/ (dashboards/queries.py: RECORDING_RULES); level:metric:operation,
# the level listing the labels kept. job and instance are kept so that the dashboards' $job
# and $instance filter them like the raw metrics; the selector's other labels are kept too.
RECORDING_RULES: Mapping[str, tuple[tuple[str, ...], str, str]] = {
    "job_instance_category_severity:vigil_errors:rate5m":
        (("category", "severity"), "rate", "vigil_errors_total"),
    "job_instance_function:vigil_function_calls:rate5m":
        (("function",), "rate", "vigil_function_calls_total"),
    "job_instance_function:vigil_function_errors:rate5m":
        (("function",), "rate", "vigil_function_errors_total"),
    "job_instance_function_le:vigil_function_duration_seconds_bucket:rate5m":
        (("function", "le"), "rate", "vigil_function_duration_seconds_bucket"),
    "job_instance_breaker:vigil_circuit_breaker_transitions:increase5m":
        (("breaker",), "increase", "vigil_circuit_breaker_transitions_total"),
    "job_instance_breaker_outcome:vigil_circuit_breaker_calls:rate5m":
        (("breaker", "outcome"), "rate", "vigil_circuit_breaker_calls_total"),
    "job_instance_operation_outcome:vigil_retry_calls:rate5m":
        (("operation", "outcome"), "rate", "vigil_retry_calls_total"),
    "job_instance_operation:vigil_retry_attempts:rate5m":
        (("operation",), "rate", "vigil_retry_attempts_total"),
    "job_instance_component_operation_le:vigil_trace_duration_seconds_bucket:rate5m":
        (("component", "operation", "le"), "rate", "vigil_trace_duration_seconds_bucket"),
}
ERRORS_RATE = "job_instance_category_severity:vigil_errors:rate5m"
FUNCTION_CALLS_RATE = "job_instance_function:vigil_function_calls:rate5m"
RETRY_CALLS_RATE = "job_instance_operation_outcome:vigil_retry_calls:rate5m"


def recording_rules(s: Settings) -> list[dict[str, Any]]:
    """The recorded series, 5-minute rates (increases) of vigil's counters per target."""
    return [{"record": name,
             "expr": f"sum by ({s.by('job', 'instance', *labels)}) "
                     f"({function}({metric}{{{s.selector}}}[5m]))"}
            for name, (labels, function, metric) in RECORDING_RULES.items()]


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
        "runbook_url": runbook_url(s, name),
    }
    return rule


def runbook_url(s: Settings, alert: str) -> str:
    """The absolute link to ``alert``'s section of runbook.md."""
    return f"{s.runbook_base}#{alert.lower()}"


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
    j = s.selector
    per_breaker = s.by("job", "instance", "breaker")
    closed = f'vigil_circuit_breaker_state{{{j}, state="CLOSED"}}'
    # Out of CLOSED but letting every call through (set by hand): not an outage.
    passing = f'vigil_circuit_breaker_state{{{j}, state=~"DISABLED|METRICS_ONLY"}}'
    not_closed = (f"count by ({per_breaker}) "
                  f"(({closed} == 0) unless ignoring (state) ({passing} == 1))")
    workers = f"count by ({per_breaker}) ({closed})"

    def open_alert(severity: str, for_: str) -> dict[str, Any]:
        return _alert(
            s, "VigilCircuitBreakerOpen", not_closed, severity,
            "Circuit breaker {{ $labels.breaker }} is open",
            f"Breaker {{{{ $labels.breaker }}}} on {{{{ $labels.instance }}}} has been rejecting "
            f"calls (OPEN, HALF_OPEN probes that failed, or FORCED_OPEN by hand) in at least one "
            f"worker for more "
            f"than {for_}; now in {{{{ $value | printf \"%.0f\" }}}} worker(s): calls there to "
            f"the service behind it are rejected or answered by its fallback.", for_)

    trips = f'vigil_circuit_breaker_transitions_total{{{j}, from_state="CLOSED", to_state="OPEN"}}'
    return [
        open_alert("warning", s.breaker_open_for),
        open_alert("critical", s.breaker_open_critical_for),
        _alert(
            s, "VigilCircuitBreakerFlapping",
            f"{_sum_events(s, per_breaker, trips, s.breaker_flap_window)}\n"
            f"/ on ({per_breaker})\n"
            f"{workers}\n"
            f">= {s.breaker_flap_trips}",
            "warning",
            "Circuit breaker {{ $labels.breaker }} is flapping",
            f"Breaker {{{{ $labels.breaker }}}} on {{{{ $labels.instance }}}} tripped (CLOSED -> "
            f"OPEN) {{{{ $value | printf \"%.3g\" }}}} times per worker process in the last "
            f"{s.breaker_flap_window}: the service behind it recovers and fails again."),
    ]


def error_alerts(s: Settings) -> list[dict[str, Any]]:
    j = s.selector
    critical = f'vigil_errors_total{{{j}, severity="critical"}}'
    by_component = s.by("job", "instance", "category", "component")
    by_category = f"sum by ({s.by('job', 'category')}) ({ERRORS_RATE}{{{j}}})"

    def rate_alert(severity: str, threshold: float, for_: str) -> dict[str, Any]:
        return _alert(
            s, "VigilErrorRateHigh", f"{by_category} > {threshold:g}", severity,
            "High rate of {{ $labels.category }} errors in {{ $labels.job }}",
            f"{{{{ $labels.job }}}} handled {{{{ $value | printf \"%.2f\" }}}} "
            f"{{{{ $labels.category }}}} "
            f"errors per second over 5m, above {threshold:g}/s for {for_}.", for_)

    per_operation = s.by("job", "operation")
    giveups = (
        f"sum by ({per_operation}) ({RETRY_CALLS_RATE}"
        f'{{{j}, outcome="failure_after_retry"}})\n'
        f"/\n"
        f"sum by ({per_operation}) ({RETRY_CALLS_RATE}{{{j}}})\n"
        f"> {s.retry_giveup_ratio:g}")
    return [
        _alert(
            s, "VigilCriticalError",
            f"{_sum_events(s, by_component, critical, s.critical_error_window)}\n> 0",
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
    ]


def demo_alerts(s: Settings) -> list[dict[str, Any]]:
    """The agent-studio demo's own alerts (demo.rules.yml): its agents and its files.

    They fit the demo's domain (agent runs stopped at their limits, the share of files that
    ``ingest_file`` fails on), not every application, so the general set leaves them out;
    ``prometheus.yml`` (``vigil demo``, docker-compose) loads them beside it.
    """
    j = s.selector
    limits = f'vigil_errors_total{{{j}, category="agent_execution", severity=~"high|critical"}}'
    per_job = s.by("job")
    files = (
        f"sum by ({per_job}) ({ERRORS_RATE}"
        f'{{{j}, category="file_processing"}})\n'
        f"/\n"
        f"sum by ({per_job}) ({FUNCTION_CALLS_RATE}"
        f'{{{j}, function=~"{s.file_functions}"}})\n'
        f"> {s.file_failure_ratio:g}")
    return [
        _alert(
            s, "VigilAgentLimitHits",
            f"{_sum_events(s, s.by('job', 'instance', 'component'), limits, s.agent_limit_window)}"
            f"\n>= {s.agent_limit_hits}",
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
    j = s.selector
    per_target = s.by("job", "instance")
    return [
        _alert(
            s, "VigilProcessMemoryHigh",
            f"max by ({per_target}) (vigil_process_memory_usage_ratio{{{j}}}) "
            f"> {s.memory_ratio:g}",
            "warning",
            "{{ $labels.job }} on {{ $labels.instance }} uses a lot of memory",
            f"The process's resident set is {{{{ $value | humanizePercentage }}}} of physical "
            f"memory, above {s.memory_ratio:.0%} for {s.memory_for}.", s.memory_for),
        _alert(
            s, "VigilProcessCPUHigh",
            f"max by ({per_target}) "
            f"(avg_over_time(vigil_process_cpu_usage_cores{{{j}}}[{s.cpu_window}])) "
            f"> {s.cpu_cores:g}",
            "warning",
            "{{ $labels.job }} on {{ $labels.instance }} is busy",
            f"The process used {{{{ $value | printf \"%.2f\" }}}} CPU cores on average over "
            f"{s.cpu_window}, above {s.cpu_cores:g} for {s.cpu_for}.", s.cpu_for),
    ]


def exporter_alerts(s: Settings) -> list[dict[str, Any]]:
    j = s.selector
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
            f"No target matching {j} in Prometheus",
            f"Prometheus has had no target matching {j} for {s.target_absent_for}: nothing "
            f"of vigil is monitored (or the rules' selector is not the application's job).",
            s.target_absent_for),
        _alert(
            s, "VigilWebhookRequestsFailing",
            f"{_sum_events(s, s.by('job', 'instance', 'code'), failed_requests, w)}"
            f"\n> 0",
            "warning",
            "The Alertmanager webhook of {{ $labels.instance }} answers {{ $labels.code }}",
            f"{{{{ $value | printf \"%.0f\" }}}} request(s) to the webhook on "
            f"{{{{ $labels.instance }}}} got HTTP {{{{ $labels.code }}}} in the last {w}: "
            f"notifications are rejected (401: credentials, 4xx: payload) or delayed (503)."),
        _alert(
            s, "VigilAlertHandlerFailures",
            f"{_sum_events(s, s.by('job', 'instance', 'handler', 'reason'), handler_failures, w)}"
            f"\n> 0",
            "warning",
            "Alert handler {{ $labels.handler }} is failing ({{ $labels.reason }})",
            f"Handler {{{{ $labels.handler }}}} on {{{{ $labels.instance }}}} failed "
            f"{{{{ $value | printf \"%.0f\" }}}} time(s) in the last {w} with reason "
            f"{{{{ $labels.reason }}}} (error: raised, hung: past handler_timeout, dropped: "
            f"its queue was full): alerts did not reach it."),
        _alert(
            s, "VigilWebhookDeadLetters",
            f"{_sum_events(s, s.by('job', 'instance', 'handler'), dead_letters, w)}"
            f"\n> 0",
            "warning",
            "Alerts from Alertmanager were dead-lettered for handler {{ $labels.handler }}",
            f"{{{{ $value | printf \"%.0f\" }}}} alert(s) received by the webhook on "
            f"{{{{ $labels.instance }}}} were given up for handler {{{{ $labels.handler }}}} "
            f"after its last allowed attempt in the last {w}; they are kept in the store "
            f"(GET /api/deliveries)."),
    ]


def trace_alerts(s: Settings) -> list[dict[str, Any]]:
    dropped = f"vigil_traces_dropped_total{{{s.selector}}}"
    w = s.trace_drop_window
    return [
        _alert(
            s, "VigilTracesDropped",
            f"{_sum_events(s, s.by('job', 'instance', 'reason'), dropped, w)}\n> 0",
            "warning",
            "{{ $labels.instance }} is dropping spans ({{ $labels.reason }})",
            f"{{{{ $labels.instance }}}} dropped {{{{ $value | printf \"%.0f\" }}}} trace "
            f"entries in the last {w} with reason {{{{ $labels.reason }}}} (export_queue_full: "
            f"the OTLP collector is slower than the spans, or down; export_failed: it refused "
            f"or could not be reached; active_cap: spans started and never ended). The "
            f"application is not slowed; traces in the backend have gaps."),
    ]


def alert_groups(s: Settings) -> list[dict[str, Any]]:
    """The general set (vigil.rules.yml): alerts that fit any application using vigil."""
    return [
        {"name": "vigil.breakers", "rules": breaker_alerts(s)},
        {"name": "vigil.errors", "rules": error_alerts(s)},
        {"name": "vigil.process", "rules": process_alerts(s)},
        {"name": "vigil.exporter", "rules": exporter_alerts(s)},
        {"name": "vigil.traces", "rules": trace_alerts(s)},
    ]


def demo_groups(s: Settings) -> list[dict[str, Any]]:
    """demo.rules.yml: the demo's alerts."""
    return [{"name": "vigil.demo", "rules": demo_alerts(s)}]


# --- Alertmanager and Prometheus ---------------------------------------------------------


def _oncall_routes(s: Settings, email: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The on-call person's route (after the critical webhook route, which continues to it)
    and receiver: critical alerts by email to ``email``."""
    route = {"matchers": ['severity="critical"'], "receiver": ONCALL_RECEIVER,
             "group_wait": s.critical_group_wait,
             "group_interval": s.critical_group_interval,
             "repeat_interval": s.critical_repeat_interval}
    receiver = {"name": ONCALL_RECEIVER, "email_configs": [{
        "to": email, "from": s.oncall_email_from, "smarthost": s.oncall_smarthost,
        "send_resolved": True}]}
    return [route], receiver


def alertmanager_config(s: Settings) -> dict[str, Any]:
    """Routes by severity to the app's webhook (and critical alerts to a person, when
    ``oncall_email`` is set: the critical route continues to the ``oncall`` receiver)."""
    webhook: dict[str, Any] = {"url": s.webhook_url, "send_resolved": True, "max_alerts": 100}
    if s.webhook_credentials_file:
        webhook["http_config"] = {"authorization": {
            "type": "Bearer", "credentials_file": s.webhook_credentials_file}}

    def receiver(name: str) -> dict[str, Any]:
        return {"name": name, "webhook_configs": [copy.deepcopy(webhook)]}  # no YAML anchors

    critical: dict[str, Any] = {
        "matchers": ['severity="critical"'], "receiver": "vigil-critical",
        "group_wait": s.critical_group_wait,
        "group_interval": s.critical_group_interval,
        "repeat_interval": s.critical_repeat_interval}
    routes = [critical]
    receivers = [receiver(name) for name in
                 ("vigil", "vigil-critical", "vigil-warning", "vigil-info")]
    if s.oncall_email:
        critical["continue"] = True  # the webhook gets it, and so does the person
        oncall_routes, oncall = _oncall_routes(s, s.oncall_email)
        routes += oncall_routes
        receivers.append(oncall)
    routes += [
        {"matchers": ['severity="warning"'], "receiver": "vigil-warning"},
        {"matchers": ['severity="info"'], "receiver": "vigil-info",
         "repeat_interval": s.info_repeat_interval},
    ]
    return {
        "route": {
            "receiver": "vigil",
            "group_by": ["alertname", *s.extra_labels, "job", "breaker", "category"],
            "group_wait": s.group_wait,
            "group_interval": s.group_interval,
            "repeat_interval": s.repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'],
             "target_matchers": ['severity="warning"'],
             "equal": ["alertname", *s.extra_labels, "job", "instance", "breaker",
                       "category"]},
        ],
        "receivers": receivers,
    }


def _oncall_example(s: Settings) -> str:
    """alertmanager.yml's closing comment while ``oncall_email`` is empty: the YAML that
    ``--set oncall_email=...`` adds, commented out."""
    if s.oncall_email:
        return ""
    routes, receiver = _oncall_routes(s, "oncall@example.com")

    def commented(data: Any) -> str:
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1 << 16)
        return "".join(f"#   {line}\n" for line in text.splitlines())

    return (
        "# A person on call (off: every receiver above is the app's webhook, so no person is\n"
        "# notified). To page one as well, set oncall_email (build.py --out DIR --set\n"
        "# oncall_email=you@example.com; oncall_email_from and oncall_smarthost for the SMTP\n"
        "# server, whose login goes in email_configs' auth_username/auth_password_file). That\n"
        "# adds `continue: true` to the severity=\"critical\" route above, so the webhook keeps\n"
        "# receiving critical alerts, then this route after it:\n"
        + commented(routes)
        + "# and this receiver:\n"
        + commented([receiver]))


def prometheus_config(s: Settings, *, demo: bool = True) -> dict[str, Any]:
    """The demo's Prometheus (docker-compose, ``vigil demo``): the general rule files and,
    with ``demo``, the demo's own."""
    return {
        "global": {"scrape_interval": s.scrape_interval,
                   "evaluation_interval": s.evaluation_interval},
        "rule_files": [*RULE_FILES, *([DEMO_RULES_FILE] if demo else [])],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [s.alertmanager_target]}]}]},
        "scrape_configs": [{"job_name": s.job,
                            "static_configs": [{"targets": [s.app_target]}]}],
    }


def production_prometheus_config(s: Settings, replica: str) -> dict[str, Any]:
    """Replica ``replica`` of the HA pair: ``prometheus.yml`` plus the replica label, every
    Alertmanager peer and ``remote_write``; the replica label dropped from alerts and writes.
    It loads the general rule files only (not the demo's)."""
    drop_replica = [{"action": "labeldrop", "regex": s.replica_label}]
    base = prometheus_config(s, demo=False)
    return {
        "global": {**base["global"], "external_labels": {s.replica_label: replica}},
        # relative to this file: alerts/vigil.rules.yml, alerts/vigil.recording.rules.yml
        "rule_files": [f"../{name}" for name in RULE_FILES],
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
        f"whole:\n# rule_files are ../{RULE_FILES[0]} and ../{RULE_FILES[1]}, the general "
        f"set, not the\n# demo's), and sends every alert to all "
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
    RULES_FILE:
        "# vigil's alerting rules, the general set for any application using vigil. Every rule\n"
        "# selects the targets of Settings.selector; each alert's runbook_url is\n"
        "# Settings.runbook_base#<alert>, its section in alerts/runbook.md.\n",
    RECORDING_FILE:
        "# vigil's recording rules (level:metric:operations), per target (job, instance). The\n"
        "# names are a contract: dashboards/ queries them; keep them.\n",
    DEMO_RULES_FILE:
        "# The demo's own alerts (the agent-studio demo: agent limits, ingest_file's files),\n"
        "# apart from the general set: alerts/prometheus.yml (vigil demo, docker-compose) loads\n"
        "# this file, the production recipe and a user's own Prometheus do not.\n",
    ALERTMANAGER_FILE:
        "# Alertmanager: every alert goes back to the vigil webhook receiver, which turns it "
        "into\n# a vigil alert (source=\"alertmanager\") for the application's handlers. "
        "Routed by the\n# severity label (one receiver per severity, all the same webhook; "
        "a person on call is\n# the commented example at the end, or oncall_email in "
        "build.py); a critical alert\n# inhibits the warning of the same alert and labels. "
        "docker-compose mounts it as it is,\n# with the webhook's bearer token in the secret "
        "file /run/secrets/vigil-token\n# (webhook_credentials_file in build.py; the app reads "
        "the same file); stack.py replaces\n# the URL and the webhook's credentials with its "
        "own.\n",
    PROMETHEUS_FILE:
        "# Prometheus for the demo: scrape the app's exporter, load vigil's rules and the "
        "demo's,\n# send alerts to Alertmanager. docker-compose mounts it as it is; `vigil "
        "demo`\n# (exporter/vigil_exporter/stack.py) loads it and replaces the addresses with "
        "the\n# loopback ports it picked (and the intervals).\n",
}


def _dump(about: str, data: Any, footer: str = "") -> str:
    # No folding: a PromQL expression or an annotation stays on one line unless it has several.
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1 << 16, allow_unicode=True)
    return _HEADER + about + body + footer


def render(s: Settings, *, demo: bool = True) -> dict[str, str]:
    """Path (relative to alerts/) -> text, for every generated file of alerts/.

    ``render(Settings())`` is what ``python alerts/build.py`` writes. ``demo=False`` leaves
    the demo's rules out (``demo.rules.yml``, and prometheus.yml does not load it).
    """
    builders: dict[str, Callable[[], Any]] = {
        RULES_FILE: lambda: {"groups": alert_groups(s)},
        RECORDING_FILE: lambda: {"groups": [
            {"name": "vigil.recording", "rules": recording_rules(s)}]},
        DEMO_RULES_FILE: lambda: {"groups": demo_groups(s)},
        ALERTMANAGER_FILE: lambda: alertmanager_config(s),
        PROMETHEUS_FILE: lambda: prometheus_config(s, demo=demo),
    }
    if not demo:
        del builders[DEMO_RULES_FILE]
    footers = {ALERTMANAGER_FILE: _oncall_example(s)}
    files = {name: _dump(_ABOUT[name], build(), footers.get(name, ""))
             for name, build in builders.items()}
    for replica in s.replica_names:
        files[production_prometheus_file(replica)] = _dump(
            _production_prometheus_about(s, replica), production_prometheus_config(s, replica))
    files[PRODUCTION_ALERTMANAGER_FILE] = _dump(_production_alertmanager_about(s),
                                                alertmanager_config(s), _oncall_example(s))
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
