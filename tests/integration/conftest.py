"""Integration tests run the real Prometheus and Alertmanager from the Debian packages."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from vigil_exporter.stack import find_alertmanager, find_prometheus

# ./run test installs both packages, so in CI these tests always run; a developer without them
# sees them skipped with the reason instead of failing on a missing binary.
requires_stack = pytest.mark.skipif(
    find_prometheus() is None or find_alertmanager() is None,
    reason="prometheus and prometheus-alertmanager are not installed (./run test installs them)")


def prom_query(base_url: str, expr: str) -> list[dict[str, Any]]:
    """Run an instant PromQL query; the result vector."""
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)  # readiness polling against a deadline, not waiting out a timeout


def terminate(proc: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """Stop a child server by PID: SIGTERM, SIGKILL after ``grace`` seconds (tests' finally)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
