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

This package only re-exports; one module per job:

* :mod:`~vigil.config.errors` ConfigError; :mod:`~vigil.config.masking` how secrets are shown;
* :mod:`~vigil.config.kinds` the declarable value types (check, parse, wording);
  :mod:`~vigil.config.fields` declaring a setting and validating a settings dataclass;
* the settings tree: :mod:`~vigil.config.error_handling`, :mod:`~vigil.config.monitoring`,
  :mod:`~vigil.config.exporter`, under :mod:`~vigil.config.root`; the words they take:
  :mod:`~vigil.config.levels`, :mod:`~vigil.config.recovery_entries`, :mod:`~vigil.config.hosts`;
* the sources: :mod:`~vigil.config.yaml_file`, :mod:`~vigil.config.environment` (with
  :mod:`~vigil.config.secret_files`), their precedence in :mod:`~vigil.config.loading`, over
  :mod:`~vigil.config.mapping` (settings to and from nested mappings);
* :mod:`~vigil.config.active` the process-wide configuration and its listeners;
  :mod:`~vigil.config.arguments` explicit constructor arguments over configured values.

The live configuration is :mod:`vigil.config.active`'s (``_current``): read it with
:func:`get_config`, replace it with :func:`configure`.
"""

from __future__ import annotations

from vigil.config.active import configure, get_config, get_config_or_defaults, on_configure
from vigil.config.arguments import SettingsT as SettingsT
from vigil.config.arguments import with_arguments
from vigil.config.environment import ENV_PREFIX, FILE_SUFFIX, env_variables
from vigil.config.error_handling import (
    CircuitBreakerSettings,
    ErrorHandlingSettings,
    RecoverySettings,
    RetrySettings,
)
from vigil.config.errors import ConfigError
from vigil.config.exporter import ExporterSettings
from vigil.config.hosts import is_loopback_host
from vigil.config.levels import LOG_LEVEL_ALIASES, LOG_LEVELS, log_level_name
from vigil.config.loading import Source, load_config
from vigil.config.masking import mask_url
from vigil.config.monitoring import (
    EXPORT_CHOICES,
    PID_CHOICES,
    SERVICE_MAX_CHARS,
    AlertSettings,
    LoggingSettings,
    MetricsSettings,
    MonitoringSettings,
    ResourceMonitoringSettings,
    TracingSettings,
)
from vigil.config.recovery_entries import (
    CATEGORY_NAME_MAX,
    ERROR_CATEGORIES,
    ERROR_SEVERITIES,
    RECOVERY_ACTIONS,
    check_category_name,
    parse_category_entry,
    parse_policy_override,
)
from vigil.config.root import VigilConfig
from vigil.config.yaml_file import CONFIG_FILE_ENV

__all__ = [
    "AlertSettings",
    "CATEGORY_NAME_MAX",
    "CONFIG_FILE_ENV",
    "CircuitBreakerSettings",
    "ConfigError",
    "ENV_PREFIX",
    "ERROR_CATEGORIES",
    "ERROR_SEVERITIES",
    "EXPORT_CHOICES",
    "ErrorHandlingSettings",
    "ExporterSettings",
    "FILE_SUFFIX",
    "LOG_LEVELS",
    "LOG_LEVEL_ALIASES",
    "LoggingSettings",
    "MetricsSettings",
    "MonitoringSettings",
    "PID_CHOICES",
    "RECOVERY_ACTIONS",
    "RecoverySettings",
    "ResourceMonitoringSettings",
    "RetrySettings",
    "SERVICE_MAX_CHARS",
    "Source",
    "TracingSettings",
    "VigilConfig",
    "check_category_name",
    "configure",
    "env_variables",
    "get_config",
    "get_config_or_defaults",
    "is_loopback_host",
    "load_config",
    "log_level_name",
    "mask_url",
    "on_configure",
    "parse_category_entry",
    "parse_policy_override",
    "with_arguments",
]
