"""vigil.monitoring.logs: strict JSON lines, the size cap, the write fallbacks and redaction."""

from __future__ import annotations

import io
import json
import logging
import math
import os
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import ConfigError
from vigil.monitoring.logs import (
    REDACTED,
    TOO_DEEP,
    JsonLineFormatter,
    StructuredLogger,
    configure_logging,
    get_recent_logs,
    mask_credentials,
    redact,
)

FSDECODED = os.fsdecode(b"report-\xff.pdf")
KEYS = ("password", "token")


def _strict(line: str) -> dict[str, Any]:
    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name}")

    parsed: dict[str, Any] = json.loads(line, parse_constant=refuse)
    return parsed


class Strict(io.TextIOWrapper):
    def __init__(self, encoding: str = "utf-8") -> None:
        super().__init__(io.BytesIO(), encoding=encoding, errors="strict", write_through=True)

    def lines(self) -> list[str]:
        buffer = self.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue().decode("utf-8").split("\n")[:-1]


def _logger(stream: io.TextIOBase | None = None, **kwargs: Any
            ) -> tuple[StructuredLogger, Strict | Any, CollectorRegistry]:
    registry = CollectorRegistry()
    out = stream if stream is not None else Strict()
    return StructuredLogger("C", registry=registry, stream=out, **kwargs), out, registry


# --- strict JSON --------------------------------------------------------------------------


def test_non_finite_floats_and_huge_ints_are_strings_in_the_line_and_the_buffer() -> None:
    """NaN/Infinity and huge ints are strings in the line and in get_recent_logs."""
    logger, stream, _ = _logger()
    logger.info("m", {"nan": math.nan, "inf": [math.inf, -math.inf], math.nan: 1,
                      "big": 10 ** 5000})
    (line,) = stream.lines()
    metadata = _strict(line)["metadata"]
    assert metadata == {"nan": "NaN", "inf": ["Infinity", "-Infinity"], "NaN": 1,
                        "big": "<integer of 16610 bits>"}
    assert logger.get_recent_logs(1)[0]["metadata"] == metadata


def test_surrogates_are_replaced_in_the_line_and_the_buffer() -> None:
    """A lone surrogate in a message, key or value is U+FFFD in the line and in the buffer."""
    logger, stream, _ = _logger()
    logger.info(FSDECODED, {FSDECODED: [FSDECODED]})
    (line,) = stream.lines()
    expected = "report-\ufffd.pdf"
    assert _strict(line)["message"] == expected
    assert _strict(line)["metadata"] == {expected: [expected]}
    entry = logger.get_recent_logs(1)[0]
    assert entry["message"] == expected
    assert entry["metadata"] == {expected: [expected]}


def test_unprintable_objects_follow_the_rule() -> None:
    """Messages, values, keys and exceptions whose __str__ raises are <unprintable T>."""

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    class Opaque:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no")

    logger, stream, _ = _logger()
    logger.error(Opaque(), {"obj": Opaque(), Opaque(): 1, "err": Broken()},  # type: ignore[arg-type]
                 exc_info=Broken())
    line = _strict(stream.lines()[0])
    assert line["message"] == "<unprintable Opaque>"
    assert line["metadata"] == {"obj": "<unprintable Opaque>", "<unprintable Opaque>": 1,
                                "err": "Broken: <unprintable Broken>"}
    assert line["exception"]["type"].endswith(".Broken")
    assert line["exception"]["message"] == "<unprintable Broken>"
    assert "<exception str() failed>" in line["exception"]["stack"]


def test_line_breaks_json_leaves_raw_are_escaped() -> None:
    """U+2028, U+2029 and U+0085 are escaped, so a line never splits in str.splitlines()."""
    logger, stream, _ = _logger()
    logger.info("a\u2028b\u2029c\x85d")
    (line,) = stream.lines()
    assert line.splitlines() == [line]
    assert _strict(line)["message"] == "a\u2028b\u2029c\x85d"


def test_a_stream_that_cannot_encode_gets_escapes() -> None:
    """On an ASCII-encoded file the line is written with \\u escapes and reads back the same."""
    logger, stream, registry = _logger(Strict("ascii"))
    logger.info("café 😀", {"k": "日本"})
    (line,) = stream.lines()
    assert line.isascii()
    assert _strict(line)["message"] == "café 😀"
    assert _strict(line)["metadata"] == {"k": "日本"}
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "INFO"}) == 1


def test_a_failing_stream_loses_the_line_counts_it_and_never_raises() -> None:
    """A closed stream: the call returns, the entry stays in the buffer, the loss is counted."""
    stream = io.StringIO()
    logger, _, registry = _logger(stream)
    stream.close()
    logger.info("lost")
    assert registry.get_sample_value("vigil_log_write_errors_total") == 1
    assert registry.get_sample_value("vigil_log_messages_total", {"level": "INFO"}) == 0
    assert logger.get_recent_logs(1)[0]["message"] == "lost"


def test_a_malformed_exc_info_is_ignored() -> None:
    """exc_info that names no exception (a wrong tuple, (None, None, None)) adds no field."""
    logger, stream, _ = _logger()
    logger.error("a", exc_info=(None, None, None))  # type: ignore[arg-type]
    logger.error("b", exc_info=("x",))  # type: ignore[arg-type]
    assert ["exception" in _strict(line) for line in stream.lines()] == [False, False]


@pytest.mark.usefixtures("root_logging")
def test_stdlib_record_whose_arguments_do_not_fit() -> None:
    """A %-format its arguments do not fit is written raw, with metadata.log_error."""
    stream = Strict()
    handler = configure_logging("DEBUG", stream=stream, registry=CollectorRegistry())
    record = logging.getLogger("vigil.test.lines").makeRecord(
        "vigil.test.lines", logging.WARNING, __file__, 1, "%d files in %s", (FSDECODED,), None)
    handler.handle(record)  # as the root logger would, without pytest's own handlers
    line = _strict(stream.lines()[0])
    assert line["message"] == "%d files in %s"
    assert line["metadata"]["log_error"].startswith("message arguments not formatted: TypeError")


# --- the size cap -------------------------------------------------------------------------


def test_a_long_line_is_cut_within_the_cap_and_says_so() -> None:
    """A 200 KB message is cut to fit 16383 bytes; the line says truncated and the size."""
    logger, stream, registry = _logger()
    logger.info("x" * 200_000, {"file": "a.pdf"})
    (line,) = stream.lines()
    assert len(line.encode()) <= 16383
    parsed = _strict(line)
    assert parsed["truncated"] is True
    assert parsed["original_bytes"] > 200_000
    assert parsed["message"].startswith("xxx")
    assert parsed["message"].endswith("...")
    assert parsed["metadata"] == {"file": "a.pdf"}  # what fits after the message is kept
    assert registry.get_sample_value("vigil_log_lines_truncated_total") == 1
    assert logger.get_recent_logs(1)[0] == parsed


def test_cut_containers_say_how_much_they_dropped() -> None:
    """Long lists and objects keep their first items and name how many were dropped."""
    formatter = JsonLineFormatter(redact_keys=KEYS, max_line_bytes=2048)
    entry = {"timestamp": "t", "level": "INFO", "component": "C", "message": "m",
             "metadata": {"items": list(range(5000)), **{f"k{i}": i for i in range(500)}}}
    line, shown = formatter.format_line(entry)
    assert len(line.encode()) <= 2048
    metadata = _strict(line)["metadata"]
    assert metadata["items"][-1].endswith("more items]")
    assert any(value.endswith("more keys") for key, value in metadata.items() if key == "...")
    assert shown["truncated"] is True


@pytest.mark.parametrize("char", ["x", "é", "😀", "\x01", "\udcff", "\u2028"])
def test_the_cap_holds_for_any_characters(char: str) -> None:
    """Multi-byte, escaped and replaced characters still fit the cap as strict JSON."""
    formatter = JsonLineFormatter(redact_keys=KEYS, max_line_bytes=1024)
    entry = {"timestamp": "t", "level": "INFO", "component": char * 5000,
             "message": char * 5000, "trace_id": char * 5000, "span_id": None,
             "metadata": {char * 100: [char * 3000] * 3}}
    for ascii_only in (False, True):
        line, _ = formatter.format_line(entry, ascii_only=ascii_only)
        assert len(line.encode("utf-8")) <= 1024
        assert _strict(line)["truncated"] is True


def test_the_cap_follows_configure_and_is_validated() -> None:
    """monitoring.logging.max_line_bytes applies to existing loggers; below 1024 is refused."""
    logger, stream, _ = _logger()
    vigil.configure({"monitoring": {"logging": {"max_line_bytes": 1500}}})
    logger.info("y" * 3000)
    assert len(stream.lines()[0].encode()) <= 1500
    with pytest.raises(ConfigError, match="max_line_bytes"):
        vigil.configure({"monitoring": {"logging": {"max_line_bytes": 100}}})
    with pytest.raises(ConfigError, match="max_line_bytes"):
        JsonLineFormatter(max_line_bytes=10)


def test_a_short_line_is_not_touched() -> None:
    """Under the cap nothing is cut and no marker is added."""
    logger, stream, _ = _logger()
    logger.info("short", {"a": 1})
    assert "truncated" not in _strict(stream.lines()[0])


# --- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("http://u:p@h/x", "http://[REDACTED]@h/x"),
    ("postgres://app:s3cr3t@db:5432/app", "postgres://[REDACTED]@db:5432/app"),
    ("https://TOKEN@github.com/o/r", "https://[REDACTED]@github.com/o/r"),
    ("amqp://u:p@ss@rabbit/", "amqp://[REDACTED]@rabbit/"),
    ("a ftp://u:p@a/ b smtp://v:q@b:25 c", "a ftp://[REDACTED]@a/ b smtp://[REDACTED]@b:25 c"),
    ("mail bob@example.com", "mail bob@example.com"),
    ("http://host/path@x", "http://host/path@x"),
    ("http://host/?u=a@b", "http://host/?u=a@b"),
    ("no url", "no url"),
])
def test_mask_credentials(text: str, expected: str) -> None:
    """The userinfo of scheme://userinfo@host is masked; '@' elsewhere is left alone."""
    assert mask_credentials(text) == expected


def test_redact_masks_url_credentials_in_every_string() -> None:
    """redact() masks URL credentials in strings at any depth and in a bare string."""
    url = "http://admin:hunter2@prom:9090/graph"
    redacted = redact({"generatorURL": url, "nested": [{"u": (url,)}], "n": 1}, KEYS)
    assert "hunter2" not in json.dumps(redacted)
    assert redacted["n"] == 1
    assert redact(url, KEYS) == "http://[REDACTED]@prom:9090/graph"


def test_redact_cuts_deep_values_to_a_placeholder() -> None:
    """Past the depth limit a subtree becomes [TOO DEEP], never a str() of it."""
    deep: Any = {"password": "hunter2"}
    for _ in range(40):
        deep = [{"k": deep}]
    text = json.dumps(redact(deep, KEYS))
    assert TOO_DEEP in text
    assert "hunter2" not in text


def test_redact_walks_sets_and_redacts_their_structured_items() -> None:
    """Sets become lists whose items are redacted like any other (no str() of the set)."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Creds:
        user: str
        password: str

    redacted = redact({"s": {Creds("u", "hunter2")}, "f": frozenset({1})}, KEYS)
    assert redacted == {"s": [{"user": "u", "password": REDACTED}], "f": [1]}


def test_messages_and_exceptions_have_url_credentials_masked() -> None:
    """URL credentials in the message and in the exception text are masked too."""
    logger, stream, _ = _logger()
    try:
        raise ConnectionError("cannot reach postgres://app:hunter2@db/app")
    except ConnectionError:
        logger.error("connecting to redis://:hunter2@cache:6379")
    (line,) = stream.lines()
    assert "hunter2" not in line
    assert "[REDACTED]@db/app" in _strict(line)["exception"]["message"]


def test_get_recent_logs_finds_a_component_by_its_text() -> None:
    """A component with a lone surrogate is kept as its text; filtering by either works."""
    logger = StructuredLogger(FSDECODED, registry=CollectorRegistry(), stream=Strict())
    logger.info("x")
    assert logger.component == "report-\ufffd.pdf"
    assert len(get_recent_logs(5, component=FSDECODED)) == 1
    assert len(get_recent_logs(5, component="report-\ufffd.pdf")) == 1
