"""vigil.monitoring.logs: one JSON object per line, trace ids, redaction, levels, buffers."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.monitoring import context
from vigil.monitoring.logs import (
    REDACTED,
    StructuredLogger,
    configure_logging,
    get_recent_logs,
    redact,
)

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
