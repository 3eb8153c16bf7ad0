"""vigil.config: defaults < file < environment, and errors that say what is wrong."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import vigil
from vigil.config import (
    ConfigError,
    VigilConfig,
    configure,
    env_variables,
    get_config,
    load_config,
    on_configure,
)

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "fixtures" / "seed.md"


def _seed_yaml() -> str:
    text = SEED.read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(# config/monitoring.yaml\n.*?)```", text, re.S)
    assert match is not None
    return match.group(1)


def test_defaults_match_the_seed() -> None:
    """With no file and no environment the values are the seed's documented defaults."""
    config = load_config(environ={})
    assert config.error_handling.circuit_breaker.default_failure_threshold == 5
    assert config.error_handling.circuit_breaker.default_recovery_timeout == 60.0
    assert config.error_handling.retry.default_max_attempts == 3
    assert config.error_handling.retry.default_initial_delay == 1.0
    assert config.error_handling.retry.default_max_delay == 60.0
    assert config.monitoring.logging.level == "INFO"
    assert config.monitoring.logging.buffer_size == 1000
    assert config.monitoring.metrics.retention_count == 1000
    assert config.monitoring.tracing.trace_retention == 1000
    assert config.monitoring.resource_monitoring.interval == 5.0


@pytest.mark.skipif(not SEED.exists(), reason="the seed document is not beside the repository")
def test_seed_example_loads_unchanged(tmp_path: Path) -> None:
    """The YAML printed in the seed's Configuration section loads as it is."""
    path = tmp_path / "monitoring.yaml"
    path.write_text(_seed_yaml(), encoding="utf-8")
    config = load_config(path, environ={})
    assert config == load_config(environ={})


def test_shipped_config_file_loads() -> None:
    """config/monitoring.yaml, shipped in the repository, is valid and holds the defaults."""
    assert load_config(REPO / "config" / "monitoring.yaml", environ={}) == VigilConfig()


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    """The order is defaults < file < VIGIL_* variables."""
    path = tmp_path / "c.yaml"
    path.write_text("monitoring:\n  logging:\n    level: DEBUG\n    buffer_size: 10\n")
    config = load_config(path, environ={"VIGIL_MONITORING_LOGGING_BUFFER_SIZE": "20"})
    assert config.monitoring.logging.level == "DEBUG"
    assert config.monitoring.logging.buffer_size == 20
    assert config.monitoring.metrics.retention_count == 1000


def test_vigil_config_variable_names_the_file(tmp_path: Path) -> None:
    """Without an argument, the file named by VIGIL_CONFIG is read."""
    path = tmp_path / "c.yaml"
    path.write_text("monitoring:\n  tracing:\n    trace_retention: 7\n")
    config = load_config(environ={"VIGIL_CONFIG": str(path)})
    assert config.monitoring.tracing.trace_retention == 7


def test_environment_values_are_parsed_by_type() -> None:
    """Booleans, numbers and comma lists from the environment become typed values."""
    config = load_config(environ={
        "VIGIL_MONITORING_TRACING_ENABLED": "false",
        "VIGIL_MONITORING_RESOURCE_MONITORING_INTERVAL": "2.5",
        "VIGIL_MONITORING_LOGGING_REDACT_KEYS": "pin, ssn",
    })
    assert config.monitoring.tracing.enabled is False
    assert config.monitoring.resource_monitoring.interval == 2.5
    assert config.monitoring.logging.redact_keys == ("pin", "ssn")


def test_every_setting_has_a_distinct_environment_variable() -> None:
    """Each leaf key maps to exactly one VIGIL_* name built from its path."""
    table = env_variables()
    paths = [path for path, _field, _type in table.values()]
    assert len(set(paths)) == len(paths)
    assert table["VIGIL_MONITORING_LOGGING_LEVEL"][0] == "monitoring.logging.level"
    assert "VIGIL_ERROR_HANDLING_CIRCUIT_BREAKER_DEFAULT_FAILURE_THRESHOLD" in table


def test_negative_threshold_names_key_value_and_rule() -> None:
    """A negative threshold is rejected with its full key path, the value and the bound."""
    with pytest.raises(ConfigError) as info:
        load_config({"error_handling": {"circuit_breaker": {"default_failure_threshold": -1}}},
                    environ={})
    err = info.value
    assert err.key == "error_handling.circuit_breaker.default_failure_threshold"
    assert err.value == -1
    assert ">= 1" in str(err)
    assert str(err).startswith("error_handling.circuit_breaker.default_failure_threshold")


def test_wrong_type_is_rejected() -> None:
    """A string where a number belongs is an error, not a silent coercion."""
    with pytest.raises(ConfigError, match=r"monitoring\.logging\.buffer_size.*expected an integer"):
        load_config({"monitoring": {"logging": {"buffer_size": "big"}}}, environ={})
    with pytest.raises(ConfigError, match="expected true or false"):
        load_config({"monitoring": {"tracing": {"enabled": "yes"}}}, environ={})


def test_unknown_key_suggests_the_closest() -> None:
    """A misspelt key names itself and suggests the valid key it resembles."""
    with pytest.raises(ConfigError) as info:
        load_config({"monitoring": {"logging": {"buffer_sise": 5}}}, environ={})
    assert info.value.key == "monitoring.logging.buffer_sise"
    assert "did you mean 'monitoring.logging.buffer_size'" in str(info.value)


def test_unknown_section_is_rejected() -> None:
    """An unknown top-level section is an error listing the known ones."""
    with pytest.raises(ConfigError, match="known: error_handling, monitoring"):
        load_config({"monitorin": {}}, environ={})


def test_bad_yaml_reports_its_line(tmp_path: Path) -> None:
    """Invalid YAML is reported with the line where the parser stopped."""
    path = tmp_path / "bad.yaml"
    path.write_text("monitoring:\n  logging:\n    level: [INFO\n  metrics: {}\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(path, environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_invalid_log_level_lists_the_levels() -> None:
    """An unknown log level is rejected with the allowed levels; lower case is accepted."""
    with pytest.raises(ConfigError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        load_config({"monitoring": {"logging": {"level": "LOUD"}}}, environ={})
    assert load_config({"monitoring": {"logging": {"level": "debug"}}},
                       environ={}).monitoring.logging.level == "DEBUG"


def test_bad_environment_value_names_the_variable() -> None:
    """An unparsable environment value names the variable and its key."""
    with pytest.raises(ConfigError) as info:
        load_config(environ={"VIGIL_MONITORING_METRICS_RETENTION_COUNT": "lots"})
    assert info.value.key == "monitoring.metrics.retention_count"
    assert "VIGIL_MONITORING_METRICS_RETENTION_COUNT" in str(info.value)


def test_misspelt_environment_variable_is_flagged() -> None:
    """A VIGIL_* variable one letter off a setting is an error with the suggestion."""
    with pytest.raises(ConfigError, match="did you mean VIGIL_MONITORING_LOGGING_LEVEL"):
        load_config(environ={"VIGIL_MONITORING_LOGGING_LEVLE": "DEBUG"})


def test_unrelated_vigil_variables_are_left_alone() -> None:
    """Variables not resembling any setting (the exporter's, the user's) are ignored."""
    assert load_config(environ={"VIGIL_EXPORTER_TOKEN": "x"}) == VigilConfig()


def test_config_is_frozen() -> None:
    """Settings cannot be changed after construction."""
    config = load_config(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.monitoring.logging.level = "DEBUG"  # type: ignore[misc]


def test_integers_are_accepted_for_float_settings() -> None:
    """YAML's 60 for a float setting is stored as 60.0."""
    config = load_config({"error_handling": {"retry": {"default_max_delay": 60}}}, environ={})
    assert isinstance(config.error_handling.retry.default_max_delay, float)


def test_configure_installs_and_notifies() -> None:
    """configure() makes the config active and calls the registered listeners with it."""
    seen: list[VigilConfig] = []
    on_configure(seen.append)
    config = configure({"monitoring": {"metrics": {"retention_count": 5}}})
    assert get_config() is config
    assert seen[-1] is config
    assert vigil.configure is configure


def test_configure_with_bad_input_changes_nothing() -> None:
    """A rejected configuration leaves the active one in place."""
    before = get_config()
    with pytest.raises(ConfigError):
        configure({"monitoring": {"metrics": {"retention_count": 0}}})
    assert get_config() is before


def test_logging_process_fields_default_to_off_and_auto() -> None:
    """service is empty, include_host false and include_pid auto unless configured."""
    settings = load_config(environ={}).monitoring.logging
    assert (settings.service, settings.include_host, settings.include_pid) == ("", False, "auto")


def test_include_pid_takes_auto_and_the_boolean_spellings() -> None:
    """include_pid: auto, YAML booleans and the environment's boolean words, any case."""
    def pid(value: object) -> str:
        return load_config({"monitoring": {"logging": {"include_pid": value}}},
                           environ={}).monitoring.logging.include_pid

    assert [pid(v) for v in ("AUTO", True, False, "yes", "off", " True ")] == [
        "auto", "true", "false", "true", "false", "true"]
    env = load_config(environ={"VIGIL_MONITORING_LOGGING_INCLUDE_PID": "1",
                               "VIGIL_MONITORING_LOGGING_INCLUDE_HOST": "true",
                               "VIGIL_MONITORING_LOGGING_SERVICE": " checkout "})
    assert (env.monitoring.logging.include_pid, env.monitoring.logging.include_host,
            env.monitoring.logging.service) == ("true", True, "checkout")


@pytest.mark.parametrize(("settings", "key", "value", "allowed"), [
    ({"include_pid": "sometimes"}, "include_pid", "sometimes", "must be one of auto, true, false"),
    ({"include_pid": 2}, "include_pid", 2, "must be one of auto, true, false"),
    ({"include_host": "maybe"}, "include_host", "maybe", "expected true or false"),
    ({"service": 7}, "service", 7, "expected a string"),
    ({"service": "web\napp"}, "service", "web\napp", "at most 255 printable characters"),
    ({"service": "s" * 256}, "service", "s" * 256, "at most 255 printable characters"),
    ({"service": "bad\udcff"}, "service", "bad\udcff", "lone surrogates"),
])
def test_bad_logging_process_settings_name_key_value_and_rule(
        settings: dict[str, object], key: str, value: object, allowed: str) -> None:
    """A bad service, include_host or include_pid names its full key, the value, the rule."""
    with pytest.raises(ConfigError) as info:
        load_config({"monitoring": {"logging": settings}}, environ={})
    assert info.value.key == f"monitoring.logging.{key}"
    assert info.value.value == value
    assert allowed in str(info.value)


# --- error_handling.recovery.categories ---------------------------------------------------

CATEGORIES_KEY = "error_handling.recovery.categories"


def _recovery(**settings: object) -> object:
    return load_config({"error_handling": {"recovery": settings}},
                       environ={}).error_handling.recovery


def test_custom_categories_default_to_none() -> None:
    """error_handling.recovery.categories is empty unless configured."""
    assert load_config(environ={}).error_handling.recovery.categories == ()


def test_custom_categories_from_a_yaml_file(tmp_path: Path) -> None:
    """A YAML list of NAME=a/b/c/d entries loads, and overrides may then name those categories."""
    path = tmp_path / "c.yaml"
    path.write_text("error_handling:\n  recovery:\n    categories:\n"
                    "      - PAYMENTS=retry/retry/fallback/abort\n"
                    "      - search = Skip/Retry/Fallback/Abort\n"
                    "    policy_overrides: [PAYMENTS.HIGH=abort, search.*=skip]\n")
    recovery = load_config(path, environ={}).error_handling.recovery
    assert recovery.categories == ("PAYMENTS=retry/retry/fallback/abort",
                                   "search = Skip/Retry/Fallback/Abort")
    assert recovery.policy_overrides == ("PAYMENTS.HIGH=abort", "search.*=skip")


def test_custom_categories_from_the_environment_split_on_commas() -> None:
    """The VIGIL_ variable takes comma-separated entries whose actions are split by /."""
    config = load_config(environ={
        "VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES":
            "PAYMENTS=retry/retry/fallback/abort, SEARCH=skip/retry/fallback/abort",
        "VIGIL_ERROR_HANDLING_RECOVERY_POLICY_OVERRIDES": "SEARCH.LOW=abort"})
    assert config.error_handling.recovery.categories == (
        "PAYMENTS=retry/retry/fallback/abort", "SEARCH=skip/retry/fallback/abort")


@pytest.mark.parametrize(("entry", "problem"), [
    ("PAYMENTS", "no = between the name and the actions"),
    ("PAYMENTS=retry,retry,fallback,abort", "separate the actions by /, not ,"),
    ("PAYMENTS=retry/retry/fallback", "3 action(s) given, 4 needed"),
    ("PAYMENTS=retry/nap/fallback/abort", "'nap' is not an action"),
    ("VECTOR_DB=retry/retry/retry/abort", "'VECTOR_DB' is a built-in category"),
    ("pay-ments=retry/retry/retry/abort", "holds '-'"),
    ("2fa=retry/retry/retry/abort", "must start with a letter"),
    ("=retry/retry/retry/abort", "is empty"),
    (f"{'X' * 65}=retry/retry/retry/abort", "65 characters long, at most 64"),
])
def test_bad_category_entry_names_key_entry_and_rule(entry: str, problem: str) -> None:
    """A bad entry is a ConfigError naming the key, the entry, the format and what is wrong."""
    with pytest.raises(ConfigError) as info:
        _recovery(categories=[entry])
    err = info.value
    assert (err.key, err.value) == (CATEGORIES_KEY, entry)
    assert str(err).startswith(f"{CATEGORIES_KEY}: got {entry!r}; entries look like "
                               "NAME=LOW/MEDIUM/HIGH/CRITICAL")
    assert "each one of retry, fallback, skip, abort" in str(err)
    assert problem in str(err).split("; e.g. PAYMENTS=retry/retry/fallback/abort (", 1)[1]


def test_bad_category_entry_from_the_environment_names_the_key() -> None:
    """The same ConfigError comes from the environment variable's entries."""
    with pytest.raises(ConfigError, match=r"error_handling\.recovery\.categories: got "
                                          r"'SEARCH=skip/retry'"):
        load_config(environ={"VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES":
                             "PAYMENTS=retry/retry/fallback/abort,SEARCH=skip/retry"})


def test_category_given_twice_is_refused() -> None:
    """Two entries for one name (in any case) are a ConfigError naming the second."""
    with pytest.raises(ConfigError, match=r"got 'payments=skip/skip/skip/abort'.*"
                                          r"\(PAYMENTS is given twice\)"):
        _recovery(categories=["PAYMENTS=retry/retry/fallback/abort",
                              "payments=skip/skip/skip/abort"])


def test_overrides_may_name_configured_categories_only() -> None:
    """policy_overrides accepts a custom category once configured; otherwise lists the names."""
    assert _recovery(categories=["PAYMENTS=retry/retry/fallback/abort"],
                     policy_overrides=["payments.HIGH=skip"])
    with pytest.raises(ConfigError) as info:
        _recovery(categories=["SEARCH=skip/retry/fallback/abort"],
                  policy_overrides=["PAYMENTS.HIGH=skip"])
    assert info.value.key == "error_handling.recovery.policy_overrides"
    assert "SYSTEM (built-in), SEARCH (from categories) or *" in str(info.value)


def test_log_levels_take_the_stdlib_aliases() -> None:
    """monitoring.logging.level accepts warn and fatal (any case) as WARNING and CRITICAL, as
    the stdlib's logging does; anything else is still a ConfigError naming the levels."""
    from vigil.config import ConfigError, load_config

    assert load_config(overrides={"monitoring": {"logging": {"level": "warn"}}}
                       ).monitoring.logging.level == "WARNING"
    assert load_config(overrides={"monitoring": {"logging": {"level": "Fatal"}}}
                       ).monitoring.logging.level == "CRITICAL"
    with pytest.raises(ConfigError, match="WARNING"):
        load_config(overrides={"monitoring": {"logging": {"level": "loud"}}})


@pytest.mark.parametrize(("variable", "value", "key"), [
    ("VIGIL_EXPORTER_PORT", "abc", "exporter.port"),
    ("VIGIL_CONFIG", "BAD_YAML", "file"),
])
def test_a_bad_variable_never_breaks_the_import_or_the_exit(
        variable: str, value: str, key: str, tmp_path: Path) -> None:
    """With a bad VIGIL_* variable (or a VIGIL_CONFIG file that is not YAML), `import vigil`
    works and reads nothing, calls that need no configuration work, each first use of a shared
    object (or a breaker) raises ConfigError naming the key, and the interpreter's exit (alert
    and span flushes) writes no traceback."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = (
        "import vigil, vigil.config.active\n"
        "print('loaded', vigil.config.active._current is not None)\n"
        "print(vigil.parse_traceparent('00-' + '1' * 32 + '-' + '2' * 16 + '-01') is not None)\n"
        "def first_use(what):\n"
        "    try:\n"
        "        what()\n"
        "    except vigil.ConfigError as err:\n"
        "        print('ConfigError', err.key)\n"
        "first_use(lambda: vigil.alert_manager.register_handler(lambda alert: None))\n"
        "first_use(lambda: vigil.trace_context('Script', 'main').__enter__())\n"
        "first_use(lambda: vigil.CircuitBreaker(name='needs-config'))\n")
    if value == "BAD_YAML":
        value = str(tmp_path / "bad.yaml")
        (tmp_path / "bad.yaml").write_text("monitoring: [\n", encoding="utf-8")
    env = {**os.environ, variable: value,
           "PYTHONPATH": os.pathsep.join([str(root / "lib"), str(root / "exporter")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["loaded False", "True", *[f"ConfigError {key}"] * 3]
    assert "Traceback" not in done.stderr
