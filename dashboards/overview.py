"""The vigil overview dashboard: is the application healthy, and if not, which part is failing.

Rows, top to bottom: a summary line of big numbers; errors and the recovery actions taken;
circuit breakers; retries; ``@monitor_performance`` functions (throughput, errors, latency);
traces; process and machine resources; alerts and logs. Layout only: every expression comes
from :mod:`dashboards.queries`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as dashboard_models

from . import queries as q
from .panels import (
    datasource_variable,
    heatmap,
    instance_variable,
    job_variable,
    row,
    stat,
    state_timeline,
    table,
    timeseries,
)

__all__ = ["UID", "build"]

UID = "vigil-overview"

# What a count panel with one series per label value shows when no series matches.
_ZERO = "0"

_BREAKER_STATES = {0: ("CLOSED", "green"), 1: ("HALF_OPEN", "yellow"), 2: ("OPEN", "red")}


def _summary(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Summary"))
    dash.with_panel(stat(
        "Exporter up", "Is Prometheus scraping each vigil exporter right now (1 = UP)?",
        "short", q.TARGETS_UP, mappings={0: ("DOWN", "red"), 1: ("UP", "green")},
        thresholds=((None, "red"), (1, "green")), graph=False))
    dash.with_panel(stat(
        "Handled errors", "How many errors per second is the recovery manager handling "
        "(5-minute average)?", "ops", q.ERRORS_PER_SECOND,
        thresholds=((None, "green"), (0.1, "orange"), (1, "red"))))
    dash.with_panel(stat(
        "Function calls", "How many calls per second do the @monitor_performance functions "
        "serve (5-minute average)?", "ops", q.CALLS_PER_SECOND))
    dash.with_panel(stat(
        "Function p95 latency", "How long do 95% of function calls take, all functions "
        "together, over the last 5 minutes?", "s", q.LATENCY_P95_ALL,
        thresholds=((None, "green"), (1, "orange"), (5, "red"))))
    dash.with_panel(stat(
        "Breakers open", "How many circuit breakers are OPEN right now, in at least one "
        "worker process (calls rejected or sent to their fallback)?", "short", q.BREAKERS_OPEN,
        thresholds=((None, "green"), (1, "red"))))
    dash.with_panel(stat(
        "Alerts firing", "How many Prometheus alerts about these targets are firing now?",
        "short", q.ALERTS_FIRING_COUNT,
        thresholds=((None, "green"), (1, "red"))))


def _errors(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Errors and recovery"))
    dash.with_panel(timeseries(
        "Error rate by category and severity", "Which kinds of error (ErrorCategory) at which "
        "severity is the application handling, per second over 5 minutes?",
        "ops", q.ERRORS_BY_CATEGORY_SEVERITY, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Errors by component", "Which component reports the handled errors?", "ops",
        q.ERRORS_BY_COMPONENT, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Recovery actions", "What does the recovery manager decide to do about the errors "
        "(retry, fallback, skip, abort)?", "ops", q.RECOVERY_ACTIONS, stacked=True, no_value=_ZERO))


def _breakers(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Circuit breakers"))
    dash.with_panel(state_timeline(
        "Breaker state", "Which state was each circuit breaker in over time (CLOSED, "
        "HALF_OPEN probing, OPEN rejecting)? With several worker processes, the worst of "
        "them: OPEN when any worker's is OPEN.", q.BREAKER_STATE, _BREAKER_STATES,
        width=16, height=8))
    dash.with_panel(timeseries(
        "Workers with the breaker open", "In how many worker processes is each breaker OPEN "
        "or HALF_OPEN (1 in a single process)? VigilCircuitBreakerOpen reports this count.",
        "short", q.BREAKER_WORKERS_NOT_CLOSED, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Breaker transitions (5 min)", "How often does each breaker change state (every "
        "worker process's transitions added up): a flapping breaker shows many transitions "
        "in 5 minutes.", "short",
        q.BREAKER_TRANSITIONS, bars=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Breaker calls by outcome", "What happens to calls through each breaker (success, "
        "slow, failure, ignored, rejected)?", "ops", q.BREAKER_CALLS_BY_OUTCOME,
        stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Rejected calls", "How many calls per second does an OPEN breaker refuse (raising "
        "CircuitOpenError or calling its fallback)?", "ops", q.BREAKER_REJECTED, no_value=_ZERO))


def _retries(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Retries"))
    dash.with_panel(timeseries(
        "Retry attempts", "How many retries per second does each @with_retry operation "
        "perform?", "ops", q.RETRY_ATTEMPTS, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Retried calls by outcome", "Do retried calls succeed first time, after retrying, "
        "or fail?", "ops", q.RETRY_OUTCOMES, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Retry give-ups", "How many calls per second fail after using up all their retry "
        "attempts?", "ops", q.RETRY_GIVE_UPS, no_value=_ZERO))


def _functions(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Functions"))
    dash.with_panel(timeseries(
        "Throughput", "How many calls per second does each @monitor_performance function "
        "serve?", "ops", q.FUNCTION_THROUGHPUT, width=12, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Error ratio", "What share of each function's calls raise?",
        "percentunit", q.FUNCTION_ERROR_RATIO, width=12))
    dash.with_panel(timeseries(
        "Latency p50 / p95 / p99", "How long do calls to each function take: the median, "
        "95th and 99th percentiles over 5 minutes?", "s",
        q.FUNCTION_LATENCY_P50, q.FUNCTION_LATENCY_P95, q.FUNCTION_LATENCY_P99, width=12))
    dash.with_panel(heatmap(
        "Latency distribution", "How are call durations spread across the histogram buckets "
        "over time (all functions; calls per second in each bucket)?",
        q.FUNCTION_LATENCY_HEATMAP, y_unit="s", cell_unit="ops"))


def _traces(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Traces"))
    dash.with_panel(timeseries(
        "Trace duration p95 by operation", "How long does each traced operation take "
        "(95th percentile over 5 minutes)?", "s", q.TRACE_P95_BY_OPERATION))
    dash.with_panel(timeseries(
        "Spans by operation", "How many trace entries per second does each operation "
        "end?", "ops", q.TRACE_RATE_BY_OPERATION, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Failed spans by operation", "Which traced operations end with a status other than "
        "success?", "ops", q.TRACE_FAILURES_BY_OPERATION, no_value=_ZERO))


def _resources(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Process and machine"))
    dash.with_panel(timeseries(
        "Process CPU (cores)", "How much CPU does the process use (1 = one core busy)?",
        "short", q.PROCESS_CPU, width=6))
    dash.with_panel(timeseries(
        "Process memory (RSS)", "How much resident memory does the process hold?",
        "bytes", q.PROCESS_MEMORY, width=6))
    dash.with_panel(timeseries(
        "Memory and CPU share", "What share of the machine's memory does the process use, "
        "and how busy are the machine's memory and CPU?", "percentunit",
        q.PROCESS_MEMORY_RATIO, q.SYSTEM_MEMORY_RATIO, q.SYSTEM_CPU_RATIO,
        width=6, max_value=1))
    dash.with_panel(timeseries(
        "Threads and open files", "How many threads and file descriptors does the process "
        "hold (a steady climb is a leak)?", "short", q.PROCESS_THREADS, q.PROCESS_OPEN_FDS,
        width=6))


def _alerts(dash: dashboard_builders.Dashboard) -> None:
    dash.with_row(row("Alerts and logs"))
    dash.with_panel(table(
        "Firing alerts", "Which Prometheus alerts about these targets are firing now, with "
        "their labels?", q.ALERTS_FIRING, hide=("Time", "Value", "__name__", "alertstate"),
        no_value="No alert firing"))
    dash.with_panel(timeseries(
        "Firing alerts over time", "When did each alert fire, and for how long?", "short",
        q.ALERTS_FIRING_BY_NAME, width=12, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "vigil alerts dispatched", "How many alerts per second does vigil's AlertManager "
        "hand to its handlers, by severity (after de-duplication)?", "ops",
        q.VIGIL_ALERTS_BY_SEVERITY, width=12, stacked=True, no_value=_ZERO))
    dash.with_panel(timeseries(
        "Log lines by level", "How many JSON log lines per second are written, by level?",
        "ops", q.LOG_LINES_BY_LEVEL, width=12, stacked=True, no_value=_ZERO))


def build() -> dashboard_models.Dashboard:
    """The overview dashboard, ready to serialise."""
    dash = (dashboard_builders.Dashboard("vigil / Overview")
            .uid(UID)
            .description("Errors, circuit breakers, retries, function latency, traces, "
                         "resources and alerts of applications instrumented with vigil.")
            .tags(["vigil"])
            .time("now-30m", "now")
            .refresh("10s")
            .timezone("browser")
            .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
            .with_variable(datasource_variable())
            .with_variable(job_variable())
            .with_variable(instance_variable()))
    for section in (_summary, _errors, _breakers, _retries, _functions, _traces, _resources,
                    _alerts):
        section(dash)
    model = dash.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number  # stable ids: links to a panel (viewPanel=N) keep working
    return model
