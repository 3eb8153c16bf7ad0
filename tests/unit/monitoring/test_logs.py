"""vigil.monitoring.logs: one JSON object per line, trace ids, redaction, levels, buffers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.forks import at_fork
from vigil.monitoring import context
from vigil.monitoring.logs import (
    REDACTED,
    StructuredLogger,
    configure_logging,
    get_recent_logs,
    redact,
)
from vigil.monitoring.logs import process as log_process
from vigil.monitoring.logs import writing as log_writing

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _logger(component: str = "MyComponent", **kwargs: Any) -> tuple[StructuredLogger, io.StringIO,
                                                                      CollectorRegistry]:
    stream, registry = io.StringIO(), CollectorRegistry()
    return StructuredLogger(component, stream=stream, registry=registry, **kwargs), stream, registry


def test_seed_example_writes_one_json_object_per_line() -> None:
    """The seed's StructuredLogger example produces parseable lines with every field."""
    logger, stream, _ = _logger(level="DEBUG")
    logger.info("Processing request", metadata={"user_id": "123", "request_id": "abc"},
                trace_id="trace_xyz")
    logger.debug("Debug information")
    logger.warning("Warning message")
    logger.error("Error occurred")
    logger.critical("Critical failure")
    lines = _lines(stream)
    assert [line["level"] for line in lines] == ["INFO", "DEBUG", "WARNING", "ERROR", "CRITICAL"]
    first = lines[0]
    assert set(first) == {"timestamp", "level", "component", "message", "trace_id", "span_id",
                          "metadata"}
    assert first["component"] == "MyComponent"
    assert first["message"] == "Processing request"
    assert first["trace_id"] == "trace_xyz"
    assert first["metadata"] == {"user_id": "123", "request_id": "abc"}
    assert RFC3339_MS_UTC.match(first["timestamp"])


def test_output_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream the lines go to the current sys.stdout."""
    StructuredLogger("Out", registry=CollectorRegistry()).info("hello")
    assert json.loads(capsys.readouterr().out)["message"] == "hello"


def test_current_trace_ids_are_added_automatically() -> None:
    """Inside a trace, lines carry its W3C trace id and span id without being told."""
    logger, stream, _ = _logger()
    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    with context.use_span(span):
        logger.info("inside")
    logger.info("outside")
    inside, outside = _lines(stream)
    assert (inside["trace_id"], inside["span_id"]) == (span.trace_id, span.span_id)
    assert (outside["trace_id"], outside["span_id"]) == (None, None)


def test_seed_style_trace_id_resolves_to_the_w3c_pair() -> None:
    """Passing the id trace_context yields (a span id) logs the W3C trace id and that span."""
    logger, stream, _ = _logger()
    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    with context.use_span(span):
        logger.info("Starting agent execution", trace_id=span.span_id)
    line = _lines(stream)[0]
    assert (line["trace_id"], line["span_id"]) == (span.trace_id, span.span_id)


def test_exception_inside_except_carries_type_message_stack() -> None:
    """error() inside except attaches the exception's type, message and stack."""
    logger, stream, _ = _logger()
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.error("failed")
    exc = _lines(stream)[0]["exception"]
    assert exc["type"] == "ValueError"
    assert exc["message"] == "bad value"
    assert 'raise ValueError("bad value")' in exc["stack"]


def test_exc_info_true_attaches_at_any_level() -> None:
    """warning(..., exc_info=True) in except, or an exception object, is attached too."""
    logger, stream, _ = _logger()
    try:
        raise KeyError("k")
    except KeyError as err:
        logger.warning("w", exc_info=True)
        logger.info("i", exc_info=err)
        logger.info("plain")
    lines = _lines(stream)
    assert lines[0]["exception"]["type"] == "KeyError"
    assert lines[1]["exception"]["type"] == "KeyError"
    assert "exception" not in lines[2]


def test_error_outside_except_has_no_exception() -> None:
    """error() with no exception being handled writes no exception field."""
    logger, stream, _ = _logger()
    logger.error("just an error")
    assert "exception" not in _lines(stream)[0]


def test_non_serialisable_values_never_raise() -> None:
    """Objects JSON cannot hold are written as strings; the line is still valid JSON."""
    logger, stream, _ = _logger()

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    logger.info("odd", metadata={"obj": Opaque(), "set": {1}, "bytes": b"\xff", "n": float("nan")})
    line = _lines(stream)[0]
    assert line["metadata"]["obj"] == "<opaque>"


def test_secrets_are_redacted_including_nested() -> None:
    """Keys that look secret are [REDACTED] at any depth; the caller's dict is untouched."""
    logger, stream, _ = _logger()
    metadata = {"user": "ann", "Password": "hunter2", "db": {"api_key": "k", "host": "h"},
                "headers": [{"Authorization": "Bearer x"}], "session_cookie": "c",
                "refresh_token": "t", "client_secret": "s"}
    logger.info("login", metadata=metadata)
    written = _lines(stream)[0]["metadata"]
    assert written["user"] == "ann"
    assert written["Password"] == REDACTED
    assert written["db"] == {"api_key": REDACTED, "host": "h"}
    assert written["headers"] == [{"Authorization": REDACTED}]
    assert written["session_cookie"] == REDACTED
    assert written["refresh_token"] == REDACTED
    assert written["client_secret"] == REDACTED
    assert metadata["Password"] == "hunter2"
    assert "hunter2" not in stream.getvalue()


def test_redact_keys_are_configurable() -> None:
    """Configured redact_keys replace the default list."""
    vigil.configure({"monitoring": {"logging": {"redact_keys": ["ssn"]}}})
    logger, stream, _ = _logger()
    logger.info("x", metadata={"ssn": "1", "password": "p"})
    assert _lines(stream)[0]["metadata"] == {"ssn": REDACTED, "password": "p"}


def test_redact_bounds_depth() -> None:
    """A pathologically deep structure is cut off instead of recursing without end."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100):
        node["next"] = {}
        node = node["next"]
    text = json.dumps(redact(deep, ["password"]))
    assert "[TOO DEEP]" in text


def test_minimum_level_comes_from_config_and_follows_configure() -> None:
    """Below the configured level nothing is written; configure() changes it live."""
    logger, stream, _ = _logger()
    logger.debug("hidden")
    vigil.configure({"monitoring": {"logging": {"level": "DEBUG"}}})
    logger.debug("shown")
    assert [line["message"] for line in _lines(stream)] == ["shown"]
    assert logger.level == "DEBUG"


def test_explicit_level_is_not_overridden_by_configure() -> None:
    """A logger given its own level keeps it across configure()."""
    logger, stream, _ = _logger(level="ERROR")
    vigil.configure({"monitoring": {"logging": {"level": "DEBUG"}}})
    logger.warning("hidden")
    assert stream.getvalue() == ""


def test_recent_logs_are_bounded_per_logger() -> None:
    """get_recent_logs returns at most buffer_size entries, the newest, oldest first."""
    logger, _, _ = _logger(buffer_size=3)
    for i in range(10):
        logger.info(f"m{i}")
    assert [e["message"] for e in logger.get_recent_logs(count=100)] == ["m7", "m8", "m9"]
    assert [e["message"] for e in logger.get_recent_logs(count=2)] == ["m8", "m9"]
    assert logger.get_recent_logs(count=0) == []


def test_buffer_size_comes_from_config() -> None:
    """A logger without buffer_size keeps monitoring.logging.buffer_size entries."""
    vigil.configure({"monitoring": {"logging": {"buffer_size": 2}}})
    logger, _, _ = _logger()
    for i in range(5):
        logger.info(f"m{i}")
    assert len(logger.get_recent_logs(count=2000)) == 2


def test_recent_entries_hold_redacted_metadata() -> None:
    """The in-memory buffer (served by the exporter) never holds the secret either."""
    logger, _, _ = _logger()
    logger.info("x", metadata={"token": "abc"})
    assert logger.get_recent_logs(1)[0]["metadata"] == {"token": REDACTED}


def test_lines_are_counted_by_level() -> None:
    """vigil_log_messages_total{level} counts the lines written, not the filtered ones."""
    logger, _, registry = _logger(level="INFO")
    logger.debug("filtered")
    logger.info("a")
    logger.info("b")
    logger.error("c")
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "INFO"}) == 2
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "ERROR"}) == 1
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "DEBUG"}) == 0


def test_module_recent_logs_filter_by_level_and_component() -> None:
    """get_recent_logs() across loggers filters by minimum level and by component."""
    a, _, _ = _logger("test-filter-A")
    b, _, _ = _logger("test-filter-B")
    a.info("a-info")
    b.error("b-error")
    a.warning("a-warning")
    assert [e["message"] for e in get_recent_logs(10, component="test-filter-A")] == [
        "a-warning", "a-info"]
    errors = [e["message"] for e in get_recent_logs(100, level="error")
              if e["component"].startswith("test-filter")]
    assert errors == ["b-error"]


def test_invalid_level_argument_is_a_config_error() -> None:
    """An unknown level names the allowed ones."""
    with pytest.raises(vigil.ConfigError, match="DEBUG, INFO"):
        StructuredLogger("x", level="LOUD", registry=CollectorRegistry())


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_gives_stdlib_records_the_same_shape() -> None:
    """After configure_logging(), a third-party logger's record is a vigil JSON line."""
    stream, registry = io.StringIO(), CollectorRegistry()
    configure_logging("INFO", stream=stream, registry=registry)
    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    with context.use_span(span):
        logging.getLogger("urllib3.connectionpool").warning(
            "retrying %s", "host", extra={"attempt": 2, "password": "p"})
    line = _lines(stream)[0]
    assert line["component"] == "urllib3.connectionpool"
    assert line["level"] == "WARNING"
    assert line["message"] == "retrying host"
    assert line["metadata"] == {"attempt": 2, "password": REDACTED}
    assert (line["trace_id"], line["span_id"]) == (span.trace_id, span.span_id)
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "WARNING"}) == 1


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_twice_does_not_duplicate_lines() -> None:
    """Calling configure_logging() again replaces its handler instead of stacking another."""
    stream = io.StringIO()
    configure_logging(stream=io.StringIO(), registry=CollectorRegistry())
    configure_logging(stream=stream, registry=CollectorRegistry())
    try:
        raise OSError("disk")
    except OSError:
        logging.getLogger("lib").exception("boom")
    lines = _lines(stream)
    assert len(lines) == 1
    assert lines[0]["exception"]["type"] == "OSError"


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_stream_redirects_every_logger() -> None:
    """configure_logging(stream=f) sends StructuredLogger lines without their own stream to f."""
    stream = io.StringIO()
    configure_logging(stream=stream, registry=CollectorRegistry())
    StructuredLogger("Redirected", registry=CollectorRegistry()).info("to the file")
    assert _lines(stream)[0]["component"] == "Redirected"


def test_dataclasses_and_namedtuples_are_redacted() -> None:
    """Secret fields of dataclass and NamedTuple values are redacted, not written by the encoder."""
    import dataclasses
    from typing import NamedTuple

    @dataclasses.dataclass
    class Db:
        host: str
        password: str

    class Creds(NamedTuple):
        user: str
        api_key: str

    logger, stream, _ = _logger()
    logger.info("connect", metadata={"db": Db("h", "hunter2"), "creds": Creds("u", "k-123"),
                                     ("tuple", "key"): 1})
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "k-123" not in text
    line = _lines(stream)[0]["metadata"]
    assert line["db"] == {"host": "h", "password": REDACTED}
    assert line["creds"] == {"user": "u", "api_key": REDACTED}
    assert line["('tuple', 'key')"] == 1


def test_shared_logger_is_one_per_component() -> None:
    """shared_logger() hands vigil's modules one logger per component, made on first use."""
    from vigil.monitoring.logs import shared_logger

    first = shared_logger("vigil.test-shared")
    assert shared_logger("vigil.test-shared") is first
    assert shared_logger("vigil.test-other") is not first
    assert first.component == "vigil.test-shared"


def test_bad_buffer_size_argument_is_a_config_error() -> None:
    """buffer_size=0 or a string is rejected by the settings class, naming the argument."""
    with pytest.raises(vigil.ConfigError, match=r"^buffer_size: got 0; must be a number >= 1"):
        StructuredLogger("x", buffer_size=0, registry=CollectorRegistry())
    with pytest.raises(vigil.ConfigError, match="buffer_size: got 'big'; expected an integer"):
        StructuredLogger("x", buffer_size="big", registry=CollectorRegistry())  # type: ignore[arg-type]


# --- process fields: service, host, pid -----------------------------------------------------


@pytest.fixture
def environ() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for OTEL_* variables, undone before the process fields are made again
    (the shared fixture's configure() runs later, with the variables already restored)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
            patch.delenv(name, raising=False)
        yield patch
    log_process.apply_settings(vigil.get_config().monitoring.logging)


class FdStream:
    """A text stream writing straight to a file descriptor (nothing buffered to fork)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        return os.write(self.fd, text.encode("utf-8"))

    def flush(self) -> None:
        pass


def _logging(**settings: Any) -> None:
    vigil.configure({"monitoring": {"logging": settings}})


@pytest.mark.usefixtures("environ")
def test_no_process_fields_by_default_in_one_process() -> None:
    """Outside multiprocess mode, with nothing configured, lines carry no service/host/pid."""
    _logging()
    logger, stream, _ = _logger()
    logger.info("plain")
    assert not {"service", "host", "pid"} & set(_lines(stream)[0])


@pytest.mark.usefixtures("environ")
def test_configured_fields_sit_between_span_id_and_metadata() -> None:
    """service, host and pid come after span_id and before metadata, with their values."""
    _logging(service="checkout", include_host=True, include_pid=True)
    logger, stream, _ = _logger()
    logger.info("hello", {"k": 1})
    line = _lines(stream)[0]
    assert list(line) == ["timestamp", "level", "component", "message", "trace_id", "span_id",
                          "service", "host", "pid", "metadata"]
    assert (line["service"], line["host"], line["pid"]) == (
        "checkout", socket.gethostname(), os.getpid())
    assert logger.get_recent_logs(1)[0]["pid"] == os.getpid()


def test_service_falls_back_to_opentelemetry_variables(environ: pytest.MonkeyPatch) -> None:
    """Empty service: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
    (percent-decoded); a configured service wins over both."""
    environ.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,"
                                               "service.name=cart%20api")
    _logging()
    logger, stream, _ = _logger()
    logger.info("from resource attributes")
    environ.setenv("OTEL_SERVICE_NAME", "cart")
    _logging()
    logger.info("from OTEL_SERVICE_NAME")
    _logging(service="orders")
    logger.info("configured")
    assert [line["service"] for line in _lines(stream)] == ["cart api", "cart", "orders"]


def test_opentelemetry_service_name_is_made_printable(environ: pytest.MonkeyPatch) -> None:
    """A service name from the environment loses control characters and is capped."""
    environ.setenv("OTEL_SERVICE_NAME", "a\nb\x1b" + "c" * 400)
    _logging()
    logger, stream, _ = _logger()
    logger.info("x")
    assert _lines(stream)[0]["service"] == "ab" + "c" * 253


@pytest.mark.usefixtures("environ")
def test_pid_auto_follows_multiprocess_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """include_pid auto writes the pid exactly when prometheus_client is in multiprocess mode;
    true and false force it."""
    logger, stream, _ = _logger()  # its counters made before the mode is faked
    monkeypatch.setattr(log_process, "MULTIPROCESS", True)
    _logging(include_pid="auto")
    logger.info("multiprocess")
    _logging(include_pid=False)
    logger.info("forced off")
    monkeypatch.setattr(log_process, "MULTIPROCESS", False)
    _logging(include_pid="auto")
    logger.info("one process")
    _logging(include_pid="TRUE")
    logger.info("forced on")
    assert [line.get("pid") for line in _lines(stream)] == [os.getpid(), None, None,
                                                             os.getpid()]


def test_pid_is_on_under_a_real_prometheus_multiproc_dir(tmp_path: Path) -> None:
    """A process started with PROMETHEUS_MULTIPROC_DIR writes its own pid on every line."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIGIL_", "OTEL_", "PROMETHEUS_"))}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    script = ("import vigil; from prometheus_client import CollectorRegistry\n"
              "vigil.StructuredLogger('Worker', registry=CollectorRegistry()).info('up')\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert json.loads(out)["pid"] == proc.pid


class ForkHook:
    """Logs from a vigil.forks hook registered after vigil's own (held weakly by at_fork)."""

    def __init__(self, logger: StructuredLogger) -> None:
        self.logger = logger
        at_fork(after_in_child=self.run)

    def run(self) -> None:
        self.logger.info("child, fork hook")


@pytest.mark.usefixtures("environ", "root_logging")
def test_forked_child_writes_its_own_pid() -> None:
    """After os.fork(), a logger made in the parent writes the child's pid in the child (from
    other fork hooks too, and a stdlib record as well); the parent keeps its own."""
    _logging(include_pid=True)
    read_end, write_end = os.pipe()
    registry = CollectorRegistry()
    logger = StructuredLogger("Forked", stream=FdStream(write_end), registry=registry)  # type: ignore[arg-type]
    configure_logging(stream=FdStream(write_end), registry=registry)  # type: ignore[arg-type]
    hook = ForkHook(logger)
    logger.info("parent, before")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        try:
            logger.info("child")
            logging.getLogger("lib.in.child").warning("child, stdlib")
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    logger.info("parent, after")
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        lines = [json.loads(line) for line in pipe.read().splitlines()]
    assert os.waitstatus_to_exitcode(status) == 0
    assert [(line["message"], line["pid"]) for line in lines] == [
        ("parent, before", os.getpid()), ("child, fork hook", child), ("child", child),
        ("child, stdlib", child), ("parent, after", os.getpid())]
    del hook  # its fork hook goes with it


def test_a_lock_held_at_the_fork_does_not_hang_the_child() -> None:
    """A child forked while the write lock is held (by another thread, in real life) can log."""
    read_end, write_end = os.pipe()
    logger = StructuredLogger("Locked", stream=FdStream(write_end),  # type: ignore[arg-type]
                              registry=CollectorRegistry())
    with log_writing.write_lock:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's coverage is not collected
            try:
                logger.info("child")
            finally:
                os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10.0)  # a bounded wait, not a sleep
        assert ready, "the child's line never came: it is stuck on the inherited lock"
        assert json.loads(os.read(read_end, 65536))["message"] == "child"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(read_end)
