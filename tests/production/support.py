"""A real gunicorn serving the README's example service, for the production-recipe tests.

gunicorn (PyPI) runs ``examples/gunicorn/service.py`` with ``examples/gunicorn/gunicorn.conf.py``
exactly as the README's recipe does, plus a free loopback port and test folders; the tests
read the master's worker pids with psutil and kill workers by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.durability.support import TOKEN, http_status
from tests.integration.conftest import wait_until
from vigil_exporter.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gunicorn"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
READY = 60.0  # seconds for the master and every worker to answer (4 imports on 2 cores)


@dataclass
class Gunicorn:
    """``gunicorn -c examples/gunicorn/gunicorn.conf.py service:app`` on 127.0.0.1:``port``."""

    work: Path
    workers: int = 4
    preload: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_dir(self) -> Path:
        return self.work / "metrics"

    @property
    def alert_log(self) -> Path:
        return self.work / "alerts.jsonl"

    @property
    def log_path(self) -> Path:
        return self.work / "gunicorn.log"

    def start(self) -> Gunicorn:
        """Start the master and wait until all workers run and one of them answers."""
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ,
               "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
               "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT)]),
               "XDG_STATE_HOME": str(self.work / "state"),
               "SERVICE_ALERT_LOG": str(self.alert_log),
               "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN": TOKEN,
               "VIGIL_EXPORTER_DELIVERY_POLL_INTERVAL": "0.05"}
        argv = [GUNICORN, "-c", str(EXAMPLE / "gunicorn.conf.py"), "--bind",
                f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                "--graceful-timeout", "5"]
        if self.preload:
            argv.append("--preload")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*argv, "service:app"], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=EXAMPLE, start_new_session=True)
        deadline = time.monotonic() + READY
        while self.started() < self.workers or http_status(self.url + "/healthz") != 200:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n"
                                     f"{self.failure_log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn not ready within {READY:.0f}s:\n"
                                     f"{self.failure_log()}")
            time.sleep(0.1)  # readiness polling against the deadline
        return self

    def started(self) -> int:
        """How many workers have finished their application startup (from the log)."""
        return self.log().count("Application startup complete")

    def worker_pids(self) -> set[int]:
        """The pids of the master's live worker processes."""
        assert self.proc is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            return {child.pid for child in psutil.Process(self.proc.pid).children()
                    if child.status() != psutil.STATUS_ZOMBIE}
        return set()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request on a fresh connection (so the kernel may hand it to any worker)."""
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Connection": "close", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def scrape(self) -> str:
        status, body = self.request("GET", "/metrics")
        assert status == 200, body[:500]
        return body.decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def failure_log(self) -> str:
        """What a failed start shows: the first error lines (a worker's traceback comes
        before the shutdown lines that fill the end of the log), then the log's end."""
        lines = self.log().splitlines()
        errors = [line for line in lines if '"level": "ERROR"' in line or "Traceback" in line
                  or "Error" in line][:20]
        return "\n".join([*errors, "--- last lines ---", *lines[-15:]])

    def wait_workers(self, count: int, without: int, started: int, timeout: float = READY
                     ) -> set[int]:
        """Wait until ``count`` workers run, none of them ``without``, and ``started``
        application startups are logged."""
        def ready() -> set[int] | None:
            pids = self.worker_pids()
            fresh = len(pids) == count and without not in pids and self.started() >= started
            return pids if fresh else None
        result: set[int] = wait_until(ready, timeout, f"{count} gunicorn workers", 0.1)
        return result

    def stop(self) -> None:
        """SIGTERM the master (graceful), SIGKILL the group if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of ``name`` in an exposition, with their labels."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` with exactly these labels (None when absent)."""
    for got, number in samples(text, name):
        if got == labels:
            return number
    return None


def files_of(folder: Path, pid: int) -> list[str]:
    """prometheus_client's files of ``pid`` in a multiprocess folder."""
    return sorted(p.name for p in folder.glob(f"*_{pid}.db"))


