"""The README's gunicorn recipe on a real gunicorn: 4 uvicorn workers, PROMETHEUS_MULTIPROC_DIR.

Each test starts ``gunicorn -c examples/gunicorn/gunicorn.conf.py service:app`` (the recipe's
files, as written) on loopback. Requests go on fresh connections, so the kernel spreads them
over the workers, and so do scrapes: every scrape must still count every worker's calls.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.durability.support import TOKEN
from tests.integration.conftest import prom_query, requires_stack, wait_until
from tests.production.support import Gunicorn, files_of, samples, value
from vigil_exporter.stack import LocalStack

CALLS = 400  # /checkout requests: each is one call of the decorated checkout()
SCRAPES = 12
DEADLINE = 30.0


def _load(server: Gunicorn, n: int) -> Counter[int]:
    """``n`` checkout requests from 4 threads; how many each worker pid served."""
    def one(_: int) -> int:
        status, body = server.request("GET", "/checkout")
        assert status == 200, body[:300]
        pid: int = json.loads(body)["pid"]
        return pid

    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(one, range(n)))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Gunicorn]:
    gunicorn = Gunicorn(tmp_path)
    try:
        yield gunicorn.start()
    finally:
        gunicorn.stop()


def test_every_scrape_counts_every_workers_calls(server: Gunicorn) -> None:
    """12 scrapes after 400 calls over 4 workers each read exactly 400 calls and 400 timings."""
    served = _load(server, CALLS)
    assert len(served) >= 2, f"the kernel sent every request to one worker: {served}"
    for _ in range(SCRAPES):
        text = server.scrape()
        assert value(text, "vigil_function_calls_total", function="checkout") == CALLS
        assert value(text, "vigil_function_duration_seconds_count", function="checkout") == CALLS
        assert value(text, "vigil_function_duration_seconds_bucket", function="checkout",
                     le="+Inf") == CALLS


def test_exposition_has_each_family_once_and_passes_promtool(server: Gunicorn) -> None:
    """Under multiprocess mode /metrics names each family once; promtool check metrics is clean."""
    _load(server, 20)
    text = server.scrape()
    helps = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# HELP"))
    assert [name for name, n in helps.items() if n > 1] == []
    # Per-process families would describe whichever worker answered: left out.
    assert not any(name.startswith(("process_", "python_gc_")) for name in helps)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (./run test installs prometheus)")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_breaker_open_in_one_worker_shows_with_its_pid(server: Gunicorn) -> None:
    """A breaker opened in one of 4 workers: one OPEN series (that pid), three CLOSED, and
    /api/breakers from any worker lists all four states."""
    status, body = server.request("POST", "/payments/outage")
    assert status == 200
    opened = json.loads(body)["pid"]
    text = server.scrape()
    states = samples(text, "vigil_circuit_breaker_state")
    payments = [(labels, v) for labels, v in states if labels["breaker"] == "payments"]
    open_pids = {labels["pid"] for labels, v in payments if labels["state"] == "OPEN" and v == 1}
    closed_pids = {labels["pid"] for labels, v in payments
                   if labels["state"] == "CLOSED" and v == 1}
    assert open_pids == {str(opened)}
    assert closed_pids == {str(pid) for pid in server.worker_pids()} - {str(opened)}
    # Whichever worker answers /api/breakers shows every worker's state of the breaker.
    for _ in range(8):
        status, body = server.request("GET", "/api/breakers")
        assert status == 200
        entry = next(e for e in json.loads(body) if e["name"] == "payments")
        assert entry["workers"] == {pid: "OPEN" if pid == str(opened) else "CLOSED"
                                    for pid in open_pids | closed_pids}


def test_killed_worker_leaves_the_live_series_and_the_totals_stay(server: Gunicorn) -> None:
    """SIGKILL a worker: child_exit drops its gauges, its calls stay counted, 2 files remain."""
    served = _load(server, CALLS)
    victim = max(served, key=lambda pid: served[pid])  # the worker holding the most calls
    before, started = server.worker_pids(), server.started()
    os.kill(victim, signal.SIGKILL)
    after = server.wait_workers(len(before), without=victim, started=started + 1)

    def gone() -> str | None:
        text = server.scrape()
        pids = {labels["pid"] for labels, _ in samples(text, "vigil_circuit_breaker_state")}
        return text if pids == {str(pid) for pid in after} else None

    text = wait_until(gone, DEADLINE, "the killed worker's breaker series to go")
    assert value(text, "vigil_function_calls_total", function="checkout") == CALLS
    # What a worker's death leaves on disk: its counters' and histograms' files, no gauges.
    left = files_of(server.metrics_dir, victim)
    assert left == [f"counter_{victim}.db", f"histogram_{victim}.db"]


def test_preload_workers_run_alert_handlers_and_show_breaker_state(tmp_path: Path) -> None:
    """--preload: handlers registered in the master run in each worker; no master series."""
    server = Gunicorn(tmp_path, workers=2, preload=True)
    try:
        server.start()
        master = server.proc.pid if server.proc else -1
        workers = server.worker_pids()
        text = server.scrape()
        pids = {labels["pid"] for labels, v in samples(text, "vigil_circuit_breaker_state")
                if labels["breaker"] == "payments" and labels["state"] == "CLOSED" and v == 1}
        assert pids == {str(pid) for pid in workers}  # each worker CLOSED=1, the master absent
        status, body = server.request("POST", "/page")
        assert status == 200
        sender = json.loads(body)["pid"]
        webhook = {"version": "4", "status": "firing", "receiver": "vigil", "groupKey": "g",
                   "alerts": [{"status": "firing", "labels": {"alertname": "PreloadProbe"},
                               "annotations": {}, "startsAt": "2026-12-01T00:00:00Z",
                               "endsAt": "0001-01-01T00:00:00Z",
                               "fingerprint": "preload-probe"}]}
        status, body = server.request(
            "POST", "/alertmanager/webhook", json.dumps(webhook).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body

        def lines() -> list[dict[str, object]] | None:
            if not server.alert_log.exists():
                return None
            got = [json.loads(line) for line in server.alert_log.read_text().splitlines()]
            sources = {line["source"] for line in got}
            return got if {"vigil", "alertmanager"} <= sources else None

        handled = wait_until(lines, DEADLINE, "both alerts in the handler's log")
        mine = [line for line in handled if line["message"] == f"paged by worker {sender}"]
        assert [line["pid"] for line in mine] == [sender]  # handled in the worker that sent it
        assert all(line["pid"] != master for line in handled)
    finally:
        server.stop()


@requires_stack
def test_real_prometheus_fires_the_breaker_alert_for_one_worker(server: Gunicorn,
                                                                 tmp_path: Path) -> None:
    """A real Prometheus scraping 4 workers fires VigilCircuitBreakerOpen when 1 is OPEN."""
    alerts_dir = tmp_path / "alerts"
    build = Path(__file__).resolve().parents[2] / "alerts" / "build.py"
    subprocess.run([sys.executable, str(build), "--out", str(alerts_dir),
                    "--set", "breaker_open_for=1s"], check=True, capture_output=True, timeout=60)
    local = LocalStack(exporter_url=server.url, webhook_url=server.url + "/alertmanager/webhook",
                       bearer_token=TOKEN, alerts_dir=alerts_dir, scrape_interval="1s")
    try:
        local.start(alertmanager=False)
        url = local.prometheus_url
        assert url is not None
        wait_until(lambda: prom_query(url, 'count(vigil_circuit_breaker_state{'
                                           'breaker="payments", state="CLOSED"}) == 4'),
                   DEADLINE, "Prometheus to see the 4 workers' breaker series")
        assert prom_query(url, 'ALERTS{alertname="VigilCircuitBreakerOpen"}') == []
        status, _ = server.request("POST", "/payments/outage")
        assert status == 200
        firing = wait_until(
            lambda: prom_query(url, 'ALERTS{alertname="VigilCircuitBreakerOpen", '
                                    'alertstate="firing", breaker="payments"}'),
            DEADLINE, "VigilCircuitBreakerOpen to fire")
        assert len(firing) == 1  # one alert for the breaker, not one per worker
        workers_open = prom_query(url, 'count by (breaker) (vigil_circuit_breaker_state{'
                                       'breaker="payments", state="CLOSED"} == 0)')
        assert [float(s["value"][1]) for s in workers_open] == [1.0]
    finally:
        local.stop()
