"""alerts/build.py as a library: Settings.from_overrides() and render(), for a CLI to call.

``render(settings)`` is file name -> text (what ``python alerts/build.py`` writes for the
shipped settings); ``Settings.from_overrides`` takes string values as a command line gives
them and refuses unknown names and bad values with an error naming the key, the value and what
is allowed. The module needs PyYAML and the standard library only, and works when installed
under another package name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alerts import build
from alerts.build import Settings, SettingsError, render

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"


def test_render_of_the_shipped_settings_is_the_committed_files() -> None:
    """render(Settings()) gives every committed generated file, byte for byte."""
    files = render(Settings())
    assert sorted(files) == sorted([
        "vigil.rules.yml", "vigil.recording.rules.yml", "demo.rules.yml", "alertmanager.yml",
        "prometheus.yml", "production/prometheus-a.yml", "production/prometheus-b.yml",
        "production/alertmanager.yml"])
    for name, text in files.items():
        assert (ALERTS / name).read_text(encoding="utf-8") == text, name


def test_render_without_the_demo_leaves_its_rules_out() -> None:
    """demo=False: no demo.rules.yml, and prometheus.yml loads the general set only."""
    files = render(Settings(), demo=False)
    assert "demo.rules.yml" not in files
    config = yaml.safe_load(files["prometheus.yml"])
    assert config["rule_files"] == list(build.RULE_FILES)
    assert files["vigil.rules.yml"] == render(Settings())["vigil.rules.yml"]


def test_the_demo_alerts_are_apart_from_the_general_set() -> None:
    """VigilAgentLimitHits and VigilFileProcessingFailureRatio are in demo.rules.yml only."""
    def alerts(name: str) -> set[str]:
        data = yaml.safe_load(render(Settings())[name])
        return {rule["alert"] for group in data["groups"] for rule in group["rules"]}

    demo = {"VigilAgentLimitHits", "VigilFileProcessingFailureRatio"}
    assert alerts("demo.rules.yml") == demo
    assert not alerts("vigil.rules.yml") & demo
    assert "ingest_file" not in render(Settings())["vigil.rules.yml"]


def test_from_overrides_parses_strings_and_job_is_a_short_selector() -> None:
    """Values are parsed as their setting's type; job=X is selector job="X"."""
    settings = Settings.from_overrides({"job": "myapp", "breaker_flap_trips": "5",
                                        "memory_ratio": "0.5", "runbook_base":
                                        "https://wiki.example.com/vigil"})
    assert settings.selector == 'job="myapp"'
    assert settings.job == "myapp"
    assert settings.jobs == ("myapp",)
    assert settings.breaker_flap_trips == 5
    assert settings.memory_ratio == 0.5
    rules = render(settings)["vigil.rules.yml"]
    assert 'job="vigil"' not in rules
    assert "https://wiki.example.com/vigil#vigilcriticalerror" in rules
    several = Settings.from_overrides({"selector": 'job=~"api|worker"', "scrape_job": "api"})
    assert several.jobs == ("api", "worker")
    assert several.job == "api"
    base = Settings.from_overrides({"job": "a"})
    assert Settings.from_overrides({"group_wait": "1s"}, base=base).selector == 'job="a"'


@pytest.mark.parametrize(("overrides", "key", "words"), [
    ({"selctor": 'job="x"'}, "selctor", ["no such setting; did you mean 'selector'?",
                                         "got the value 'job=\"x\"'", "the settings are job, "]),
    ({"breaker_flap_trips": "many"}, "breaker_flap_trips",
     ["got 'many'; expected int (a whole number such as 3)"]),
    ({"memory_ratio": "lots"}, "memory_ratio", ["got 'lots'; expected float"]),
    ({"memory_ratio": "2"}, "memory_ratio", ["got 2.0; must be in (0, 1]"]),
    ({"selector": "vigil"}, "selector", ["got 'vigil'; expected PromQL label matchers"]),
    ({"selector": 'job="a" job="b"'}, "selector", ["expected PromQL label matchers"]),
    ({"selector": '__name__=~".+"'}, "selector", ["__name__ is reserved"]),
    ({"selector": 'namespace="shop"'}, "scrape_job", ["names no single job"]),
    ({"selector": 'job=~"a|b"', "scrape_job": "c"}, "scrape_job",
     ["got 'c'; the selector job=~\"a|b\" does not select that job"]),
    ({"job": "a", "selector": 'job="b"'}, "job", ["set one of them"]),
    ({"job": 'a"b'}, "job", ["expected one job name"]),
    ({"runbook_base": "https://x/runbook.md#top"}, "runbook_base", ["without a #fragment"]),
    ({"oncall_email": "you"}, "oncall_email", ["got 'you'; expected an email address"]),
    ({"oncall_smarthost": "smtp"}, "oncall_smarthost", ["expected the SMTP server as host:port"]),
    ({"group_wait": "soon"}, "group_wait", ["got 'soon'; expected a Prometheus duration"]),
    ({"webhook_url": 'http://x/"'}, "webhook_url", ["must not contain"]),
])
def test_from_overrides_names_the_key_the_value_and_what_is_allowed(
        overrides: dict[str, str], key: str, words: list[str]) -> None:
    """Every refusal is a SettingsError (a ValueError) whose message starts with the key."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_overrides(overrides)
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    for word in words:
        assert word in message, message
    assert isinstance(caught.value, ValueError)


def test_selectors_are_parsed_like_promql() -> None:
    """Spaces, a trailing comma, escapes and the four operators are accepted."""
    assert build.parse_selector(' job = "a" , env!~"dev|test", x!="y\\"z",') == [
        ("job", "=", "a"), ("env", "!~", "dev|test"), ("x", "!=", 'y"z')]
    settings = Settings.from_overrides({"selector": 'env="prod",job="a"'})
    assert settings.extra_labels == ["env"]
    assert settings.by("job", "instance") == "env, job, instance"


def test_build_py_needs_only_pyyaml_and_the_standard_library() -> None:
    """Importing alerts/build.py loads no third-party module but yaml."""
    code = ("import sys, importlib.util\n"
            "before = set(sys.modules)\n"
            f"spec = importlib.util.spec_from_file_location('b', {str(ALERTS / 'build.py')!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['b'] = module\n"
            "spec.loader.exec_module(module)\n"
            "module.render(module.Settings())\n"
            "tops = {name.split('.')[0] for name in set(sys.modules) - before}\n"
            "tops -= set(sys.stdlib_module_names) | {'b', 'yaml', '_yaml'}\n"
            "print(sorted(n for n in tops if not n.startswith(('_cython', 'cython_'))))\n")
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
