"""vigil's settings: built-in defaults < YAML file < ``VIGIL_*`` environment variables.

The file has the seed's shape (``config/monitoring.yaml``)::

    error_handling:
      circuit_breaker: {default_failure_threshold: 5, default_recovery_timeout: 60.0}
      retry: {default_max_attempts: 3, default_initial_delay: 1.0, default_max_delay: 60.0}
    monitoring:
      logging: {level: INFO, buffer_size: 1000}
      ...

Every setting is a field of a frozen dataclass, validated when the dataclass is built, so a
:class:`VigilConfig` that exists is a valid one. Each key has an environment variable named
after its path: ``monitoring.logging.level`` is ``VIGIL_MONITORING_LOGGING_LEVEL``.
``VIGIL_CONFIG`` names the file to read when :func:`configure` is given none.

Errors are :class:`ConfigError`, naming the key path, the value received and what is allowed.

**Secrets** (``exporter.webhook_bearer_token``, ``webhook_password``, ``api_bearer_token``,
``api_password`` and the ``user:password@`` of ``store_url``) are plain ``str`` values to the
code that uses them, but never shown: a :class:`ConfigError` about one says "got <secret>" or
"got a value of type int" instead of the value (so do errors about unknown keys and variables,
which may be misspelt secrets, and about whole sections), and the settings' ``repr`` prints
``'***'``. A secret can also be read from a file: ``VIGIL_<KEY>_FILE`` names it (Docker and
Kubernetes mount secrets as files), e.g. ``VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import threading
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vigil import validate
from vigil.vocabulary import Severity

__all__ = [
    "AlertSettings",
    "CircuitBreakerSettings",
    "ConfigError",
    "ErrorHandlingSettings",
    "ExporterSettings",
    "LoggingSettings",
    "MetricsSettings",
    "MonitoringSettings",
    "RecoverySettings",
    "ResourceMonitoringSettings",
    "RetrySettings",
    "TracingSettings",
    "VigilConfig",
    "configure",
    "env_variables",
    "get_config",
    "get_config_or_defaults",
    "is_loopback_host",
    "load_config",
    "mask_url",
    "on_configure",
    "parse_policy_override",
    "with_arguments",
]

ENV_PREFIX = "VIGIL_"
CONFIG_FILE_ENV = "VIGIL_CONFIG"
FILE_SUFFIX = "_FILE"  # VIGIL_<KEY>_FILE: a secret setting read from that file
_SECRET_FILE_LIMIT = 65_536  # bytes; a secret file larger than this is the wrong file
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The spellings the stdlib's logging also takes (logging.WARN, logging.FATAL), in any case.
LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
# The recovery policy's vocabulary; vigil.error_handling's enums carry the same names (tested).
ERROR_CATEGORIES = ("FILE_PROCESSING", "AGENT_EXECUTION", "MEMORY_STORAGE", "VECTOR_DB", "API_CALL",
                    "CONFIGURATION", "SYSTEM")
ERROR_SEVERITIES = tuple(severity.name for severity in Severity)  # LOW, MEDIUM, HIGH, CRITICAL
RECOVERY_ACTIONS = ("retry", "fallback", "skip", "abort")
# error_handling.recovery.categories: a user's own category names (vigil.error_handling's
# CustomCategory applies the same rule): a letter, then letters, digits or _, case-insensitive.
CATEGORY_NAME_MAX = 64
_CATEGORY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
PID_CHOICES = ("auto", "true", "false")  # monitoring.logging.include_pid
EXPORT_CHOICES = ("auto", "otlp", "none")  # monitoring.tracing.export
SERVICE_MAX_CHARS = 255  # monitoring.logging.service
_BOOL_WORDS = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false",
               "off": "false"}


class _Hidden:
    """Stands for a value that may be a secret: its type is shown, never its content."""

    __slots__ = ("kind",)

    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return "<secret>" if self.kind == "str" else f"a value of type {self.kind}"


class ConfigError(ValueError):
    """A setting is wrong. ``key`` is the dotted path, ``value`` what was given.

    With ``secret=True`` the value is never kept nor shown (``value`` is a stand-in whose repr
    is ``<secret>`` or ``a value of type int``).
    """

    def __init__(self, key: str, value: object, allowed: str, *, hint: str = "",
                 secret: bool = False) -> None:
        if secret and not isinstance(value, _Hidden):
            value = _Hidden(value)
        self.key = key
        self.value = value
        self.allowed = allowed
        self.hint = hint
        message = f"{key}: got {value!r}; {allowed}" if key else f"got {value!r}; {allowed}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key placed under ``prefix``."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.value, self.allowed, hint=self.hint)

    @property
    def secret(self) -> bool:
        """Whether the value is hidden."""
        return isinstance(self.value, _Hidden)


# --- field declarations -------------------------------------------------------------------


def _setting(default: Any, *, doc: str, minimum: float | None = None, exclusive: bool = False,
             choices: tuple[str, ...] | None = None, secret: bool = False) -> Any:
    """A dataclass field with its constraint and its one-line description (for the README).

    ``secret``: the value is never shown (errors, repr) and may come from a ``_FILE`` variable.
    """
    meta = {"doc": doc, "minimum": minimum, "exclusive": exclusive, "choices": choices,
            "secret": secret}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


def _positive(default: Any, doc: str) -> Any:
    return _setting(default, doc=doc, minimum=0, exclusive=True)


def _validate(obj: Any) -> None:
    """Check every field of a settings dataclass against its declared type and constraint."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        expected = hints[f.name]
        if isinstance(expected, type) and dataclasses.is_dataclass(expected):
            if not isinstance(value, expected):  # a whole section: it may hold secrets
                raise ConfigError(f.name, value, f"expected a mapping of {expected.__name__}",
                                  secret=True)
            continue
        meta = f.metadata
        secret = bool(meta.get("secret"))
        _check_type(f.name, value, expected, secret=secret)
        minimum = meta.get("minimum")
        # Numbers are never secrets: their bounds are vigil.validate's (NaN and the
        # infinities are no setting).
        if expected is float:
            validate.number(f.name, value, minimum=minimum,
                            exclusive=bool(meta.get("exclusive")))
        elif expected is int and minimum is not None:
            validate.integer(f.name, value, minimum=minimum)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f.name, value, f"must be one of {', '.join(choices)}",
                              secret=secret)


def _check_type(key: str, value: Any, expected: Any, *, secret: bool = False) -> None:
    if expected is bool:
        ok = isinstance(value, bool)
        allowed = "expected true or false"
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        allowed = "expected an integer"
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        allowed = "expected a number"
    elif expected is str:
        ok = isinstance(value, str)
        allowed = "expected a string"
    elif typing.get_origin(expected) is tuple:
        ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
        allowed = "expected a list of strings"
    else:  # pragma: no cover - a settings class declared a type this module does not know
        raise TypeError(f"unsupported settings type {expected!r} for {key}")
    if not ok:
        raise ConfigError(key, value, allowed, secret=secret)


class _Settings:
    """Base for the settings dataclasses: validation on construction, float coercion."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            # YAML writes 60 for 60.0: accept an int where a float is declared, store a float.
            if hints[f.name] is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        _validate(self)


# --- the settings tree (names follow the seed's YAML) -------------------------------------


@dataclass(frozen=True)
class CircuitBreakerSettings(_Settings):
    default_failure_threshold: int = _setting(
        5, minimum=1, doc="failures in a row that open a breaker")
    default_recovery_timeout: float = _positive(
        60.0, "seconds a breaker stays OPEN before it lets a probe through")
    default_half_open_max_calls: int = _setting(
        1, minimum=1, doc="probe calls a HALF_OPEN breaker admits at once")


@dataclass(frozen=True)
class RetrySettings(_Settings):
    default_max_attempts: int = _setting(3, minimum=1, doc="attempts, the first one included")
    default_initial_delay: float = _setting(
        1.0, minimum=0, doc="seconds before the first retry (before jitter)")
    default_max_delay: float = _setting(
        60.0, minimum=0, doc="cap on the seconds between two attempts")
    default_multiplier: float = _setting(
        2.0, minimum=1, doc="growth of the delay from one retry to the next")
    default_jitter: bool = _setting(
        True, doc="spread each delay randomly over the upper half of its window")


@dataclass(frozen=True)
class RecoverySettings(_Settings):
    alert_min_severity: str = _setting(
        "HIGH", choices=ERROR_SEVERITIES,
        doc="handled errors at this severity or above raise an alert")
    history_size: int = _setting(1000, minimum=1, doc="handled errors kept for get_error_stats()")
    policy_overrides: tuple[str, ...] = _setting(
        [], doc="CATEGORY.SEVERITY=action entries replacing the default policy table "
                "(CATEGORY or SEVERITY may be *)")
    max_tool_retries: int = _setting(
        3, minimum=0, doc="retries handle_tool_failure allows per agent and tool")
    max_embedding_retries: int = _setting(
        3, minimum=0, doc="retries handle_embedding_api_failure allows")
    categories: tuple[str, ...] = _setting(
        [], doc="NAME=LOW/MEDIUM/HIGH/CRITICAL entries adding error categories beside the "
                "built-in seven, with their policy row (actions retry, fallback, skip, abort), "
                "e.g. PAYMENTS=retry/retry/fallback/abort")

    def __post_init__(self) -> None:
        if isinstance(self.alert_min_severity, str):
            object.__setattr__(self, "alert_min_severity", self.alert_min_severity.upper())
        super().__post_init__()
        names: list[str] = []
        for entry in self.categories:
            name, _row = parse_category_entry(entry)
            if name in names:
                raise ConfigError("categories", entry, _CATEGORY_ENTRIES,
                                  hint=f"{name} is given twice")
            names.append(name)
        for entry in self.policy_overrides:
            parse_policy_override(entry, categories=tuple(names))


def log_level_name(level: str) -> str:
    """``level`` as one of :data:`LOG_LEVELS` when it is one in any case or an alias of one
    (``warn`` is WARNING, ``fatal`` CRITICAL, as in the stdlib); otherwise upper-cased, for
    the caller's check to refuse."""
    name = level.strip().upper()
    return LOG_LEVEL_ALIASES.get(name, name)


def parse_policy_override(entry: str, *, categories: tuple[str, ...] = ()
                          ) -> tuple[str, str, str]:
    """``"API_CALL.HIGH=fallback"`` -> ``("API_CALL", "HIGH", "fallback")``; ``*`` matches any.

    ``categories``: the custom category names (``error_handling.recovery.categories``, upper
    case) the entry may name besides the built-in ones.
    """
    target, sep, action = entry.partition("=")
    category, dot, severity = target.strip().upper().partition(".")
    action = action.strip().lower()
    names = ", ".join(ERROR_CATEGORIES)
    if categories:
        names += f" (built-in), {', '.join(categories)} (from categories)"
    allowed = (f"entries look like CATEGORY.SEVERITY=action with CATEGORY in "
               f"{names} or *, SEVERITY in {', '.join(ERROR_SEVERITIES)} "
               f"or *, action in {', '.join(RECOVERY_ACTIONS)}")
    if (not sep or not dot or category not in (*ERROR_CATEGORIES, *categories, "*")
            or severity not in (*ERROR_SEVERITIES, "*") or action not in RECOVERY_ACTIONS):
        raise ConfigError("policy_overrides", entry, allowed)
    return category, severity, action


_CATEGORY_ENTRIES = (
    f"entries look like NAME=LOW/MEDIUM/HIGH/CRITICAL: NAME of letters, digits and _ starting "
    f"with a letter, at most {CATEGORY_NAME_MAX} characters, not one of the built-in "
    f"{', '.join(ERROR_CATEGORIES)}; then four actions separated by /, each one of "
    f"{', '.join(RECOVERY_ACTIONS)}; e.g. PAYMENTS=retry/retry/fallback/abort")


def check_category_name(name: object) -> str:
    """A custom category's name, upper-cased; :class:`ValueError` saying why it cannot be one.

    The rule of ``error_handling.recovery.categories`` and of ``CustomCategory``: a letter,
    then letters, digits or ``_``, at most :data:`CATEGORY_NAME_MAX` characters,
    case-insensitive, and not one of the built-in :data:`ERROR_CATEGORIES`.
    """
    if not isinstance(name, str):
        raise ValueError(f"a category name is a string, not {type(name).__name__}")
    text = name.strip()
    bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c == "_"))), None)
    if not text:
        reason = "is empty"
    elif bad is not None:
        reason = f"holds {bad!r}: only letters, digits and _ are allowed"
    elif not _CATEGORY_NAME.fullmatch(text):
        reason = "must start with a letter"
    elif len(text) > CATEGORY_NAME_MAX:
        reason = f"is {len(text)} characters long, at most {CATEGORY_NAME_MAX} are allowed"
    elif text.upper() in ERROR_CATEGORIES:
        reason = "is a built-in category; a custom one needs another name"
    else:
        return text.upper()
    raise ValueError(f"category name {name!r} {reason}")


def parse_category_entry(entry: str) -> tuple[str, tuple[str, str, str, str]]:
    """``"payments=retry/retry/fallback/abort"`` -> ``("PAYMENTS", ("retry", "retry",
    "fallback", "abort"))``: a custom category and its actions for LOW, MEDIUM, HIGH, CRITICAL.

    A wrong entry is a :class:`ConfigError` on ``categories`` saying what is wrong with it.
    """
    name, sep, row = entry.partition("=")
    actions = [part.strip().lower() for part in row.split("/")]
    try:
        if not sep:
            raise ValueError("no = between the name and the actions")
        name = check_category_name(name)
        if "," in row:
            raise ValueError("separate the actions by /, not ,")
        if len(actions) != len(ERROR_SEVERITIES):
            raise ValueError(f"{len(actions)} action(s) given, {len(ERROR_SEVERITIES)} needed")
        for action in actions:
            if action not in RECOVERY_ACTIONS:
                raise ValueError(f"{action!r} is not an action")
    except ValueError as err:
        raise ConfigError("categories", entry, _CATEGORY_ENTRIES, hint=str(err)) from None
    low, medium, high, critical = actions
    return name, (low, medium, high, critical)


@dataclass(frozen=True)
class ErrorHandlingSettings(_Settings):
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)


@dataclass(frozen=True)
class LoggingSettings(_Settings):
    level: str = _setting("INFO", choices=LOG_LEVELS, doc="minimum level written")
    buffer_size: int = _setting(1000, minimum=1, doc="recent entries kept per logger")
    redact_keys: tuple[str, ...] = _setting(
        ["password", "secret", "token", "api_key", "authorization", "cookie"],
        doc="metadata keys containing any of these (case-insensitive) are written as [REDACTED]")
    max_line_bytes: int = _setting(
        16383, minimum=1024,
        doc="longest JSON log line in bytes, newline excluded; longer ones are cut visibly "
            "(16 KiB with the newline, where container runtimes split lines)")
    service: str = _setting(
        "", doc="the service field of every line; empty: OTEL_SERVICE_NAME (else service.name "
                "in OTEL_RESOURCE_ATTRIBUTES) when set, else no field")
    include_host: bool = _setting(
        False, doc="write the machine's host name (socket.gethostname()) as the host field")
    include_pid: str = _setting(
        "auto", choices=PID_CHOICES,
        doc="write the process id as the pid field (the current one, also after a fork): "
            "auto does so under prometheus_client multiprocess mode (PROMETHEUS_MULTIPROC_DIR)")

    def __post_init__(self) -> None:
        if isinstance(self.level, str):  # "info", "INFO" mean INFO; "warn" WARNING
            object.__setattr__(self, "level", log_level_name(self.level))
        # YAML's true/false, and the spellings boolean variables accept, mean true/false.
        pid: object = self.include_pid  # as given: YAML may have made it a bool
        if isinstance(pid, bool):
            object.__setattr__(self, "include_pid", "true" if pid else "false")
        elif isinstance(pid, str):
            pid = pid.strip().lower()
            object.__setattr__(self, "include_pid", _BOOL_WORDS.get(pid, pid))
        else:  # a number or a list: name the choices rather than "expected a string"
            raise ConfigError("include_pid", pid, f"must be one of {', '.join(PID_CHOICES)}")
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
class MetricsSettings(_Settings):
    retention_count: int = _setting(1000, minimum=1, doc="recent records kept per metric name")
    max_series_per_metric: int = _setting(
        500, minimum=1, doc="label sets per metric before new ones go to one 'other' series")


@dataclass(frozen=True)
class TracingSettings(_Settings):
    enabled: bool = _setting(True, doc="record traces (ids are still made when off)")
    trace_retention: int = _setting(1000, minimum=1, doc="completed trace entries kept")
    max_active_traces: int = _setting(
        10000, minimum=1, doc="entries started but not ended; the oldest is dropped past it")
    export: str = _setting(
        "auto", choices=EXPORT_CHOICES,
        doc="send sampled spans over OTLP/HTTP (needs vigil[otel]): auto does when "
            "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set "
            "(and OTEL_TRACES_EXPORTER, when set, names otlp); otlp always; none never")
    exit_flush_timeout: float = _setting(
        5.0, minimum=0, doc="seconds the interpreter's exit waits for queued spans to be "
                            "exported (0: no wait); what is left is logged")
    opentelemetry_context: bool = _setting(
        True, doc="share the current span with OpenTelemetry's context once opentelemetry-api "
                  "is imported: each side's spans become the other's children")


@dataclass(frozen=True)
class ResourceMonitoringSettings(_Settings):
    enabled: bool = _setting(True, doc="allow the background resource sampler")
    interval: float = _positive(5.0, "seconds between two resource samples")


@dataclass(frozen=True)
class AlertSettings(_Settings):
    buffer_size: int = _setting(1000, minimum=1, doc="recent alerts kept")
    buffer_max_bytes: int = _setting(
        16_777_216, minimum=1, doc="bytes the recent alerts may hold; past it the oldest go")
    dedup_window: float = _setting(
        60.0, minimum=0, doc="seconds in which a repeated alert is counted, not dispatched")
    handler_timeout: float = _positive(
        10.0, "seconds a handler may run before it is reported as hung")
    queue_size: int = _setting(1000, minimum=1, doc="alerts waiting per handler before drops")
    exit_flush_timeout: float = _setting(
        5.0, minimum=0, doc="seconds the interpreter's exit waits for handlers to finish the "
                            "alerts sent before it (0: no wait); what is left is logged")


@dataclass(frozen=True)
class MonitoringSettings(_Settings):
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    resource_monitoring: ResourceMonitoringSettings = field(
        default_factory=ResourceMonitoringSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)


@dataclass(frozen=True)
class ExporterSettings(_Settings):
    host: str = _setting("127.0.0.1", doc="address the exporter binds (loopback unless told)")
    port: int = _setting(9464, minimum=0, doc="TCP port of the exporter (0: any free port)")
    webhook_path: str = _setting(
        "/alertmanager/webhook", doc="path of the Alertmanager webhook receiver")
    webhook_bearer_token: str = _setting(
        "", secret=True,
        doc="token the webhook requires as 'Authorization: Bearer ...' (empty: no token)")
    webhook_username: str = _setting(
        "", doc="user the webhook requires with HTTP basic auth (empty: no basic auth)")
    webhook_password: str = _setting("", secret=True, doc="password for webhook_username")
    api_bearer_token: str = _setting(
        "", secret=True,
        doc="token /metrics, /api/* and the docs require as 'Authorization: Bearer ...' "
            "(Prometheus: authorization.credentials); empty: none. /healthz, /readyz open")
    api_username: str = _setting(
        "", doc="user /metrics, /api/* and the docs require with HTTP basic auth "
                "(Prometheus: basic_auth); empty: no basic auth")
    api_password: str = _setting("", secret=True, doc="password for api_username")
    allowed_hosts: tuple[str, ...] = _setting(
        [], doc="Host header names answered besides localhost, 127.0.0.1, [::1], the bound "
                "address and (bound beyond loopback) the machine's hostname; .example.com "
                "matches its subdomains, * any host; others get 421 (DNS rebinding)")
    allowed_origins: tuple[str, ...] = _setting(
        [], doc="browser origins (scheme://host[:port]) allowed besides the exporter's own to "
                "call the webhook, /api/* and /metrics; * allows any; others get 403")
    docs_enabled: bool = _setting(
        False, doc="serve Swagger UI at /docs and ReDoc at /redoc (their scripts load from "
                   "the jsDelivr CDN); /openapi.json is always served")
    require_webhook_credentials: bool = _setting(
        False, doc="refuse to start when host is beyond loopback and the webhook has no "
                   "credentials (the container image sets it)")
    max_body_bytes: int = _setting(
        1_048_576, minimum=1, doc="largest request body accepted; larger ones get 413")
    api_max_bytes: int = _setting(
        8_388_608, minimum=1024, doc="largest answer of a /api/* list: entries past it are "
                                     "left out (the answer says how many it kept)")
    webhook_dedup_size: int = _setting(
        10_000, minimum=1,
        doc="alert identities remembered (in the store) to drop Alertmanager's redeliveries")
    replica_labels: tuple[str, ...] = _setting(
        ["replica", "prometheus_replica", "__replica__"],
        doc="labels that tell the replicas of an HA Prometheus pair apart; ignored when "
            "deciding whether an alert is a redelivery")
    state_dir: str = _setting(
        "", doc="folder of the alert store (SQLite); empty: $XDG_STATE_HOME/vigil, else "
                "~/.local/state/vigil (vigil demo: a temporary folder)")
    store_url: str = _setting(
        "", secret=True,
        doc="empty: SQLite in state_dir; redis://host:port/db: a Redis store shared by "
            "receivers on several hosts (the redis extra); its user:password@ is never shown")
    store_max_alerts: int = _setting(
        10_000, minimum=1, doc="alerts waiting for their handlers; when full the webhook "
                               "answers 503 so Alertmanager retries")
    store_max_bytes: int = _setting(
        67_108_864, minimum=1, doc="bytes of the alerts waiting for their handlers; when "
                                   "full the webhook answers 503")
    dead_letter_limit: int = _setting(
        10_000, minimum=0, doc="dead-lettered deliveries kept for inspection; past it the "
                               "oldest are discarded (counted and logged)")
    delivery_max_attempts: int = _setting(
        5, minimum=1, doc="calls of a handler for one alert before it is dead-lettered")
    delivery_initial_delay: float = _setting(
        1.0, minimum=0, doc="seconds before a failed delivery is tried again (doubling)")
    delivery_max_delay: float = _setting(
        300.0, minimum=0, doc="cap on the seconds between two delivery attempts")
    delivery_poll_interval: float = _positive(
        0.5, "seconds between two looks at the store for alerts that another receiver "
             "process accepted")
    lease_seconds: float = _positive(
        30.0, "seconds a delivery stays claimed by a receiver that stopped renewing it "
              "(one that died on another host) before another takes it over")
    shutdown_timeout: float = _positive(
        10.0, "seconds a stop waits for running handler calls; what is left stays in the "
              "store for the next start")
    request_timeout: float = _positive(
        10.0, "seconds from the end of a request's head to the last byte of its body (the "
              "whole body, not each chunk); past it: 408 and the connection is closed")
    head_timeout: float = _positive(
        10.0, "seconds from a connection's opening, or the end of the previous answer on a "
              "keep-alive connection, to the end of the request head (request line and "
              "headers); past it: 408 (nothing when no byte came) and the connection is closed")
    write_timeout: float = _positive(
        10.0, "seconds an answer may wait with the client reading none of it (the server's "
              "send buffer full); past it the connection is aborted and the answer freed")
    max_connections: int = _setting(
        1000, minimum=1, doc="open client connections at most, lowered at start to the "
                             "open-file limit minus 128; past it the oldest connection "
                             "waiting for a request head is closed, or the new one gets 503")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.port > 65535:
            raise ConfigError("port", self.port, "must be between 0 and 65535")
        if not self.webhook_path.startswith("/"):
            raise ConfigError("webhook_path", self.webhook_path, "must start with /")
        if self.store_url and not self.store_url.startswith(("redis://", "rediss://",
                                                              "unix://")):
            # Not shown at all: a password may be anywhere in a URL that is not one.
            raise ConfigError("store_url", self.store_url,
                              "expected empty (SQLite in state_dir) or a redis://, rediss:// "
                              "or unix:// URL", hint="not shown: it may hold a password",
                              secret=True)
        if self.delivery_max_delay < self.delivery_initial_delay:
            raise ConfigError("delivery_max_delay", self.delivery_max_delay,
                              f"must be >= delivery_initial_delay "
                              f"({self.delivery_initial_delay!r})")
        for user in ("webhook", "api"):
            if bool(getattr(self, f"{user}_username")) != bool(getattr(self, f"{user}_password")):
                raise ConfigError(f"{user}_username", getattr(self, f"{user}_username"),
                                  f"basic auth needs both {user}_username and {user}_password")
        for host in self.allowed_hosts:
            if host != "*" and not _HOST_ENTRY.fullmatch(host):
                raise ConfigError("allowed_hosts", host,
                                  "expected host names or IP addresses (no scheme, port or "
                                  "path), .example.com for a domain and its subdomains, or *")
        for origin in self.allowed_origins:
            if origin != "*" and not _ORIGIN_ENTRY.fullmatch(origin):
                raise ConfigError("allowed_origins", origin,
                                  "expected origins such as https://grafana.example or "
                                  "http://localhost:3000 (scheme://host[:port], no path), or *")
        if (self.require_webhook_credentials and not is_loopback_host(self.host)
                and not (self.webhook_bearer_token or self.webhook_username)):
            raise ConfigError(
                "require_webhook_credentials", True,
                f"host {self.host} is beyond loopback and the webhook has no credentials: set "
                "exporter.webhook_bearer_token (VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN, or "
                "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE naming a file that holds it), or "
                "webhook_username and webhook_password")

    def __repr__(self) -> str:
        return _masked_repr(self)


_HOST_ENTRY = re.compile(r"\.?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?|\[[0-9A-Fa-f:.]+\]"
                         r"|[0-9A-Fa-f:.]+")
_ORIGIN_ENTRY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                           r"(:[0-9]{1,5})?/?")


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine (localhost, 127.x, ::1)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def mask_url(url: str) -> str:
    """``url`` with its ``user:password@`` and query masked: ``redis://***@host:6379/0``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    if "?" in rest:
        rest = rest.split("?", 1)[0] + "?***"
    return f"{scheme}{sep}{rest}"


def _masked_repr(obj: Any) -> str:
    """The dataclass repr of ``obj`` with secret fields as '***' (or '' when unset)."""
    parts = []
    for f in dataclasses.fields(obj):
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        if f.metadata.get("secret") and isinstance(value, str) and value:
            shown = repr(mask_url(value)) if f.name.endswith("_url") else "'***'"
        elif f.metadata.get("secret") and not isinstance(value, str):
            shown = repr(_Hidden(value))
        else:
            shown = repr(value)
        parts.append(f"{f.name}={shown}")
    return f"{type(obj).__qualname__}({', '.join(parts)})"


@dataclass(frozen=True)
class VigilConfig(_Settings):
    """All of vigil's settings. Build it with :func:`load_config`; it is immutable."""

    error_handling: ErrorHandlingSettings = field(default_factory=ErrorHandlingSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    exporter: ExporterSettings = field(default_factory=ExporterSettings)


# --- building from mappings ---------------------------------------------------------------


def _build(cls: type[Any], data: Mapping[str, Any], path: str) -> Any:
    """Build settings class ``cls`` from ``data``, naming the full key path in any error."""
    if not isinstance(data, Mapping):  # a whole section: it may hold secrets
        raise ConfigError(path or "<root>", data, f"expected a mapping of {cls.__name__}",
                          secret=True)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"did you mean {(path + '.' if path else '') + close[0]!r}?" if close else ""
            # Not shown: an unknown key may be a misspelt secret.
            raise ConfigError(key_path, value, f"unknown key; known: {', '.join(names)}",
                              hint=hint, secret=True)
        expected = hints[key]
        nested = isinstance(expected, type) and dataclasses.is_dataclass(expected)
        kwargs[key] = _build(expected, value, key_path) if nested else value
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(path) if path else err from None


def _to_mapping(obj: Any) -> dict[str, Any]:
    return {f.name: (_to_mapping(v) if dataclasses.is_dataclass(v := getattr(obj, f.name))
                     else v) for f in dataclasses.fields(obj)}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _leaves(cls: type[Any], path: str = "") -> list[tuple[str, dataclasses.Field[Any], Any]]:
    """Every settings leaf as (dotted path, field, declared type)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(_leaves(hints[f.name], key))
        else:
            out.append((key, f, hints[f.name]))
    return out


def env_variables() -> dict[str, tuple[str, dataclasses.Field[Any], Any]]:
    """The ``VIGIL_*`` variable for every setting: name -> (key path, field, type)."""
    return {ENV_PREFIX + key.replace(".", "_").upper(): (key, f, t)
            for key, f, t in _leaves(VigilConfig)}


def _parse_env(name: str, key: str, raw: str, expected: Any) -> Any:
    text = raw.strip()
    try:
        if expected is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
        if typing.get_origin(expected) is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return text
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(expected, "")
        raise ConfigError(key, raw, f"{name} must be {kind}") from None


def _read_secret_file(name: str, raw: str) -> str:
    """The secret in the file that variable ``name`` names, without surrounding whitespace."""
    path = Path(raw.strip())
    try:
        with path.open("rb") as file:
            data = file.read(_SECRET_FILE_LIMIT + 1)
    except OSError as err:
        raise ConfigError(name, str(path), f"cannot read the secret file: "
                                           f"{err.strerror or type(err).__name__}") from None
    if len(data) > _SECRET_FILE_LIMIT:
        raise ConfigError(name, str(path), f"the secret file is larger than "
                                           f"{_SECRET_FILE_LIMIT} bytes: not a secret?")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(name, str(path), "the secret file is not UTF-8 text") from None


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    table = env_variables()
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        from_file = name.endswith(FILE_SUFFIX) and name[:-len(FILE_SUFFIX)] in table
        if from_file:
            base = name[:-len(FILE_SUFFIX)]
            if not table[base][1].metadata.get("secret"):
                secrets = ", ".join(n for n, (_k, f, _t) in table.items()
                                    if f.metadata.get("secret"))
                raise ConfigError(name, raw, f"{base} is not a secret setting; the ones read "
                                             f"from a file are {secrets}")
            if not raw.strip():
                continue  # empty: not used (an image may set it for others to fill)
            if environ.get(base):
                raise ConfigError(name, raw, f"both {base} and {name} are set; set one of "
                                             "them")
        elif name not in table:
            # Other VIGIL_* variables may belong to the exporter or the user; only flag the
            # ones that look like a misspelt setting (without their value: it may be a secret).
            close = difflib.get_close_matches(name, table, n=1, cutoff=0.85)
            if close:
                raise ConfigError(name, raw, "unknown environment variable",
                                  hint=f"did you mean {close[0]}?", secret=True)
            continue
        elif environ.get(name + FILE_SUFFIX, "").strip():
            continue  # empty, beside its _FILE variant (else the _FILE branch has failed)
        key, _field, expected = table[base if from_file else name]
        value = (_read_secret_file(name, raw) if from_file else
                 _parse_env(name, key, raw, expected))
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return overrides


def _read_file(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(CONFIG_FILE_ENV if path == os.environ.get(CONFIG_FILE_ENV) else "file",
                          str(file), f"cannot read it: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError("file", str(file),
                          f"is not valid YAML at {where}: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError("file", str(file), f"is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):  # not shown: it may be a secret file given by mistake
        raise ConfigError("<root>", data, f"{file} must hold a mapping at the top level",
                          secret=True)
    return data


Source = str | os.PathLike[str] | Mapping[str, Any] | VigilConfig | None


def load_config(source: Source = None, *, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> VigilConfig:
    """Build a :class:`VigilConfig` without installing it.

    ``source`` is a YAML path, a (partial) mapping in the file's shape, or ``None`` for the file
    named by ``VIGIL_CONFIG`` (if any). ``VIGIL_*`` variables from ``environ`` (default: the
    process environment) override both; ``overrides`` (a partial mapping in the file's shape:
    the command line's options) override everything.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = _to_mapping(VigilConfig())
    if isinstance(source, VigilConfig):
        data = _to_mapping(source)
    elif isinstance(source, Mapping):
        data = _merge(data, source)
    elif source is not None:
        data = _merge(data, _read_file(source))
    elif env.get(CONFIG_FILE_ENV):
        data = _merge(data, _read_file(env[CONFIG_FILE_ENV]))
    data = _merge(data, _from_environment(env))
    if overrides:
        data = _merge(data, overrides)
    built: VigilConfig = _build(VigilConfig, data, "")
    return built


# --- the active configuration -------------------------------------------------------------

_lock = threading.Lock()
_current: VigilConfig | None = None
_DEFAULTS = VigilConfig()  # what get_config_or_defaults answers when loading fails
_listeners: list[Callable[[VigilConfig], None]] = []


SettingsT = typing.TypeVar("SettingsT")


def with_arguments(settings: SettingsT,
                   arguments: Mapping[str, tuple[str, object]]) -> SettingsT:
    """``settings`` with the constructor arguments that were given in place of the configured
    values: the one rule for explicit arguments (see "Configuration" in the README).

    ``arguments`` maps a settings field to ``(argument name, value)``; a value of ``None``
    means "not given". Components call this at construction *and* on every later
    :func:`configure`, so an argument given to a constructor is never overwritten by
    configuration. The settings class validates the values as it validates a file; the
    :class:`ConfigError` names the argument (``retention: got 0; ...`` for
    ``ExecutionTracer(retention=0)``).
    """
    given = {field: value for field, (_, value) in arguments.items() if value is not None}
    if not given:
        return settings
    try:
        return dataclasses.replace(settings, **given)  # type: ignore[type-var]
    except ConfigError as err:
        argument = arguments.get(err.key, (err.key, None))[0]
        raise ConfigError(argument, err.value, err.allowed, hint=err.hint) from None


def get_config() -> VigilConfig:
    """The active configuration, loaded on first use from ``VIGIL_CONFIG`` and ``VIGIL_*``.

    Raises :class:`ConfigError` when they are wrong. ``import vigil`` never calls it: vigil's
    shared objects are built on first use (see :mod:`vigil._lazy`), so a bad variable is
    reported by the first call that needs the configuration.
    """
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = load_config()
    return _current


def get_config_or_defaults() -> VigilConfig:
    """The active configuration, or the built-in defaults when it cannot load: for code that
    must not raise (the interpreter's exit flushes), where the first call that needed the
    configuration has reported the error already."""
    try:
        return get_config()
    except ConfigError:
        return _DEFAULTS


def configure(path_or_mapping: Source = None, *,
              overrides: Mapping[str, Any] | None = None) -> VigilConfig:
    """Load a configuration, make it the active one and apply it to vigil's shared objects.

    Objects built afterwards read it; the module-level singletons (``performance_monitor``,
    ``execution_tracer``, ``alert_manager``, loggers without an explicit level) are updated.
    Returns the configuration. Raises :class:`ConfigError` and changes nothing on bad input.
    ``overrides`` win over the file and the environment (see :func:`load_config`).
    """
    global _current
    config = load_config(path_or_mapping, overrides=overrides)
    with _lock:
        _current = config
        listeners = list(_listeners)
    for listener in listeners:
        listener(config)
    return config


def on_configure(listener: Callable[[VigilConfig], None]) -> Callable[[VigilConfig], None]:
    """Call ``listener(config)`` each time :func:`configure` installs a configuration."""
    with _lock:
        _listeners.append(listener)
    return listener


def _reset_for_tests() -> None:
    """Forget the active configuration (the next :func:`get_config` loads it again)."""
    global _current
    with _lock:
        _current = None

