"""Hostile strings and values through every public recording call: /metrics and logs stay valid.

What an attacker (or os.listdir) can hand to the library: lone surrogates (``os.fsdecode`` of
bytes that are not UTF-8), objects whose ``__str__`` raises, NaN and infinities, integers too
long for ``str``, huge strings and values nested past every depth limit. Each example runs on
fresh collaborators (its own ``CollectorRegistry``, monitor, tracer, alert manager, loggers writing
to streams with a *strict* encoding), then proves:

* the registry renders with prometheus_client's text and OpenMetrics writers, ``promtool check
  metrics`` parses the text (lint warnings about user-chosen names are allowed, parse errors are
  not) and prometheus_client's OpenMetrics parser reads every family back;
* every log line decodes as strict UTF-8, is one JSON object that ``json.loads`` accepts with
  ``parse_constant`` refusing ``NaN``/``Infinity``, and fits ``monitoring.logging.max_line_bytes``;
* no call raises anything but a documented ``ValueError`` (refused counter increments, an empty
  metric name), and secrets are redacted at every depth.

Sizes: ~480 generated examples in the default run (about 15 s, much of it promtool); ``-m heavy``
runs ten times as many (about 3 minutes).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import vigil
from tests.reliability.conftest import sizes
from vigil.error_handling.breaker import CircuitBreaker
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.recovery import ErrorCategory, ErrorRecoveryManager, ErrorSeverity
from vigil.error_handling.retry import with_retry
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger, configure_logging, redact
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock

PROMTOOL = shutil.which("promtool")
DEFAULT_MAX_LINE_BYTES = 16383  # 16 KiB with the newline: what container runtimes split at
SECRET = "S3CR3T-h0st1le"
REDACT_KEYS = ("password", "secret", "token", "api_key", "authorization", "cookie")
FSDECODED = os.fsdecode(b"report-\xff.pdf")  # '\udcff' in it: what os.listdir returns
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH")


# --- hostile values -------------------------------------------------------------------------


class Unprintable:
    """``str()`` raises (hashable, so it can be a dict key too). Its repr works so that
    hypothesis can show a failing example; tests/unit/test_text.py covers a raising repr."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        return "Unprintable()"


class UnprintableError(Exception):
    """An exception whose message cannot be computed."""

    def __str__(self) -> str:
        raise TypeError("__str__ raised")


class HugeInt(int):
    """An int too long for ``str()`` (Python's 4300-digit limit), with a repr hypothesis can
    print; ``str()`` and JSON encoders still fail on it as on ``10 ** 5000``."""

    __str__ = int.__repr__

    def __repr__(self) -> str:
        return "HugeInt(10 ** 5000)"


HUGE = HugeInt(10 ** 5000)


class SurrogateStr:
    """``str()`` answers a lone surrogate."""

    def __str__(self) -> str:
        return "odd-\udc80"

    __repr__ = __str__


NASTY = ["report-\udcff.pdf", FSDECODED, "\ud800", "\udfff", "\ud83d\ude00", "a\ud83d",
         "\x00", "\n\"\\{}=,", "\u2028\u2029", "\ufeff", "é", "😀", " ", "", "{{}}", "%s%d",
         "x" * 200_000, "é" * 70_000, "\udcff" * 20_000]
_ANY_CHAR = st.one_of(st.characters(categories=["Cs"]), st.characters(exclude_categories=()))
TEXT = st.one_of(
    st.text(_ANY_CHAR, max_size=30),
    st.binary(max_size=30).map(os.fsdecode),
    st.sampled_from(NASTY),
)
NAME = TEXT.filter(lambda s: s.strip() != "")
OBJECT = st.one_of(st.builds(Unprintable), st.builds(SurrogateStr), st.just(HUGE),
                   st.floats(), st.integers(), st.none(), st.booleans(),
                   st.binary(max_size=8), st.just(UnprintableError()))
LABEL_VALUE = st.one_of(TEXT, OBJECT)
KEY = st.one_of(TEXT, st.integers(), st.builds(Unprintable), st.just(HUGE),
                st.just(float("nan")), st.sampled_from(["password", "db_Password", "X-Api-Key"]))
SCALAR = st.one_of(TEXT, OBJECT, st.just(math.nan), st.just(math.inf), st.just(-math.inf))


def _nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 3 else [value]
    return value


VALUE = st.one_of(
    st.recursive(SCALAR, lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(KEY, kids, max_size=4),
        st.tuples(kids, kids), st.frozensets(st.sampled_from(["a", "\udcff", 1]))),
        max_leaves=12),
    st.builds(_nest, st.integers(10, 80), SCALAR),
)
METADATA = st.one_of(st.none(), st.dictionaries(KEY, VALUE, max_size=5))
LEVELS = ["debug", "info", "warning", "error", "critical"]


def _failing_call(exc: BaseException) -> Callable[[], None]:
    def call() -> None:
        raise exc

    return call


# --- the checks -----------------------------------------------------------------------------


def assert_exposition_valid(registry: CollectorRegistry) -> None:
    """Text and OpenMetrics render; promtool parses the text; the OpenMetrics parser reads it."""
    text = generate_latest(registry)
    openmetrics = generate_openmetrics(registry)
    text.decode("utf-8")  # strict
    list(text_string_to_metric_families(openmetrics.decode("utf-8")))  # raises if invalid
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                            timeout=60, check=False)
    # 0: clean; 3: lint problems only (user-chosen names without _total, no help...).
    # 1 with "error while linting" is a parse error: the exposition itself is invalid.
    assert result.returncode in (0, 3), (result.returncode, result.stderr[:500], text[:2000])
    assert b"error while linting" not in result.stderr, result.stderr[:500]


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"non-JSON constant {name} in a log line")


def assert_lines_valid(raw: bytes, *, max_bytes: int = DEFAULT_MAX_LINE_BYTES
                       ) -> list[dict[str, Any]]:
    """Every line: strict UTF-8, strict JSON (no NaN/Infinity), an object, within the cap."""
    text = raw.decode("utf-8")  # strict: a lone surrogate cannot have been written
    assert text == "" or text.endswith("\n"), text[-200:]
    lines = []
    for line in text.split("\n")[:-1]:  # what a log shipper splits on
        assert len(line.encode("utf-8")) <= max_bytes, len(line.encode("utf-8"))
        parsed = json.loads(line, parse_constant=_refuse_constant)
        assert isinstance(parsed, dict)
        lines.append(parsed)
    return lines


class StrictStream(io.TextIOWrapper):
    """What ``open(path, "w", encoding=...)`` returns: a text file with strict encoding."""

    def __init__(self, encoding: str = "utf-8") -> None:
        super().__init__(io.BytesIO(), encoding=encoding, errors="strict", write_through=True)

    def raw_bytes(self) -> bytes:
        self.flush()
        buffer = self.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue()


@contextlib.contextmanager
def collaborators() -> Iterator[dict[str, Any]]:
    """A fresh registry, strict-stream logger, fake clock and alert manager for one example."""
    registry = CollectorRegistry()
    stream = StrictStream()
    logger = StructuredLogger("hostile", registry=registry, stream=stream, level="DEBUG")
    clock = FakeClock()
    manager = AlertManager(registry=registry, clock=clock, logger=logger)
    try:
        yield {"registry": registry, "stream": stream, "logger": logger, "clock": clock,
               "manager": manager}
    finally:
        manager.close()


HYPOTHESIS = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


# --- metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("examples", sizes(50, 500))
def test_performance_monitor_records_keep_the_exposition_valid(examples: int) -> None:
    """Hostile names, tags and values in every PerformanceMonitor record keep /metrics valid."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(kind=st.sampled_from(["increment_counter", "record_gauge", "record_histogram"]),
           name=NAME, tags=st.one_of(st.none(), st.dictionaries(
               st.one_of(TEXT, st.sampled_from(["path", "file"])), LABEL_VALUE, max_size=3)),
           value=st.one_of(st.floats(), st.integers(-10, 10**6)), again=LABEL_VALUE)
    @example(kind="increment_counter", name="files", tags={"name": FSDECODED}, value=1,
             again=FSDECODED)
    @example(kind="increment_counter", name=":", tags={"": ""}, value=1, again="")  # heavy run
    def run(kind: str, name: str, tags: dict[str, Any] | None, value: float,
            again: Any) -> None:
        registry = CollectorRegistry()
        monitor = PerformanceMonitor(registry=registry)
        record = getattr(monitor, kind)
        with contextlib.suppress(ValueError):
            record(name, value, tags)
        if tags:  # the same series again, with a hostile value in the first tag
            with contextlib.suppress(ValueError):
                record(name, 1, {**tags, next(iter(tags)): again})
        assert_exposition_valid(registry)
        json.dumps(monitor.get_all_metrics(), ensure_ascii=False, default=str).encode("utf-8")
        monitor.get_metric_stats(name)

    run()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1, -1e-9])
def test_counters_refuse_non_finite_and_negative_increments(value: float) -> None:
    """NaN, infinite and negative increments: ValueError naming metric and value; total kept."""
    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)
    monitor.increment_counter("jobs_done", 2)
    with pytest.raises(ValueError, match="jobs_done") as raised:
        monitor.increment_counter("jobs_done", value)
    assert repr(value) in str(raised.value) or str(value) in str(raised.value)
    assert registry.get_sample_value("jobs_done_total") == 2
    assert monitor.get_metric_stats("jobs_done")["sum"] == 2
    assert_exposition_valid(registry)


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_monitor_performance_names_keep_the_exposition_valid(examples: int) -> None:
    """@monitor_performance names and failing exception classes never break /metrics."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(name=TEXT, class_name=st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
           .filter(str.isidentifier), fail=st.booleans())
    @example(name=FSDECODED, class_name="Ошибка", fail=True)
    def run(name: str, class_name: str, fail: bool) -> None:
        registry = CollectorRegistry()
        monitor = PerformanceMonitor(registry=registry)
        error_class = type(class_name, (UnprintableError,), {})

        @monitor_performance(name, monitor=monitor)
        def work() -> int:
            if fail:
                raise error_class()
            return 1

        with contextlib.suppress(UnprintableError):
            work()
        assert_exposition_valid(registry)

    run()


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_breaker_and_retry_names_keep_the_exposition_and_the_logs_valid(examples: int) -> None:
    """Hostile breaker and retry names: metrics, log lines and the open alert stay valid."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(name=NAME, operation=NAME, message=TEXT)
    @example(name=FSDECODED, operation=FSDECODED, message=FSDECODED)
    def run(name: str, operation: str, message: str) -> None:
        with collaborators() as c:
            breaker = CircuitBreaker(failure_threshold=1, name=name, clock=c["clock"],
                                     registry=c["registry"], alert_manager=c["manager"],
                                     logger=c["logger"])
            with contextlib.suppress(ValueError):
                breaker.call(_failing_call(ValueError(message)))
            with contextlib.suppress(CircuitOpenError):
                breaker.call(_failing_call(ValueError(message)))
            retried = with_retry(2, initial_delay=0, operation=operation, clock=c["clock"],
                                 registry=c["registry"], logger=c["logger"])(
                _failing_call(UnprintableError()))
            with contextlib.suppress(UnprintableError):
                retried()
            assert_exposition_valid(c["registry"])
            assert_lines_valid(c["stream"].raw_bytes())

    run()


# --- traces -------------------------------------------------------------------------------------


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_trace_components_operations_and_metadata_keep_the_exposition_valid(
        examples: int) -> None:
    """Hostile trace components, operations, statuses and metadata keep /metrics valid."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(component=LABEL_VALUE, operation=LABEL_VALUE, metadata=METADATA, status=TEXT,
           raises=st.booleans())
    @example(component=FSDECODED, operation="read", metadata={"file": FSDECODED},
             status="success", raises=False)
    def run(component: Any, operation: Any, metadata: Any, status: str, raises: bool) -> None:
        with collaborators() as c:
            tracer = ExecutionTracer(registry=c["registry"], clock=c["clock"], logger=c["logger"])
            with contextlib.suppress(UnprintableError), \
                    trace_context(component, operation, metadata, tracer=tracer):
                if raises:
                    raise UnprintableError()
            span = tracer.start_trace(component, operation, metadata)
            tracer.end_trace(span, status=status, metadata=metadata)
            assert_exposition_valid(c["registry"])
            assert_lines_valid(c["stream"].raw_bytes())

    run()


# --- logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("examples", sizes(60, 600))
@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_structured_logger_never_raises_and_writes_strict_json(examples: int,
                                                               encoding: str) -> None:
    """StructuredLogger never raises on strict streams; lines are strict, capped, redacted."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(component=LABEL_VALUE, message=st.one_of(TEXT, OBJECT), metadata=METADATA,
           level=st.sampled_from(LEVELS), depth=st.integers(0, 60),
           error=st.sampled_from([None, UnprintableError(), ValueError("\udcff"),
                                  KeyError(Unprintable())]))
    @example(component="c", message=FSDECODED, metadata={"n": math.nan}, level="info", depth=0,
             error=None)
    def run(component: Any, message: Any, metadata: dict[Any, Any] | None, level: str,
            depth: int, error: BaseException | None) -> None:
        registry = CollectorRegistry()
        stream = StrictStream(encoding)
        logger = StructuredLogger(component, registry=registry, stream=stream, level="DEBUG")
        secret_path = _nest(depth, {"db_password": SECRET, "url": f"https://bob:{SECRET}@db/x"})
        logged = {**(metadata or {}), "deep": secret_path}
        getattr(logger, level)(message, logged, exc_info=error)
        if error is not None:
            try:
                raise error
            except BaseException:
                logger.exception(message, logged)
        lines = assert_lines_valid(stream.raw_bytes())
        assert len(lines) == (2 if error is not None else 1)
        assert SECRET not in stream.raw_bytes().decode("utf-8")
        assert_exposition_valid(registry)

    run()


@pytest.mark.parametrize("examples", sizes(40, 400))
@pytest.mark.usefixtures("root_logging")
def test_stdlib_records_through_configure_logging_never_raise(examples: int,
                                                              tmp_path: Any) -> None:
    """Stdlib records with hostile messages and args write strict JSON to a strict file."""
    path = tmp_path / "app.log"
    stdlib = logging.getLogger("hostile.stdlib")
    written = [0]
    with open(path, "w", encoding="utf-8") as stream:  # strict, as open()'s default is
        handler = configure_logging("DEBUG", stream=stream, registry=CollectorRegistry())
        # Only vigil's handler: pytest's own capture handler on the root logger would raise
        # on a record whose arguments do not fit its message.
        stdlib.addHandler(handler)
        stdlib.propagate = False

        @settings(max_examples=examples, **HYPOTHESIS)
        @given(message=st.one_of(TEXT, OBJECT), args=st.lists(LABEL_VALUE, max_size=2),
               extra=st.dictionaries(st.sampled_from(["file", "path", "user", "token"]), VALUE,
                                     max_size=3))
        @example(message="%s and %d", args=[FSDECODED], extra={"file": FSDECODED})
        def run(message: Any, args: list[Any], extra: dict[str, Any]) -> None:
            stdlib.warning(message, *args, extra=extra)
            try:
                raise UnprintableError()
            except UnprintableError:
                stdlib.exception(message, extra=extra)
            written[0] += 2

        try:
            run()
        finally:
            stdlib.removeHandler(handler)
            stdlib.propagate = True
        stream.flush()
    assert len(assert_lines_valid(path.read_bytes())) == written[0]


def test_a_message_with_a_lone_surrogate_reaches_a_strict_file(tmp_path: Any) -> None:
    """The issue's fsdecoded file name reaches a strict file as U+FFFD instead of raising."""
    path = tmp_path / "app.log"
    with open(path, "w", encoding="utf-8") as stream:
        logger = StructuredLogger(FSDECODED, registry=CollectorRegistry(), stream=stream)
        logger.info(f"processed {FSDECODED}", {"file": FSDECODED, FSDECODED: 1})
    (line,) = assert_lines_valid(path.read_bytes())
    assert line["message"] == "processed report-\ufffd.pdf"
    assert line["metadata"] == {"file": "report-\ufffd.pdf", "report-\ufffd.pdf": 1}
    assert line["component"] == "report-\ufffd.pdf"


def test_non_finite_floats_are_written_as_strings() -> None:
    """NaN and the infinities in metadata become "NaN"/"Infinity"/"-Infinity": strict JSON."""
    stream = StrictStream()
    logger = StructuredLogger("nan", registry=CollectorRegistry(), stream=stream)
    logger.info("odd numbers", {"n": math.nan, "i": math.inf, "m": [-math.inf, 1.5]})
    (line,) = assert_lines_valid(stream.raw_bytes())
    assert line["metadata"] == {"n": "NaN", "i": "Infinity", "m": ["-Infinity", 1.5]}


@pytest.mark.parametrize("examples", sizes(30, 300))
def test_log_lines_are_capped_and_say_they_were_cut(examples: int) -> None:
    """Huge lines fit max_line_bytes, stay JSON and carry truncated + original_bytes."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(message_size=st.integers(0, 200_000), value_size=st.integers(0, 200_000),
           keys=st.integers(0, 3000), char=st.sampled_from(["x", "é", "😀", "\x01", "\udcff"]),
           with_stack=st.booleans())
    @example(message_size=200_000, value_size=0, keys=0, char="x", with_stack=False)
    def run(message_size: int, value_size: int, keys: int, char: str, with_stack: bool) -> None:
        stream = StrictStream()
        logger = StructuredLogger("big", registry=CollectorRegistry(), stream=stream)
        metadata = {"blob": char * value_size, **{f"k{i}": i for i in range(keys)}}
        error = ValueError(char * value_size) if with_stack else None
        logger.info(char * message_size, metadata, exc_info=error)
        (line,) = assert_lines_valid(stream.raw_bytes())
        original = len(json.dumps({"message": char * message_size, "metadata": metadata},
                                  ensure_ascii=False).encode("utf-8", "replace"))
        if original > DEFAULT_MAX_LINE_BYTES:
            assert line["truncated"] is True
            assert line["original_bytes"] > DEFAULT_MAX_LINE_BYTES
        assert line["level"] == "INFO"
        assert line["component"] == "big"

    run()


def test_the_line_cap_is_configurable() -> None:
    """monitoring.logging.max_line_bytes sets the cap; the timestamp and level survive a cut."""
    vigil.configure({"monitoring": {"logging": {"max_line_bytes": 2048}}})
    stream = StrictStream()
    logger = StructuredLogger("small", registry=CollectorRegistry(), stream=stream)
    logger.warning("m" * 5000, {"blob": "v" * 5000})
    (line,) = assert_lines_valid(stream.raw_bytes(), max_bytes=2048)
    assert line["truncated"] is True
    assert line["original_bytes"] > 10_000
    assert line["level"] == "WARNING"
    assert line["message"].startswith("mmm")


# --- the recovery manager and alerts ------------------------------------------------------------


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_handle_error_never_raises_and_keeps_everything_valid(examples: int) -> None:
    """handle_error never raises on hostile input; metrics, lines and alerts stay valid."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(component=TEXT, operation=TEXT, metadata=METADATA,
           severity=st.sampled_from(list(ErrorSeverity)),
           category=st.sampled_from(list(ErrorCategory)),
           error=st.one_of(TEXT.map(ValueError), st.just(UnprintableError()),
                           st.just(OSError(2, FSDECODED))))
    @example(component="FileProcessor", operation="read_file",
             metadata={"file_path": FSDECODED}, severity=ErrorSeverity.HIGH,
             category=ErrorCategory.FILE_PROCESSING, error=ValueError(FSDECODED))
    def run(component: str, operation: str, metadata: dict[Any, Any] | None,
            severity: ErrorSeverity, category: ErrorCategory, error: BaseException) -> None:
        with collaborators() as c:
            recovery = ErrorRecoveryManager(registry=c["registry"], alert_manager=c["manager"],
                                            logger=c["logger"], clock=c["clock"])
            action = recovery.handle_error(error, category, severity, component, operation,
                                           metadata)
            assert action.action_type in ("retry", "fallback", "skip", "abort")
            assert_exposition_valid(c["registry"])
            assert_lines_valid(c["stream"].raw_bytes())
            for alert in c["manager"].get_recent_alerts():
                json.dumps(dict(alert), allow_nan=False, ensure_ascii=False).encode("utf-8")

    run()


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_send_alert_never_raises_and_keeps_everything_valid(examples: int) -> None:
    """send_alert never raises on hostile input; dict(alert) is strict UTF-8 JSON."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(component=LABEL_VALUE, message=st.one_of(TEXT, OBJECT), metadata=METADATA,
           labels=st.dictionaries(KEY, LABEL_VALUE, max_size=3),
           annotations=st.dictionaries(KEY, LABEL_VALUE, max_size=3),
           severity=st.sampled_from(["low", "medium", "high", "critical"]))
    @example(component=FSDECODED, message=FSDECODED, metadata={"file": FSDECODED},
             labels={"file": FSDECODED}, annotations={}, severity="high")
    def run(component: Any, message: Any, metadata: dict[Any, Any] | None,
            labels: dict[Any, Any], annotations: dict[Any, Any], severity: str) -> None:
        with collaborators() as c:
            alert = c["manager"].send_alert(severity, component, message, metadata,
                                            labels=labels, annotations=annotations)
            json.dumps(dict(alert), allow_nan=False, ensure_ascii=False).encode("utf-8")
            assert_exposition_valid(c["registry"])
            assert_lines_valid(c["stream"].raw_bytes())

    run()


# --- redaction ----------------------------------------------------------------------------------


def _contains_secret(value: Any) -> bool:
    return SECRET in json.dumps(value, ensure_ascii=False, default=str)


@pytest.mark.parametrize("examples", sizes(40, 400))
def test_alert_metadata_is_redactable_at_every_depth(examples: int) -> None:
    """redact() removes secrets from alert metadata at any depth, labels and URLs."""

    @settings(max_examples=examples, **HYPOTHESIS)
    @given(depth=st.integers(0, 60), key=st.sampled_from(["password", "API_KEY", "x-token"]))
    @example(depth=16, key="password")
    def run(depth: int, key: str) -> None:
        with collaborators() as c:
            alert = c["manager"].send_alert(
                "high", "C", "m", {"deep": _nest(depth, {key: SECRET})},
                labels={"db_password": SECRET},
                annotations={"generatorURL": f"http://admin:{SECRET}@prom:9090/graph?g0.expr=up"})
            shown = redact(dict(alert), REDACT_KEYS)
            assert not _contains_secret(shown), shown

    run()


@pytest.mark.parametrize("url", [
    f"http://admin:{SECRET}@prometheus:9090/graph?g0.expr=up",
    f"postgres://app:{SECRET}@db.internal:5432/app",
    f"redis://:{SECRET}@cache:6379/0",
    f"see https://{SECRET}@github.com/org/repo.git for the mirror",
    f"two: ftp://u:{SECRET}@a/ and smtp://v:{SECRET}@b:25",
    f"amqp://guest:p@ss{SECRET}@rabbit/",
])
def test_url_credentials_are_masked_in_string_values(url: str) -> None:
    """redact() and log lines mask user:password@ in URLs inside string values."""
    value = {"generatorURL": url, "nested": [{"links": (url,)}], "plain": "no url here"}
    shown = redact(value, REDACT_KEYS)
    assert not _contains_secret(shown), shown
    assert shown["plain"] == "no url here"
    stream = StrictStream()
    StructuredLogger("urls", registry=CollectorRegistry(), stream=stream).info("x", value)
    assert SECRET not in stream.raw_bytes().decode("utf-8")
