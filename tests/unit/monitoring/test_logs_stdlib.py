"""vigil.monitoring.logs for stdlib records: JsonLineFormatter, logging_config, and the real
gunicorn and uvicorn writing their own lines as vigil JSON through them."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import ConfigError
from vigil.monitoring import context, instruments
from vigil.monitoring.logs import (
    REDACTED,
    SERVER_LOGGERS,
    JsonLineFormatter,
    StructuredLogger,
    logging_config,
)
from vigil.monitoring.logs import process as log_process
from vigil.monitoring.logs import writing as log_writing

FSDECODED = os.fsdecode(b"report-\xff.pdf")
BIN = Path(sys.executable).parent
READY = 30.0  # seconds a server gets to answer its first request
# The application the servers run: a bare ASGI app (lifespan included) answering 200 "ok".
ASGI_APP = '''\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''


def _strict(line: str) -> dict[str, Any]:
    """The line parsed as strict JSON in valid UTF-8 (bare NaN or a lone surrogate fails)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name}")

    line.encode("utf-8")  # raises on a lone surrogate
    parsed: dict[str, Any] = json.loads(line, parse_constant=refuse)
    return parsed


def _record(msg: object = "hello", args: Any = None, *, name: str = "lib.module",
            level: int = logging.INFO, exc_info: Any = None,
            **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger(name)
    return logger.makeRecord(name, level, "file.py", 1, msg, args, exc_info, extra=extra or None)


@pytest.fixture
def logging_state() -> Iterator[None]:
    """Put back the root logger, the servers' loggers and vigil's default stream afterwards
    (dictConfig replaces their handlers)."""
    names = ["", *SERVER_LOGGERS, "custom.one"]
    saved = [(logging.getLogger(n), list(logging.getLogger(n).handlers), logging.getLogger(n).level,
              logging.getLogger(n).propagate, logging.getLogger(n).disabled) for n in names]
    default_stream = log_writing.default_stream
    # Start from unset levels: an earlier test's uvicorn server (log_level="warning") leaves
    # uvicorn.error at WARNING, and logging_config() keeps the level a server gave its logger.
    for logger, *_ in saved[1:]:
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    yield
    for logger, handlers, level, propagate, disabled in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
    log_writing.default_stream = default_stream


@pytest.fixture
def no_otel() -> Iterator[None]:
    """No OTEL_* service name around, and the process fields made again afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OTEL_SERVICE_NAME", raising=False)
        patch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
        yield
    log_process.apply_settings(vigil.get_config().monitoring.logging)


# --- the formatter ------------------------------------------------------------------------


def test_formatter_is_a_stdlib_formatter() -> None:
    """JsonLineFormatter is a logging.Formatter a plain StreamHandler can use."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("test.stdlib.plain")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("disk %d%% full", 91)
    finally:
        logger.removeHandler(handler)
    assert isinstance(JsonLineFormatter(), logging.Formatter)
    assert _strict(stream.getvalue())["message"] == "disk 91% full"


@pytest.mark.usefixtures("no_otel")
def test_a_record_gets_the_structured_loggers_line_shape() -> None:
    """Same fields in the same order as StructuredLogger's line: ids of the current span,
    service/host/pid as configured, extras as redacted metadata, the exception."""
    vigil.configure({"monitoring": {"logging": {"service": "shop", "include_host": True,
                                                "include_pid": True}}})
    ours = io.StringIO()
    structured = StructuredLogger("lib.module", stream=ours, registry=CollectorRegistry())
    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    try:
        raise OSError("disk")
    except OSError:
        record = _record("copy %s", ("a.pdf",), level=logging.ERROR, exc_info=sys.exc_info(),
                         size=3, api_key="k")
        with context.use_span(span):
            line = _strict(JsonLineFormatter().format(record))
            structured.error("copy a.pdf", {"size": 3, "api_key": "k"})
    reference = _strict(ours.getvalue())
    assert list(line) == list(reference)
    assert {k: line[k] for k in line if k not in ("timestamp", "exception")} == \
        {k: reference[k] for k in reference if k not in ("timestamp", "exception")}
    assert line["component"] == "lib.module"
    assert (line["trace_id"], line["span_id"]) == (span.trace_id, span.span_id)
    assert (line["service"], line["host"], line["pid"]) == ("shop", socket.gethostname(),
                                                            os.getpid())
    assert line["metadata"] == {"size": 3, "api_key": REDACTED}
    assert line["exception"]["type"] == "OSError"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BrokenError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


def _broken_exc_info() -> Any:
    try:
        raise BrokenError
    except BrokenError:
        return sys.exc_info()


@pytest.mark.parametrize(("record", "check"), [
    (lambda: _record("value %s", (Unprintable(),)),
     lambda line: line["message"] == "value %s"
     and "message arguments not formatted" in line["metadata"]["log_error"]),
    (lambda: _record(Unprintable()), lambda line: line["message"] == "<unprintable Unprintable>"),
    (lambda: _record("%d items", ("many",)),
     lambda line: line["message"] == "%d items" and "log_error" in line["metadata"]),
    (lambda: _record(FSDECODED, None, name=FSDECODED, **{FSDECODED: cast(Any, FSDECODED)}),
     lambda line: line["message"] == line["component"] == "report-\ufffd.pdf"
     and line["metadata"] == {"report-\ufffd.pdf": "report-\ufffd.pdf"}),
    (lambda: _record("open %s", (FSDECODED,)),
     lambda line: line["message"] == "open report-\ufffd.pdf"),
    (lambda: _record("boom", exc_info=_broken_exc_info()),
     lambda line: line["exception"]["type"] == "BrokenError"),
    (lambda: _record("odd", obj=Unprintable(), nan=float("nan"), big=10 ** 5000),
     lambda line: line["metadata"] == {"obj": "<unprintable Unprintable>", "nan": "NaN",
                                       "big": "<integer of 16610 bits>"}),
    (lambda: _record("x", password="hunter2", url="https://u:pw@host/"),
     lambda line: line["metadata"] == {"password": REDACTED,
                                       "url": f"https://{REDACTED}@host/"}),
], ids=["raising-arg", "raising-msg", "mismatched-args", "surrogates", "surrogate-arg",
        "raising-exception", "unencodable-extras", "secrets"])
def test_hostile_records_never_raise_and_stay_strict_json(record: Any, check: Any) -> None:
    """Raising __str__s, arguments that do not fit, lone surrogates, NaN and secrets: format()
    returns one strict JSON line following the StructuredLogger's rules."""
    line = JsonLineFormatter().format(record())
    assert "\n" not in line
    assert check(_strict(line))


def test_a_record_that_cannot_be_built_is_a_line_saying_so() -> None:
    """A broken record (created is not a time) still gives a line, with the error."""
    record = _record("when?")
    record.created = "yesterday"  # type: ignore[assignment]
    line = _strict(JsonLineFormatter().format(record))
    assert line["message"] == "when?"
    assert "log_error" in line["metadata"]


def test_huge_messages_and_extras_are_cut_to_max_line_bytes() -> None:
    """A 1 MB message and a 1 MB extra: a line within max_line_bytes, marked truncated."""
    formatter = JsonLineFormatter(max_line_bytes=2048)
    line = formatter.format(_record("x" * 1_000_000, blob=["é" * 1000] * 1000))
    assert len(line.encode("utf-8")) <= 2048
    parsed = _strict(line)
    assert parsed["truncated"] is True
    assert parsed["original_bytes"] > 1_000_000
    assert parsed["message"].startswith("xxxx")
    assert parsed["message"].endswith("...")


# --- logging_config and dictConfig --------------------------------------------------------


def test_logging_config_is_plain_data_for_gunicorn_and_uvicorn_files() -> None:
    """The dict survives json.dumps (uvicorn --log-config file.json) and names the servers'
    loggers, each with the vigil handler and without propagation."""
    config = logging_config()
    assert json.loads(json.dumps(config)) == config
    assert set(config["loggers"]) == {"gunicorn.error", "gunicorn.access", "uvicorn",
                                      "uvicorn.error", "uvicorn.access"}
    assert all(c["handlers"] == ["vigil-json"] and c["propagate"] is False
               for c in config["loggers"].values())
    assert config["formatters"]["vigil-json"] == {"()": "vigil.monitoring.logs.JsonLineFormatter"}
    assert config["root"]["handlers"] == ["vigil-json"]
    assert set(logging_config(["custom.one"])["loggers"]) == {"custom.one"}


@pytest.mark.parametrize(("kwargs", "key", "allowed"), [
    ({"loggers": ["ok", ""]}, "loggers", "expected logger names"),
    ({"loggers": [7]}, "loggers", "expected logger names"),
    ({"loggers": ["root"]}, "loggers", "the root logger is always included"),
    ({"level": "LOUD"}, "level", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
])
def test_logging_config_rejects_bad_arguments(kwargs: dict[str, Any], key: str,
                                              allowed: str) -> None:
    """A bad logger name or level is a ConfigError naming the argument and what is allowed."""
    with pytest.raises(ConfigError) as info:
        logging_config(**kwargs)
    assert info.value.key == key
    assert allowed in str(info.value)


@pytest.mark.usefixtures("logging_state")
def test_dict_config_writes_each_servers_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    """After dictConfig(logging_config()), each server logger and the root logger write one
    vigil JSON line per record to stdout (no duplicate through propagation)."""
    logging.config.dictConfig(logging_config())
    for name in SERVER_LOGGERS:
        logging.getLogger(name).info("from %s", name)
    logging.getLogger("uvicorn.asgi").info("a child of uvicorn")
    logging.getLogger("app.module").warning("the application's own")
    lines = [_strict(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["component"], line["message"]) for line in lines] == [
        *((name, f"from {name}") for name in SERVER_LOGGERS),
        ("uvicorn.asgi", "a child of uvicorn"), ("app.module", "the application's own")]


@pytest.mark.usefixtures("logging_state")
def test_dict_config_levels(capsys: pytest.CaptureFixture[str]) -> None:
    """Without level the servers' loggers keep the level their server set and the root gets
    monitoring.logging.level; with level it is set on all of them."""
    vigil.configure({"monitoring": {"logging": {"level": "WARNING"}}})
    logging.getLogger("gunicorn.error").setLevel(logging.DEBUG)  # gunicorn --log-level debug
    logging.config.dictConfig(logging_config())
    assert logging.getLogger("gunicorn.error").level == logging.DEBUG
    assert logging.getLogger().level == logging.WARNING
    logging.getLogger("gunicorn.error").debug("kept")
    logging.getLogger("app").info("below the root's level")
    logging.config.dictConfig(logging_config(level="error"))
    assert {logging.getLogger(n).level for n in ("", *SERVER_LOGGERS)} == {logging.ERROR}
    logging.getLogger("gunicorn.error").warning("dropped")
    assert [_strict(x)["message"] for x in capsys.readouterr().out.splitlines()] == ["kept"]


@pytest.mark.usefixtures("logging_state")
def test_dict_configured_handler_follows_configure_and_counts(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The formatter dictConfig made follows a later vigil.configure() (redact_keys,
    max_line_bytes); lines and cuts are counted on the default registry."""
    logging.config.dictConfig(logging_config(["custom.one"]))
    vigil.configure({"monitoring": {"logging": {"redact_keys": ["ssn"],
                                                "max_line_bytes": 2048}}})

    registry = instruments.default_registry()  # where JsonLineHandler counts by default

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    lines, cuts = (sample("vigil_log_messages_total", level="INFO"),
                   sample("vigil_log_lines_truncated_total"))
    logger = logging.getLogger("custom.one")
    logger.info("who", extra={"ssn": "123", "password": "p"})
    logger.info("y" * 100_000)
    small, big = capsys.readouterr().out.splitlines()
    assert _strict(small)["metadata"] == {"ssn": REDACTED, "password": "p"}
    assert len(big.encode("utf-8")) <= 2048
    assert sample("vigil_log_messages_total", level="INFO") == lines + 2
    assert sample("vigil_log_lines_truncated_total") == cuts + 1


# --- the real servers ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(argv: list[str], cwd: Path, env: dict[str, str], url: str) -> tuple[int, list[str]]:
    """Run a server until ``url`` answers, request it once more, stop it with SIGTERM;
    ``(its pid, its stdout lines)``. Its stderr must stay empty."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + READY
        while True:  # readiness polling against a deadline
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, f"{argv[0]} did not answer in {READY}s"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn re-raises the signal once it has shut down; gunicorn exits 0.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert err == ""
    return proc.pid, out.splitlines()


def _server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIGIL_", "OTEL_", "PROMETHEUS_", "GUNICORN_"))}
    return {**env, "HOME": str(tmp_path), "OTEL_SERVICE_NAME": "shop", **extra}


def test_uvicorn_writes_its_own_lines_as_vigil_json(tmp_path: Path) -> None:
    """uvicorn --log-config with logging_config() as a JSON file: its start-up, access and
    shutdown lines are vigil JSON lines with service and pid."""
    (tmp_path / "asgi.py").write_text(ASGI_APP, encoding="utf-8")
    (tmp_path / "log.json").write_text(json.dumps(logging_config()), encoding="utf-8")
    port = _free_port()
    pid, out = _serve([str(BIN / "uvicorn"), "asgi:app", "--port", str(port),
                       "--log-config", "log.json"], tmp_path,
                      _server_env(tmp_path, VIGIL_MONITORING_LOGGING_INCLUDE_PID="true"),
                      f"http://127.0.0.1:{port}/ready")
    lines = [_strict(line) for line in out]
    assert {line["component"] for line in lines} == {"uvicorn.error", "uvicorn.access"}
    assert all(line["pid"] == pid and line["service"] == "shop" for line in lines)
    messages = [line["message"] for line in lines]
    assert f"Started server process [{pid}]" in messages
    assert any('"GET /ready HTTP/1.1" 200' in m for m in messages)
    assert "Shutting down" in messages
    assert all(line["metadata"] == {} for line in lines)  # no color_message


GUNICORN_CONF = '''\
from vigil.monitoring.logs import logging_config

logconfig_dict = logging_config()
worker_class = "uvicorn_worker.UvicornWorker"
workers = 1
control_socket_disable = True
'''


def test_gunicorn_with_uvicorn_workers_writes_vigil_json(tmp_path: Path) -> None:
    """gunicorn -k uvicorn_worker.UvicornWorker with logconfig_dict = logging_config(): every
    line of the master and the worker is vigil JSON; under PROMETHEUS_MULTIPROC_DIR each
    carries the pid of the process that wrote it (the worker's after the fork)."""
    (tmp_path / "asgi.py").write_text(ASGI_APP, encoding="utf-8")
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONF, encoding="utf-8")
    (tmp_path / "metrics").mkdir()
    port = _free_port()
    master, out = _serve([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind",
                          f"127.0.0.1:{port}", "asgi:app"], tmp_path,
                         _server_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")),
                         f"http://127.0.0.1:{port}/ready")
    lines = [_strict(line) for line in out]
    (booting,) = [line for line in lines if line["message"].startswith("Booting worker")]
    worker = int(booting["message"].rsplit(" ", 1)[1])
    assert worker != master
    assert booting["pid"] == worker
    by_component: dict[str, set[int]] = {}
    for line in lines:
        by_component.setdefault(line["component"], set()).add(line["pid"])
        assert line["service"] == "shop"
    assert by_component == {"gunicorn.error": {master, worker}, "uvicorn.error": {worker},
                            "uvicorn.access": {worker}}
    assert any(line["message"].startswith("Listening at") and line["pid"] == master
               for line in lines)
    assert any('"GET /ready HTTP/1.1" 200' in line["message"] for line in lines)
