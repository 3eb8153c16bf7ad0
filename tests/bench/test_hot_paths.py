"""The hot paths tuned for the benchmarks keep their behaviour.

Logs: ``format_entry`` writes the bytes python-json-logger's own ``jsonify_log_record`` writes;
the redaction and timestamp memos answer as the functions they stand for. Traces: the duration
histogram, now counted under the tracer's lock and built at scrape time, keeps the label-set cap
and its ``other`` series, the ``_created`` samples, and prometheus_client values under
multiprocess mode.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.clock import format_rfc3339
from vigil.monitoring import logs
from vigil.monitoring.logs import JsonLineFormatter, redact
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock

REPO = Path(__file__).resolve().parents[2]
DURATION = "vigil_trace_duration_seconds"


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    tags: list[str]


class Quiet:
    def warning(self, message: str, *, metadata: dict[str, Any] | None = None,
                trace_id: str | None = None, span_id: str | None = None) -> None:
        pass


ENTRIES: list[dict[str, Any]] = [
    {},
    {"timestamp": "2026-01-01T00:00:00.000Z", "level": "INFO", "component": "C",
     "message": "héllo \u2028 \U0001f600 \"q\" \\ \n\t\x00", "trace_id": None, "span_id": None,
     "metadata": {"file": "a.pdf", "size": 1234, "ratio": 0.5, "ok": True, "none": None}},
    {"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "day": datetime.date(2026, 1, 1),
     "set": {1}, "bytes": b"\xff\x00", "enum": Colour.RED, "point": Point(1, ["a"]),
     "type": int, "error": ValueError("bad"), "uuid": uuid.UUID(int=5), "obj": object(),
     "nan": math.nan, "inf": -math.inf, "big": 10**30, "tuple": (1, "x"),
     "keys": {1: "int", None: "none", 2.5: "float", False: "bool"}},
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_format_entry_writes_python_json_loggers_bytes(entry: dict[str, Any],
                                                       ascii_only: bool) -> None:
    """format_entry's line equals jsonify_log_record's for every kind of value."""
    formatter = JsonLineFormatter(redact_keys=["password"])
    formatter.json_ensure_ascii = ascii_only
    assert formatter.format_entry(entry) == formatter.jsonify_log_record(entry)


def test_format_entry_refuses_what_python_json_logger_refuses() -> None:
    """A cyclic entry or a tuple key raises the same error as json.dumps does."""
    formatter = JsonLineFormatter(redact_keys=["password"])
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    bad_entries: list[dict[Any, Any]] = [cyclic, {("a",): 1}]
    for bad in bad_entries:
        with pytest.raises((ValueError, TypeError)) as ours:
            formatter.format_entry(bad)
        with pytest.raises((ValueError, TypeError)) as theirs:
            formatter.jsonify_log_record(bad)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_format_entry_follows_changed_json_settings() -> None:
    """Changing a json_* setting after construction changes format_entry's output with it."""
    formatter = JsonLineFormatter(redact_keys=["password"])
    entry = {"a": 1, "b": "é", "c": object()}
    formatter.json_indent = 2
    assert formatter.format_entry(entry) == formatter.jsonify_log_record(entry)
    assert "\n" in formatter.format_entry(entry)
    formatter.json_indent = None
    formatter.json_default = lambda value: "custom"
    formatter.json_encoder = None
    assert formatter.format_entry(entry) == '{"a": 1, "b": "é", "c": "custom"}'


def test_redaction_memo_follows_the_keys_asked_for() -> None:
    """One metadata key is judged against each set of redact keys separately."""
    metadata = {"user_ssn": "1", "api_token": "2", "nested": {"user_ssn": 3}}
    assert redact(metadata, ["token"]) == {"user_ssn": "1", "api_token": "[REDACTED]",
                                           "nested": {"user_ssn": 3}}
    assert redact(metadata, ["ssn"]) == {"user_ssn": "[REDACTED]", "api_token": "2",
                                         "nested": {"user_ssn": "[REDACTED]"}}
    # A key JSON cannot hold (a tuple) becomes its str, so the line can still be written.
    assert redact({7: "x", ("t", "password"): "y"}, ["password"]) == \
        {7: "x", "('t', 'password')": "[REDACTED]"}


def test_redaction_depth_cut_still_applies_to_plain_values() -> None:
    """A plain value nested past the depth limit is cut, as before the inline fast path."""
    deep: dict[str, Any] = {"v": 1}
    for _ in range(40):
        deep = {"k": deep}
    text = repr(redact(deep, ["password"]))
    assert "[TOO DEEP]" in text
    assert "'v': 1" not in text


def test_timestamp_memo_matches_format_rfc3339(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-millisecond timestamp reuse gives format_rfc3339's text for every instant."""
    for instant in (1767225600.0, 1767225600.0004, 1767225600.0009, 1767225600.001,
                    1767225600.999, 1767225601.0, 1767225599.5):
        monkeypatch.setattr(time, "time", lambda instant=instant: instant)
        assert logs._timestamp() == format_rfc3339(instant)


def test_trace_durations_past_the_cap_go_to_other_and_are_counted() -> None:
    """Past max_series_per_metric label sets, durations land in one 'other' series, counted."""
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": 2}}})
    registry = CollectorRegistry()
    clock = FakeClock()
    tracer = ExecutionTracer(clock=clock, registry=registry, logger=Quiet())
    for operation in ("a", "b", "c", "d", "c"):
        with trace_context("C", operation, tracer=tracer):
            clock.advance(0.002)

    def count(labels: dict[str, str]) -> float | None:
        return registry.get_sample_value(DURATION + "_count", labels)

    assert count({"component": "C", "operation": "a", "status": "success"}) == 1
    assert count({"component": "C", "operation": "b", "status": "success"}) == 1
    assert count({"component": "C", "operation": "c", "status": "success"}) is None
    assert count({"component": "other", "operation": "other", "status": "other"}) == 3
    assert registry.get_sample_value("vigil_dropped_series_total", {"metric": DURATION}) == 3


def test_trace_duration_series_have_created_samples() -> None:
    """Each duration series has its _created sample, as a prometheus_client histogram has."""
    registry = CollectorRegistry()
    tracer = ExecutionTracer(registry=registry, logger=Quiet())
    with trace_context("C", "op", tracer=tracer):
        pass
    created = registry.get_sample_value(DURATION + "_created",
                                        {"component": "C", "operation": "op",
                                         "status": "success"})
    assert created is not None
    assert created > 1.7e9


def test_trace_durations_reach_multiprocess_collector(tmp_path: Path) -> None:
    """Under PROMETHEUS_MULTIPROC_DIR the durations live in prometheus_client's files."""
    script = (
        "from prometheus_client import CollectorRegistry, multiprocess\n"
        "from vigil.monitoring.tracing import ExecutionTracer, trace_context\n"
        "tracer = ExecutionTracer(registry=CollectorRegistry())\n"
        "for _ in range(3):\n"
        "    with trace_context('C', 'op', tracer=tracer):\n"
        "        pass\n"
        "tracer.end_trace(tracer.start_trace('C', 'manual'))\n"
        "merged = CollectorRegistry()\n"
        f"multiprocess.MultiProcessCollector(merged, path={str(tmp_path)!r})\n"
        "labels = {'component': 'C', 'status': 'success'}\n"
        "print(merged.get_sample_value('vigil_trace_duration_seconds_count',"
        " {**labels, 'operation': 'op'}),"
        " merged.get_sample_value('vigil_trace_duration_seconds_count',"
        " {**labels, 'operation': 'manual'}))\n")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3.0", "1.0"]
