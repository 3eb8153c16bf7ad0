"""vigil.config as a package: every name the single module had, one home per name, the live
configuration, and the tables the modules share."""

from __future__ import annotations

import importlib
import pkgutil
import traceback

import pytest

import vigil.config
from vigil.config import ConfigError, ExporterSettings, LoggingSettings, load_config
from vigil.config.kinds import BOOL_WORDS

# Every public name vigil/config.py had before it became a package.
FORMER_NAMES = (
    "AlertSettings", "CATEGORY_NAME_MAX", "CONFIG_FILE_ENV", "CircuitBreakerSettings",
    "ConfigError", "ENV_PREFIX", "ERROR_CATEGORIES", "ERROR_SEVERITIES", "EXPORT_CHOICES",
    "ErrorHandlingSettings", "ExporterSettings", "FILE_SUFFIX", "LOG_LEVELS",
    "LOG_LEVEL_ALIASES", "LoggingSettings", "MetricsSettings", "MonitoringSettings",
    "PID_CHOICES", "RECOVERY_ACTIONS", "RecoverySettings", "ResourceMonitoringSettings",
    "RetrySettings", "SERVICE_MAX_CHARS", "SettingsT", "Source", "TracingSettings",
    "VigilConfig", "check_category_name", "configure", "env_variables", "get_config",
    "get_config_or_defaults", "is_loopback_host", "load_config", "log_level_name", "mask_url",
    "on_configure", "parse_category_entry", "parse_policy_override", "with_arguments",
)
SUBMODULES = sorted(f"vigil.config.{m.name}" for m in pkgutil.iter_modules(vigil.config.__path__))


def test_every_former_name_is_still_importable() -> None:
    """Each public name of the former vigil/config.py resolves on vigil.config."""
    missing = [name for name in FORMER_NAMES if not hasattr(vigil.config, name)]
    assert missing == []


def test_each_reexported_name_is_its_home_modules_object() -> None:
    """vigil.config.X is the object a submodule defines (or re-exports), not a copy."""
    homes = {name: module for module in SUBMODULES
             for name in importlib.import_module(module).__all__}
    for name in vigil.config.__all__:
        assert name in homes, name
        assert getattr(vigil.config, name) is getattr(importlib.import_module(homes[name]), name)


@pytest.mark.parametrize("module", ["vigil.config", *SUBMODULES])
def test_each_module_says_its_job_and_lists_sorted_names(module: str) -> None:
    """Every module of the package has a docstring and a sorted __all__ whose names exist."""
    imported = importlib.import_module(module)
    assert (imported.__doc__ or "").strip(), module
    assert imported.__all__ == sorted(imported.__all__)
    assert all(hasattr(imported, name) for name in imported.__all__)


def test_a_traceback_names_the_public_home_of_config_error() -> None:
    """An uncaught ConfigError prints as vigil.config.ConfigError, where users import it."""
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"exporter": {"port": -1}}, environ={})
    text = "".join(traceback.format_exception_only(info.type, info.value))
    assert text.startswith("vigil.config.ConfigError: exporter.port: got -1")


@pytest.mark.parametrize("word", sorted({*BOOL_WORDS, "true", "false", "TRUE", "Off"}))
def test_boolean_words_mean_the_same_to_a_variable_and_to_include_pid(word: str) -> None:
    """Each spelling of true/false a boolean VIGIL_* variable takes, include_pid takes too,
    with the same meaning (one table)."""
    flag = load_config(environ={"VIGIL_EXPORTER_DOCS_ENABLED": word}).exporter.docs_enabled
    assert LoggingSettings(include_pid=word).include_pid == ("true" if flag else "false")


@pytest.mark.parametrize("word", ["maybe", "2", "tru"])
def test_a_non_boolean_word_is_refused_by_both(word: str) -> None:
    """A word that is no spelling of true/false is a ConfigError for a boolean variable and
    for include_pid, each naming what is allowed."""
    with pytest.raises(ConfigError, match="VIGIL_EXPORTER_DOCS_ENABLED must be true or false"):
        load_config(environ={"VIGIL_EXPORTER_DOCS_ENABLED": word})
    with pytest.raises(ConfigError, match="must be one of auto, true, false"):
        LoggingSettings(include_pid=word)


@pytest.mark.parametrize(("variable", "text", "noun"), [
    ("VIGIL_EXPORTER_PORT", "abc", "an integer"),
    ("VIGIL_MONITORING_ALERTS_DEDUP_WINDOW", "soon", "a number"),
    ("VIGIL_MONITORING_TRACING_ENABLED", "perhaps", "true or false"),
])
def test_a_variable_and_a_file_name_the_same_kind(variable: str, text: str, noun: str) -> None:
    """A bad variable says '<VARIABLE> must be <noun>', the same value in a file says
    'expected <noun>': one wording per declared type."""
    with pytest.raises(ConfigError) as from_env:
        load_config(environ={variable: text})
    assert from_env.value.allowed == f"{variable} must be {noun}"
    key = from_env.value.key
    *parents, leaf = key.split(".")
    mapping: dict[str, object] = {leaf: text}
    for part in reversed(parents):
        mapping = {part: mapping}
    with pytest.raises(ConfigError) as from_file:
        load_config(mapping, environ={})
    assert (from_file.value.key, from_file.value.allowed) == (key, f"expected {noun}")


def test_exporter_checks_report_the_first_wrong_field_in_order() -> None:
    """With several cross-field mistakes, the one reported is the first in the documented
    order; fixing it reports the next (and store_url's value is never shown)."""
    wrong: dict[str, object] = {
        "port": 70000, "webhook_path": "hook", "store_url": "http://u:pw@h",
        "delivery_initial_delay": 9.0, "delivery_max_delay": 1.0, "api_username": "u",
        "allowed_hosts": ("a b",), "allowed_origins": ("nope",), "host": "0.0.0.0",
        "require_webhook_credentials": True}
    steps: list[tuple[str, dict[str, object]]] = [
        ("port", {"port": 9464}),
        ("webhook_path", {"webhook_path": "/hook"}), ("store_url", {"store_url": ""}),
        ("delivery_max_delay", {"delivery_max_delay": 9.0}), ("api_username", {"api_username": ""}),
        ("allowed_hosts", {"allowed_hosts": ()}), ("allowed_origins", {"allowed_origins": ()}),
        ("require_webhook_credentials", {"webhook_bearer_token": "t"})]
    for key, fix in steps:
        with pytest.raises(ConfigError) as info:
            ExporterSettings(**wrong)  # type: ignore[arg-type]
        assert info.value.key == key
        assert "pw" not in str(info.value)
        wrong.update(fix)
    assert ExporterSettings(**wrong).webhook_bearer_token == "t"  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "good", "bad"), [
    ("allowed_hosts", (".example.com", "*", "[::1]"), "example.com:80"),
    ("allowed_origins", ("https://grafana.example", "*"), "https://grafana.example/path"),
])
def test_host_and_origin_entries_each_name_their_own_key(
        key: str, good: tuple[str, ...], bad: str) -> None:
    """allowed_hosts and allowed_origins share one entry check: good entries pass, a bad one
    is a ConfigError naming that key and the entry."""
    assert getattr(ExporterSettings(**{key: good}), key) == good  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        ExporterSettings(**{key: (*good, bad)})  # type: ignore[arg-type]
    assert (info.value.key, info.value.value) == (key, bad)
