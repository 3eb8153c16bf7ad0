"""The ``monitoring.*`` settings: logging, metrics, tracing, resource monitoring and alerts
(names follow the seed's YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.config.errors import ConfigError
from vigil.config.fields import Settings, positive, setting
from vigil.config.kinds import BOOL_WORDS
from vigil.config.levels import LOG_LEVELS, log_level_name

__all__ = [
    "AlertSettings",
    "EXPORT_CHOICES",
    "LoggingSettings",
    "MetricsSettings",
    "MonitoringSettings",
    "PID_CHOICES",
    "ResourceMonitoringSettings",
    "SERVICE_MAX_CHARS",
    "TracingSettings",
]

PID_CHOICES = ("auto", "true", "false")  # monitoring.logging.include_pid
EXPORT_CHOICES = ("auto", "otlp", "none")  # monitoring.tracing.export
SERVICE_MAX_CHARS = 255  # monitoring.logging.service


def _pid_choice(pid: object) -> str:
    """``include_pid`` as one of :data:`PID_CHOICES` when it is one: YAML's true/false, and
    the spellings boolean variables accept, mean true/false. A number or a list is refused
    here, naming the choices rather than "expected a string"."""
    if isinstance(pid, bool):
        return "true" if pid else "false"
    if isinstance(pid, str):
        word = pid.strip().lower()
        return BOOL_WORDS.get(word, word)  # not a choice: the field's own check refuses it
    raise ConfigError("include_pid", pid, f"must be one of {', '.join(PID_CHOICES)}")


@dataclass(frozen=True)
class LoggingSettings(Settings):
    level: str = setting("INFO", choices=LOG_LEVELS, doc="minimum level written")
    buffer_size: int = setting(1000, minimum=1, doc="recent entries kept per logger")
    redact_keys: tuple[str, ...] = setting(
        ["password", "secret", "token", "api_key", "authorization", "cookie"],
        doc="metadata keys containing any of these (case-insensitive) are written as [REDACTED]")
    max_line_bytes: int = setting(
        16383, minimum=1024,
        doc="longest JSON log line in bytes, newline excluded; longer ones are cut visibly "
            "(16 KiB with the newline, where container runtimes split lines)")
    service: str = setting(
        "", doc="the service field of every line; empty: OTEL_SERVICE_NAME (else service.name "
                "in OTEL_RESOURCE_ATTRIBUTES) when set, else no field")
    include_host: bool = setting(
        False, doc="write the machine's host name (socket.gethostname()) as the host field")
    include_pid: str = setting(
        "auto", choices=PID_CHOICES,
        doc="write the process id as the pid field (the current one, also after a fork): "
            "auto does so under prometheus_client multiprocess mode (PROMETHEUS_MULTIPROC_DIR)")

    def __post_init__(self) -> None:
        if isinstance(self.level, str):  # "info", "INFO" mean INFO; "warn" WARNING
            object.__setattr__(self, "level", log_level_name(self.level))
        object.__setattr__(self, "include_pid", _pid_choice(self.include_pid))
        if isinstance(self.service, str):
            object.__setattr__(self, "service", self.service.strip())
        super().__post_init__()
        # isprintable() is False for line breaks, control and format characters and surrogates.
        if len(self.service) > SERVICE_MAX_CHARS or not self.service.isprintable():
            raise ConfigError("service", self.service,
                              f"expected a service name of at most {SERVICE_MAX_CHARS} "
                              "printable characters (no line breaks, control characters or "
                              "lone surrogates)")


@dataclass(frozen=True)
class MetricsSettings(Settings):
    retention_count: int = setting(1000, minimum=1, doc="recent records kept per metric name")
    max_series_per_metric: int = setting(
        500, minimum=1, doc="label sets per metric before new ones go to one 'other' series")


@dataclass(frozen=True)
class TracingSettings(Settings):
    enabled: bool = setting(True, doc="record traces (ids are still made when off)")
    trace_retention: int = setting(1000, minimum=1, doc="completed trace entries kept")
    max_active_traces: int = setting(
        10000, minimum=1, doc="entries started but not ended; the oldest is dropped past it")
    export: str = setting(
        "auto", choices=EXPORT_CHOICES,
        doc="send sampled spans over OTLP/HTTP (needs vigil[otel]): auto does when "
            "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set "
            "(and OTEL_TRACES_EXPORTER, when set, names otlp); otlp always; none never")
    exit_flush_timeout: float = setting(
        5.0, minimum=0, doc="seconds the interpreter's exit waits for queued spans to be "
                            "exported (0: no wait); what is left is logged")
    opentelemetry_context: bool = setting(
        True, doc="share the current span with OpenTelemetry's context once opentelemetry-api "
                  "is imported: each side's spans become the other's children")


@dataclass(frozen=True)
class ResourceMonitoringSettings(Settings):
    enabled: bool = setting(True, doc="allow the background resource sampler")
    interval: float = positive(5.0, "seconds between two resource samples")


@dataclass(frozen=True)
class AlertSettings(Settings):
    buffer_size: int = setting(1000, minimum=1, doc="recent alerts kept")
    buffer_max_bytes: int = setting(
        16_777_216, minimum=1, doc="bytes the recent alerts may hold; past it the oldest go")
    dedup_window: float = setting(
        60.0, minimum=0, doc="seconds in which a repeated alert is counted, not dispatched")
    handler_timeout: float = positive(
        10.0, "seconds a handler may run before it is reported as hung")
    queue_size: int = setting(1000, minimum=1, doc="alerts waiting per handler before drops")
    exit_flush_timeout: float = setting(
        5.0, minimum=0, doc="seconds the interpreter's exit waits for handlers to finish the "
                            "alerts sent before it (0: no wait); what is left is logged")


@dataclass(frozen=True)
class MonitoringSettings(Settings):
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    resource_monitoring: ResourceMonitoringSettings = field(
        default_factory=ResourceMonitoringSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
