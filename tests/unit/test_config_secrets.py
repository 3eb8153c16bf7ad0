"""Secrets in vigil's settings stay secret: never in a ConfigError, a repr or a log line.

The secret settings are ``exporter.webhook_bearer_token``, ``exporter.webhook_password``,
``exporter.api_bearer_token``, ``exporter.api_password`` and ``exporter.store_url`` (its
``user:password@`` part). Their values are generated (hypothesis) and pushed through every way
a configuration fails: wrong types in a mapping and in a YAML file, misspelt keys and
environment variables, bad URLs, half-configured basic auth; then through the reprs of the
settings, and through the exporter's log lines and API answers. ``VIGIL_*_FILE`` variables
read a secret from a file (Docker and Kubernetes secrets).
"""

from __future__ import annotations

import dataclasses
import io
import json
import string
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from vigil.config import ConfigError, ExporterSettings, VigilConfig, load_config
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil_exporter.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette prefers the httpx2 fork for its TestClient
    from fastapi.testclient import TestClient

SECRET_KEYS = ("webhook_bearer_token", "webhook_password", "api_bearer_token", "api_password")
MARK = "Zs3CRt"
EXAMPLES = 150

# A secret: the marker, then any text (quotes, colons, @, spaces, non-ASCII, newlines).
_secret_text = st.text(min_size=4, max_size=30).filter(lambda t: "\x00" not in t).map(
    lambda t: MARK + t)
_plain_secret = st.text(string.ascii_letters + string.digits + "-_.~!$&'()*+,;=%", min_size=4,
                        max_size=30).map(lambda t: MARK + t)
_secret_int = st.integers(10**9, 10**30)


def _assert_hidden(err: BaseException, *needles: str) -> None:
    """None of ``needles`` is in the error's message, repr, args or attributes."""
    shown = [str(err), repr(err), repr(err.args), repr(vars(err))]
    for needle in needles:
        for text in shown:
            assert needle not in text, text


def _exporter(**values: Any) -> dict[str, Any]:
    return {"exporter": values}


# --- config errors --------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(key=st.sampled_from(SECRET_KEYS), number=_secret_int,
       kind=st.sampled_from(["int", "float", "list", "dict", "bool-list"]))
def test_a_secret_of_the_wrong_type_is_not_echoed(key: str, number: int, kind: str) -> None:
    """A secret setting given a number, a list or a mapping: the ConfigError names the key and
    the type it got, never the value (31337424242 is not printed)."""
    value: Any = {"int": number, "float": number / 7, "list": [str(number)],
                  "dict": {"v": str(number)}, "bool-list": [True, str(number)]}[kind]
    with pytest.raises(ConfigError) as info:
        load_config(_exporter(**{key: value}), environ={})
    err = info.value
    assert err.key == f"exporter.{key}"
    assert "expected a string" in str(err)
    assert "type" in str(err)
    _assert_hidden(err, str(number), repr(value))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(SECRET_KEYS), number=_secret_int, secret=_secret_text)
def test_secrets_in_a_yaml_file_are_not_echoed(tmp_path: Path, key: str, number: int,
                                               secret: str) -> None:
    """A YAML file with a secret of the wrong type (31337424242), a secret under a misspelt
    key, or a secret as a whole section: the error never shows it."""
    path = tmp_path / "vigil.yaml"
    for document in ({"exporter": {key: number}}, {"exporter": {key + "x": secret}},
                     {"exporter": {key: [secret]}}, {"exporter": secret}, {key: secret}):
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(path, environ={})
        _assert_hidden(info.value, str(number), secret, MARK)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(key=st.sampled_from(SECRET_KEYS), secret=_secret_text.filter(lambda s: s.strip() == s))
def test_secrets_in_misspelt_environment_variables_are_not_echoed(key: str,
                                                                  secret: str) -> None:
    """A VIGIL_* variable one letter off a secret setting is flagged with the suggestion, and
    without the value it carries."""
    name = "VIGIL_EXPORTER_" + key.upper()
    misspelt = name[:-1] + ("X" if name[-1] != "X" else "Y")
    with pytest.raises(ConfigError) as info:
        load_config(environ={misspelt: secret})
    assert f"did you mean {name}" in str(info.value)
    _assert_hidden(info.value, secret, MARK)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(password=_plain_secret, user=st.text(string.ascii_letters, max_size=8),
       shape=st.sampled_from(["http://{u}:{p}@db:6379/0", "{u}:{p}@db:6379", "redis//{u}:{p}@db",
                              "ftp://{u}:{p}@db/x@y", "http://db:6379/0?password={p}",
                              "{p}"]),
       source=st.sampled_from(["mapping", "env"]))
def test_a_bad_store_url_does_not_show_its_password(password: str, user: str, shape: str,
                                                    source: str) -> None:
    """exporter.store_url that is not a Redis URL, with a password in it (anywhere): the
    error says what is expected without the password."""
    url = shape.format(u=user, p=password)
    source_, environ = ((None, {"VIGIL_EXPORTER_STORE_URL": url}) if source == "env"
                        else (_exporter(store_url=url), {}))
    with pytest.raises(ConfigError) as info:
        load_config(source_, environ=environ)
    assert "redis://" in str(info.value)
    _assert_hidden(info.value, password, MARK)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(password=_secret_text, which=st.sampled_from(["webhook", "api"]))
def test_half_configured_basic_auth_does_not_show_the_password(password: str,
                                                               which: str) -> None:
    """A password without its username is an error that names the missing key only."""
    with pytest.raises(ConfigError) as info:
        load_config(_exporter(**{f"{which}_password": password}), environ={})
    assert f"{which}_username" in str(info.value)
    _assert_hidden(info.value, password, MARK)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(key=st.sampled_from(SECRET_KEYS), number=_secret_int)
def test_settings_built_directly_do_not_echo_secrets(key: str, number: int) -> None:
    """ExporterSettings(webhook_bearer_token=31337424242) in code: same masked error."""
    with pytest.raises(ConfigError) as info:
        ExporterSettings(**{key: number})  # type: ignore[arg-type]  # wrong on purpose
    assert info.value.key == key
    _assert_hidden(info.value, str(number))


def test_secrets_still_work_as_strings() -> None:
    """The secret settings are plain str values to the code that uses them."""
    config = load_config(environ={"VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN": "tok-1",
                                  "VIGIL_EXPORTER_API_USERNAME": "prom",
                                  "VIGIL_EXPORTER_API_PASSWORD": "pw-2"})
    exporter = config.exporter
    assert exporter.webhook_bearer_token == "tok-1"
    assert type(exporter.webhook_bearer_token) is str
    assert exporter.api_password.encode() == b"pw-2"
    assert dataclasses.replace(exporter, port=1).api_password == "pw-2"


# --- secrets read from files ----------------------------------------------------------------


def test_a_secret_can_come_from_a_file(tmp_path: Path) -> None:
    """VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE names a file holding the token (a trailing
    newline dropped), as Docker and Kubernetes secrets are mounted."""
    token = tmp_path / "token"
    token.write_text("file-token-1\n", encoding="utf-8")
    config = load_config(environ={"VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE": str(token),
                                  "VIGIL_EXPORTER_API_BEARER_TOKEN_FILE": str(token)})
    assert config.exporter.webhook_bearer_token == "file-token-1"
    assert config.exporter.api_bearer_token == "file-token-1"
    assert load_config(environ={"VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE": ""}) \
        .exporter.webhook_bearer_token == ""


def test_secret_file_errors_name_the_variable_not_the_content(tmp_path: Path) -> None:
    """A missing secret file, or a variable and its _FILE both set, is a ConfigError naming
    the variable; the content of the file is never shown."""
    with pytest.raises(ConfigError, match="VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE"):
        load_config(environ={"VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE":
                             str(tmp_path / "absent")})
    token = tmp_path / "token"
    token.write_text(MARK + "-file", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(environ={"VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE": str(token),
                             "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN": MARK + "-env"})
    assert "both" in str(info.value)
    _assert_hidden(info.value, MARK)
    with pytest.raises(ConfigError, match="not a secret"):
        load_config(environ={"VIGIL_EXPORTER_PORT_FILE": str(token)})


# --- reprs ----------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(secrets=st.lists(_plain_secret, min_size=4, max_size=4, unique=True),
       redis_password=_plain_secret.filter(lambda p: "@" not in p and "/" not in p))
def test_reprs_hide_every_secret(secrets: list[str], redis_password: str) -> None:
    """repr() and str() of ExporterSettings and VigilConfig show that a secret is set, never
    its value; store_url is shown with its user:password@ masked."""
    exporter = ExporterSettings(
        webhook_bearer_token=secrets[0], webhook_username="am", webhook_password=secrets[1],
        api_bearer_token=secrets[2], api_username="prom", api_password=secrets[3],
        store_url=f"redis://default:{redis_password}@redis.internal:6379/0")
    config = load_config(VigilConfig(exporter=exporter), environ={})
    for text in (repr(exporter), str(exporter), repr(config), str(config), f"{config!r}"):
        for secret in (*secrets, redis_password):
            assert secret not in text
        assert MARK not in text
        assert "redis.internal:6379/0" in text
        assert "webhook_bearer_token='***'" in text
        assert "webhook_username='am'" in text
    assert "webhook_bearer_token=''" in repr(ExporterSettings())


# --- logs and API answers -------------------------------------------------------------------


def test_secrets_never_reach_the_exporters_log_lines_or_api(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An exporter with every secret set, bound beyond loopback (the start warning), taking
    wrong and right credentials and logging its settings: no secret in any JSON line on
    stdout, in /api/logs, or in any answer."""
    secrets: dict[str, Any] = {key: f"{MARK}-{key}" for key in SECRET_KEYS}
    settings_ = ExporterSettings(host="0.0.0.0", webhook_username="am", api_username="prom",
                                 state_dir=str(tmp_path), allowed_hosts=("testserver",),
                                 **secrets)
    registry = CollectorRegistry()
    manager = AlertManager(registry=registry)
    app = create_app(settings=settings_, registry=registry, alert_manager=manager,
                     tracer=ExecutionTracer(registry=registry),
                     monitor=PerformanceMonitor(registry=registry))
    stream = io.StringIO()
    logger = StructuredLogger("SecretsFuzz", registry=CollectorRegistry(), stream=stream)
    answers = []
    try:
        with TestClient(app) as client:
            logger.info("settings", {"exporter": settings_, "repr": repr(settings_)})
            logger.warning("config", {"config": VigilConfig(exporter=settings_)})
            for auth in (None, "Bearer wrong", f"Bearer {secrets['api_bearer_token']}x",
                         f"Bearer {secrets['webhook_bearer_token']}"):
                headers = {"Content-Type": "application/json"}
                if auth:
                    headers["Authorization"] = auth
                answers.append(client.post("/alertmanager/webhook", content=b"{}",
                                           headers=headers).text)
                answers.append(client.get("/api/logs", headers=headers).text)
            good = {"Authorization": f"Bearer {secrets['api_bearer_token']}"}
            answers.append(client.get("/api/logs", params={"limit": 1000}, headers=good).text)
            answers.append(client.get("/openapi.json", headers=good).text)
    finally:
        manager.close()
    written = capsys.readouterr().out + stream.getvalue()
    assert "beyond loopback" not in written  # every credential is set: nothing to warn of
    for line in written.splitlines():
        if line.startswith("{"):
            json.loads(line)
    for secret in secrets.values():
        assert secret not in written
        for answer in answers:
            assert secret not in answer
