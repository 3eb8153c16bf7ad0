"""`vigil demo`, shortened, run as a user runs it: a process with the real stack when installed."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vigil_exporter.stack import find_alertmanager, find_prometheus

pytestmark = pytest.mark.integration
HAVE_STACK = find_prometheus() is not None and find_alertmanager() is not None


def _run_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "demo.log"
    # scale 0.3: the minute-long story (outage, open, recovery, runaway agents) in ~18 s.
    argv = [sys.executable, "-m", "vigil_exporter.cli", "demo", "--duration", "30",
            "--scale", "0.3", "--seed", "7", "--port", "0", "--progress-interval", "2",
            "--log-file", str(log), *extra]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    return result, log


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


@pytest.mark.skipif(not HAVE_STACK, reason="prometheus/prometheus-alertmanager not installed")
def test_demo_with_stack_trips_recovers_and_receives_alerts(tmp_path: Path) -> None:
    """The breaker opens and recovers, and Prometheus alerts arrive through Alertmanager."""
    result, log = _run_demo(tmp_path)
    err = result.stderr
    assert "vigil demo: Prometheus" in err
    assert "vigil demo: Alertmanager" in err
    assert _count(r"tripped (\d+) time", err) >= 1
    assert _count(r"recovered (\d+) time", err) >= 1
    assert _count(r"fired \d+ \([^)]*alertmanager (\d+)", err) >= 1
    assert re.search(r"^\[\s*\d+\.\ds\] calls=", err, re.M), "no progress line"
    # Every log line is JSON; the stack's children are gone (their ports closed) at exit.
    lines = log.read_text().splitlines()
    assert lines
    assert all(json.loads(line)["timestamp"] for line in lines)
    for url in re.findall(r"vigil demo: (?:Prometheus|Alertmanager) +(http://\S+)", err):
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as probe:
            assert probe.connect_ex((host, int(port))) != 0, f"{url} still answers"


def test_demo_without_stack_runs_the_exporter_alone(tmp_path: Path) -> None:
    """--no-stack runs on the embedded exporter only and still shows the breaker story."""
    result, _log = _run_demo(tmp_path, "--no-stack")
    assert "vigil demo: Prometheus" not in result.stderr
    assert "vigil demo: metrics      http://127.0.0.1:" in result.stderr
    assert _count(r"tripped (\d+) time", result.stderr) >= 1
    assert _count(r"recovered (\d+) time", result.stderr) >= 1
