"""bench/: the runner works end to end on tiny sizes and writes a well-formed table.

No timing assertions: figures from a shared machine prove nothing in a test. These tests only
check that every comparison runs, that the table has every row with a numeric ratio, and the
helpers' bookkeeping (interleaving, medians, target checks).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.cases import Result
from bench.harness import Budget, Runner, machine, measure
from bench.run import HEADER, RESULTS

REPO = Path(__file__).resolve().parents[2]
PEERS = ("opentelemetry.sdk", "circuitbreaker", "pybreaker", "backoff", "tenacity", "structlog",
         "starlette_exporter", "prometheus_fastapi_instrumentator",
         "opentelemetry.instrumentation.asgi", "opentelemetry.exporter.otlp.proto.http")
MISSING = [name for name in PEERS if importlib.util.find_spec(name.split(".")[0]) is None
           or importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"bench peers missing: {MISSING}; "
                                                      "install them with pip install -e .[bench]")

# (words in the vigil column, words in the peer column): one table line each.
EXPECTED = [
    ("`@monitor_performance`", "children bound once"),
    ("`@monitor_performance`", "`labels()` per call"),
    ("`trace_context` span", "OpenTelemetry SDK span"),
    ("`@trace_execution` call", "OpenTelemetry SDK span"),
    ("`trace_context` span", "OpenTelemetry API no-op span"),
    ("exported over OTLP: traced code's share", "BatchSpanProcessor"),
    ("export thread's work per span", "same sink"),
    ("exported over OTLP: traced code's share", "export off"),
    ("collector down", "export off"),
    ("sharing OpenTelemetry's context", "no processor"),
    ("`CircuitBreaker.call`", "pybreaker"),
    ("`CircuitBreaker.call`", "`circuitbreaker`"),
    ("`@with_retry`, success on the first try, sync", "backoff"),
    ("`@with_retry`, success on the first try, sync", "tenacity"),
    ("`@with_retry`, success on the first try, async", "backoff"),
    ("`@with_retry`, success on the first try, async", "tenacity"),
    ("`StructuredLogger.info` with metadata", "structlog"),
    ("`StructuredLogger.info` with metadata", "python-json-logger"),
    ("`/metrics`, 200 series", "`generate_latest`"),
    ("while `/metrics` renders, p99 latency", "no scrape"),
    ("while `/metrics` renders, longest single call", "one render"),
    ("under `PROMETHEUS_MULTIPROC_DIR`", "prometheus_client decorator, multiprocess mode"),
    ("under `PROMETHEUS_MULTIPROC_DIR`", "vigil single-process"),
    ("RSS growth", "budget"),
    ("webhook 2xx, p50", "`GET /healthz`"),
    ("webhook 2xx, p99", "`GET /healthz`, p99"),
    ("webhook alerts acknowledged/s", "alerts handled/s during the flood"),
    ("alerts handled/s after the flood", "acknowledged/s during the flood"),
    ("`VigilMiddleware` per request", "starlette-exporter"),
    ("`VigilMiddleware` per request", "prometheus-fastapi-instrumentator"),
    ("`VigilMiddleware` per request", "OpenTelemetry ASGI middleware, SDK tracer"),
    ("`VigilMiddleware` per request", "OpenTelemetry ASGI middleware, server span only"),
    ("Starlette request with `VigilMiddleware`", "no middleware"),
]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=110)


def table_rows(text: str) -> list[list[str]]:
    """The data lines of the results table, split into cells."""
    lines = text.splitlines()
    start = lines.index(HEADER.splitlines()[0])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One quick run of every row, written to a temporary file: (stdout, file text)."""
    output = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    done = run_bench("--quick", "--output", str(output))
    assert done.returncode == 0, done.stderr
    return done.stdout, output.read_text(encoding="utf-8")


def test_quick_run_writes_every_row_with_a_numeric_ratio(quick_results: tuple[str, str]) -> None:
    """A quick run writes one line per comparison of issue 6, each ratio a finite number."""
    _, text = quick_results
    rows = table_rows(text)
    assert len(rows) == len(EXPECTED)
    for vigil_words, peer_words in EXPECTED:
        matches = [r for r in rows if vigil_words in r[0] and peer_words in r[2]]
        assert len(matches) == 1, (vigil_words, peer_words)
    for row in rows:
        assert len(row) == 7, row
        assert math.isfinite(float(row[4])), row
        assert re.fullmatch(r"—|(<=|>=|<) \d+(\.\d+)?", row[5]), row
        assert row[6] in {"yes", "**no**", "—"}, row
        assert (row[5] == "—") == (row[6] == "—"), row


def test_results_file_names_the_machine_and_how_to_reproduce(
        quick_results: tuple[str, str]) -> None:
    """RESULTS.md states CPU, cores, Python, the peers' versions and the command to rerun."""
    _, text = quick_results
    for needle in ("CPU:", "cores:", "Python:", "opentelemetry-sdk", "pybreaker", "structlog",
                   "./run bench", "python -m bench.run", "quick"):
        assert needle in text, needle


def test_quick_run_prints_the_same_table(quick_results: tuple[str, str]) -> None:
    """The runner prints each line it writes, then a summary of targets met and missed."""
    stdout, text = quick_results
    assert table_rows(stdout) == table_rows(text)
    assert re.search(r"\d+ comparisons in \d+ s; \d+ targets met, \d+ missed\.", stdout)


def test_quick_run_without_output_leaves_results_alone() -> None:
    """A quick run of one row writes no file unless --output is given."""
    before = RESULTS.stat().st_mtime_ns if RESULTS.exists() else None
    done = run_bench("--quick", "--rows", "breaker")
    assert done.returncode == 0, done.stderr
    assert len(table_rows(done.stdout)) == 2
    assert "wrote" not in done.stdout
    assert (RESULTS.stat().st_mtime_ns if RESULTS.exists() else None) == before


def test_unknown_row_is_refused() -> None:
    """--rows with a name that is not a row exits 2 and lists the valid names."""
    done = run_bench("--quick", "--rows", "nope")
    assert done.returncode == 2
    assert "metrics" in done.stderr


def test_memory_child_reports_rss_growth() -> None:
    """bench.memory runs its rounds in its own process and prints the RSS growth as JSON."""
    done = subprocess.run([sys.executable, "-m", "bench.memory", "--records", "300",
                           "--baseline", "100"], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=110)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["records"] == 300
    assert math.isfinite(report["growth_mb"])


def test_measure_interleaves_and_takes_medians() -> None:
    """measure() rotates the order each repeat and returns each subject's median per call."""
    calls: list[str] = []
    samples = {"a": iter([0.0, 5.0, 1.0, 3.0, 2.0]), "b": iter([0.0, 4.0, 4.0, 4.0, 9.0])}

    def runner(name: str) -> Runner:
        def run(n: int) -> float:
            calls.append(name)
            return next(samples[name]) * n

        return run

    budget = Budget(quick=True, repeats=4, number=10, sample_seconds=0.0, warmup=1)
    medians = measure({"a": runner("a"), "b": runner("b")}, budget)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then rotated
    assert medians == {"a": 2.5, "b": 4.0}


def test_result_ratio_and_target_directions() -> None:
    """A ratio is vigil / peer; <=, < and >= targets are met or missed accordingly."""
    assert Result("c", 1.0, "p", 4.0, "µs", 0.25).met is True
    assert Result("c", 1.1, "p", 4.0, "µs", 0.25).met is False
    assert Result("c", 5.0, "p", 4.0, "lines/s", 1.0, ">=").met is True
    assert Result("c", 3.0, "p", 4.0, "lines/s", 1.0, ">=").met is False
    assert Result("c", 20.0, "p", 20.0, "MB", 1.0, "<").met is False
    assert Result("c", 1.0, "p", 4.0, "µs").met is None
    assert Result("c", 1.0, "p", 4.0, "µs").ratio == 0.25


def test_machine_facts_name_cpu_cores_python_and_peers() -> None:
    """machine() reports the CPU, core count, Python and a version for each peer package."""
    facts = machine()
    assert facts["cores"].isdigit()
    assert facts["Python"].startswith(("CPython", "PyPy"))
    for package in ("prometheus-client", "structlog", "tenacity"):
        assert facts[package] != "not installed"
