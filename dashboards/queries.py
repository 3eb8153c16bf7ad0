"""Every PromQL expression the dashboards run, kept apart from the layout.

Each query is a :class:`Query`: the expression and the legend that names its series (the legend
uses the labels the expression keeps, so the two are written together). Panels may only query
the metrics in the README's metrics table, Prometheus's ``up`` and ``ALERTS``, and the recording
rules below; ``tests/unit/test_dashboards_build.py`` checks that.

Template variables: ``$job`` and ``$instance`` (multi-value; "All" of ``$job`` is the jobs it
lists, those with vigil's metrics; "All" of ``$instance`` is ``.*``, hence ``=~``) and Grafana's
``$__rate_interval``. Every query filters on both ``$job`` and ``$instance``, the ones over
recording rules too: the rules keep ``job`` and ``instance``. Nothing here names a job: the
JSON works for any job; :data:`DEFAULT_JOBS` is only where ``$job`` starts.

Counts show 0 rather than "No data": a single number summed over every series (``sum(...)``,
``count(...)``) is ``... or vector(0)``, which is exact (no series is a sum of 0); a panel with
one series per label value cannot add a 0 series without labels, so those panels set Grafana's
``noValue`` to 0 instead (``panels.timeseries(..., no_value="0")``).

Recording rules (``alerts/vigil.recording.rules.yml``; the names are a contract with alerts/):
the expensive expressions are evaluated once by Prometheus rather than by every dashboard
refresh. :data:`RECORDING_RULES` is the contract, name -> the expression it must record (for
the selector ``alerts/build.py`` inserts into each metric's braces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, NamedTuple


class Query(NamedTuple):
    """A PromQL expression and the Grafana legend format for its series."""

    expr: str
    legend: str = "__auto"


# --- selectors -----------------------------------------------------------------------------

_JOB = 'job=~"$job"'
_INSTANCE = 'instance=~"$instance"'


def _raw(*matchers: str) -> str:
    """Label matchers for a series: ``$job``, ``$instance`` and ``matchers``."""
    return "{" + ", ".join((_JOB, _INSTANCE, *matchers)) + "}"


# The recording rules keep job and instance: filtered exactly like the raw metrics.
_rule = _raw


def _or_zero(expr: str) -> str:
    """A single summed number that is 0, not "No data", when nothing matches."""
    return f"{expr} or vector(0)"


# --- recording rules (the contract with alerts/) -------------------------------------------

ERRORS_RATE: Final = "job_instance_category_severity:vigil_errors:rate5m"
FUNCTION_CALLS_RATE: Final = "job_instance_function:vigil_function_calls:rate5m"
FUNCTION_ERRORS_RATE: Final = "job_instance_function:vigil_function_errors:rate5m"
FUNCTION_DURATION_BUCKET_RATE: Final = \
    "job_instance_function_le:vigil_function_duration_seconds_bucket:rate5m"
BREAKER_TRANSITIONS_INCREASE: Final = \
    "job_instance_breaker:vigil_circuit_breaker_transitions:increase5m"
BREAKER_CALLS_RATE: Final = "job_instance_breaker_outcome:vigil_circuit_breaker_calls:rate5m"
RETRY_CALLS_RATE: Final = "job_instance_operation_outcome:vigil_retry_calls:rate5m"
RETRY_ATTEMPTS_RATE: Final = "job_instance_operation:vigil_retry_attempts:rate5m"
TRACE_DURATION_BUCKET_RATE: Final = \
    "job_instance_component_operation_le:vigil_trace_duration_seconds_bucket:rate5m"

RECORDING_RULES: Final[Mapping[str, str]] = {
    ERRORS_RATE:
        "sum by (job, instance, category, severity) (rate(vigil_errors_total[5m]))",
    FUNCTION_CALLS_RATE:
        "sum by (job, instance, function) (rate(vigil_function_calls_total[5m]))",
    FUNCTION_ERRORS_RATE:
        "sum by (job, instance, function) (rate(vigil_function_errors_total[5m]))",
    FUNCTION_DURATION_BUCKET_RATE: "sum by (job, instance, function, le) "
                                   "(rate(vigil_function_duration_seconds_bucket[5m]))",
    BREAKER_TRANSITIONS_INCREASE: "sum by (job, instance, breaker) "
                                  "(increase(vigil_circuit_breaker_transitions_total[5m]))",
    BREAKER_CALLS_RATE: "sum by (job, instance, breaker, outcome) "
                        "(rate(vigil_circuit_breaker_calls_total[5m]))",
    RETRY_CALLS_RATE:
        "sum by (job, instance, operation, outcome) (rate(vigil_retry_calls_total[5m]))",
    RETRY_ATTEMPTS_RATE:
        "sum by (job, instance, operation) (rate(vigil_retry_attempts_total[5m]))",
    TRACE_DURATION_BUCKET_RATE: "sum by (job, instance, component, operation, le) "
                                "(rate(vigil_trace_duration_seconds_bucket[5m]))",
}

# --- matchers used below ----------------------------------------------------------------------

_OPEN = 'state="OPEN"'
_HALF_OPEN = 'state="HALF_OPEN"'
_OPEN_OR_FORCED = 'state=~"OPEN|FORCED_OPEN"'
_NOT_CLOSED = 'state=~"OPEN|HALF_OPEN|FORCED_OPEN"'  # the rejecting states
_REJECTED = 'outcome="rejected"'
_GAVE_UP = 'outcome="failure_after_retry"'
_NOT_SUCCESS = 'status!="success"'
_INF = 'le="+Inf"'
_FIRING = 'alertstate="firing"'

# --- summary -------------------------------------------------------------------------------

TARGETS_UP: Final = Query(f"up{_raw()}", "{{instance}}")
ERRORS_PER_SECOND: Final = Query(_or_zero(f"sum({ERRORS_RATE}{_rule()})"), "errors/s")
CALLS_PER_SECOND: Final = Query(_or_zero(f"sum({FUNCTION_CALLS_RATE}{_rule()})"), "calls/s")
# Breakers OPEN in at least one worker: under gunicorn (PROMETHEUS_MULTIPROC_DIR) the state
# gauge has one series per live worker (a pid label), so max by breaker first, then count.
BREAKERS_OPEN: Final = Query(_or_zero(
    f"sum(max by (job, instance, breaker) (vigil_circuit_breaker_state{_raw(_OPEN)}))"), "open")
ALERTS_FIRING_COUNT: Final = Query(_or_zero(f"count(ALERTS{_raw(_FIRING)})"), "firing")
LATENCY_P95_ALL: Final = Query(
    f"histogram_quantile(0.95, sum by (le) ({FUNCTION_DURATION_BUCKET_RATE}{_rule()}))", "p95")

# --- errors and recovery -------------------------------------------------------------------

ERRORS_BY_CATEGORY_SEVERITY: Final = Query(
    f"sum by (category, severity) ({ERRORS_RATE}{_rule()})", "{{category}} / {{severity}}")
ERRORS_BY_COMPONENT: Final = Query(
    f"sum by (component) (rate(vigil_errors_total{_raw()}[$__rate_interval]))", "{{component}}")
RECOVERY_ACTIONS: Final = Query(
    f"sum by (action) (rate(vigil_recovery_actions_total{_raw()}[$__rate_interval]))",
    "{{action}}")

# --- circuit breakers ----------------------------------------------------------------------

# One series per breaker and instance: 0 CLOSED, 1 HALF_OPEN, 2 OPEN (the panel maps the values
# to names; FORCED_OPEN shows as OPEN, and DISABLED and METRICS_ONLY, which let calls run, as
# CLOSED). The gauge has one 0/1 series per state, all present from the breaker's creation,
# and under gunicorn one set per live worker (a pid label): each series is weighted (HALF_OPEN
# 1, OPEN and FORCED_OPEN 2; `or` keeps them all, their state labels differ) and the worst is
# shown, so the band is OPEN when any worker's breaker rejects everything, HALF_OPEN when none
# does and one is probing. (`or` rather than `+ ignoring (state)`: an exporter from before the
# FORCED_OPEN state has no such series, and a sum with a missing side is empty.)
BREAKER_STATE: Final = Query(
    f"max by (instance, breaker) (vigil_circuit_breaker_state{_raw(_HALF_OPEN)}"
    f" or 2 * vigil_circuit_breaker_state{_raw(_OPEN_OR_FORCED)})",
    "{{breaker}} ({{instance}})")
# How many workers have each breaker OPEN or HALF_OPEN (0 or 1 in a single process): what
# VigilCircuitBreakerOpen counts.
BREAKER_WORKERS_NOT_CLOSED: Final = Query(
    f"sum by (instance, breaker, state) (vigil_circuit_breaker_state{_raw(_NOT_CLOSED)})",
    "{{breaker}} {{state}} ({{instance}})")
BREAKER_TRANSITIONS: Final = Query(
    f"sum by (breaker) ({BREAKER_TRANSITIONS_INCREASE}{_rule()})", "{{breaker}}")
BREAKER_CALLS_BY_OUTCOME: Final = Query(
    f"sum by (breaker, outcome) ({BREAKER_CALLS_RATE}{_rule()})", "{{breaker}} {{outcome}}")
BREAKER_REJECTED: Final = Query(
    f"sum by (breaker) ({BREAKER_CALLS_RATE}{_rule(_REJECTED)})", "{{breaker}}")

# --- retries -------------------------------------------------------------------------------

RETRY_ATTEMPTS: Final = Query(
    f"sum by (operation) ({RETRY_ATTEMPTS_RATE}{_rule()})", "{{operation}}")
RETRY_OUTCOMES: Final = Query(
    f"sum by (operation, outcome) ({RETRY_CALLS_RATE}{_rule()})", "{{operation}} {{outcome}}")
RETRY_GIVE_UPS: Final = Query(
    f"sum by (operation) ({RETRY_CALLS_RATE}{_rule(_GAVE_UP)})", "{{operation}}")

# --- functions (@monitor_performance) -------------------------------------------------------

FUNCTION_THROUGHPUT: Final = Query(
    f"sum by (function) ({FUNCTION_CALLS_RATE}{_rule()})", "{{function}}")
FUNCTION_ERROR_RATIO: Final = Query(
    f"sum by (function) ({FUNCTION_ERRORS_RATE}{_rule()})"
    f" / sum by (function) ({FUNCTION_CALLS_RATE}{_rule()})", "{{function}}")


def function_latency(quantile: float) -> Query:
    """The ``quantile`` (0..1) of call durations per function, over 5 minutes."""
    label = f"p{round(quantile * 100):d}"
    return Query(f"histogram_quantile({quantile}, sum by (function, le) "
                 f"({FUNCTION_DURATION_BUCKET_RATE}{_rule()}))", f"{{{{function}}}} {label}")


FUNCTION_LATENCY_P50: Final = function_latency(0.5)
FUNCTION_LATENCY_P95: Final = function_latency(0.95)
FUNCTION_LATENCY_P99: Final = function_latency(0.99)
# Per-bucket call rates of every function; Grafana's "heatmap" format de-accumulates the buckets.
FUNCTION_LATENCY_HEATMAP: Final = Query(
    f"sum by (le) ({FUNCTION_DURATION_BUCKET_RATE}{_rule()})", "{{le}}")

# --- traces --------------------------------------------------------------------------------

TRACE_P95_BY_OPERATION: Final = Query(
    f"histogram_quantile(0.95, sum by (component, operation, le) "
    f"({TRACE_DURATION_BUCKET_RATE}{_rule()}))", "{{component}}.{{operation}}")
TRACE_RATE_BY_OPERATION: Final = Query(
    f"sum by (component, operation) ({TRACE_DURATION_BUCKET_RATE}{_rule(_INF)})",
    "{{component}}.{{operation}}")
TRACE_FAILURES_BY_OPERATION: Final = Query(
    f"sum by (component, operation) "
    f"(rate(vigil_trace_duration_seconds_count{_raw(_NOT_SUCCESS)}[$__rate_interval]))",
    "{{component}}.{{operation}}")

# --- process and machine resources ---------------------------------------------------------

PROCESS_CPU: Final = Query(f"vigil_process_cpu_usage_cores{_raw()}", "{{instance}}")
PROCESS_MEMORY: Final = Query(f"vigil_process_resident_memory_bytes{_raw()}", "{{instance}}")
PROCESS_MEMORY_RATIO: Final = Query(f"vigil_process_memory_usage_ratio{_raw()}",
                                    "process memory {{instance}}")
SYSTEM_MEMORY_RATIO: Final = Query(f"vigil_system_memory_usage_ratio{_raw()}",
                                   "machine memory {{instance}}")
SYSTEM_CPU_RATIO: Final = Query(f"vigil_system_cpu_usage_ratio{_raw()}",
                                "machine CPU {{instance}}")
PROCESS_THREADS: Final = Query(f"vigil_process_threads{_raw()}", "threads {{instance}}")
PROCESS_OPEN_FDS: Final = Query(f"vigil_process_open_fds{_raw()}", "open fds {{instance}}")

# --- alerts and logs -----------------------------------------------------------------------

ALERTS_FIRING: Final = Query(f"ALERTS{_raw(_FIRING)}", "{{alertname}}")
ALERTS_FIRING_BY_NAME: Final = Query(
    f"count by (alertname, severity) (ALERTS{_raw(_FIRING)})", "{{alertname}} ({{severity}})")
VIGIL_ALERTS_BY_SEVERITY: Final = Query(
    f"sum by (severity) (rate(vigil_alerts_total{_raw()}[$__rate_interval]))", "{{severity}}")
LOG_LINES_BY_LEVEL: Final = Query(
    f"sum by (level) (rate(vigil_log_messages_total{_raw()}[$__rate_interval]))", "{{level}}")

# --- template variables --------------------------------------------------------------------

# Grafana's label_values() queries for the variables (not PromQL: Grafana turns them into
# /api/v1/label/<name>/values?match[]=<selector>). $job lists the jobs exposing vigil's
# metrics (any vigil_* series), not every job of a shared Prometheus; $instance every target
# of those jobs (up: a target that is down stays listed).
JOB_VALUES: Final = 'label_values({__name__=~"vigil_.+"}, job)'
INSTANCE_VALUES: Final = 'label_values(up{job=~"$job"}, instance)'

# Where $job starts: the job(s) Settings.selector of alerts/build.py names (job="vigil"), so
# the dashboard opens on the targets the shipped rules watch. tests/unit keeps the two equal.
# In Grafana a default that is not among the listed jobs gives way to the first listed one;
# model.with_defaults() writes another default into the JSON.
DEFAULT_JOBS: Final = ("vigil",)

# What the checks (promtool, the integration test) put in place of Grafana's variables.
TEST_VARIABLES: Final[Mapping[str, str]] = {
    "job": "vigil",
    "instance": ".*",
    "__rate_interval": "1m",
}

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand(expr: str, variables: Mapping[str, str] = TEST_VARIABLES) -> str:
    """``expr`` with ``$name`` / ``${name}`` replaced from ``variables``; unknown names raise."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for the template variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(value, expr)
