"""Real processes for the durability tests: ``vigil serve`` receivers, Alertmanagers, a recorder.

Nothing here is a stand-in: the receivers are the ``vigil`` command in child processes (so they
can be SIGKILLed), the Alertmanagers are the Debian binary on loopback (alone or as a cluster),
and the handler is a module the receivers import with ``--handler``, appending one fsynced JSON
line per call to a file the test reads (so what a killed process handled is on disk).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import terminate, wait_until
from vigil_exporter.stack import find_alertmanager, free_port

VIGIL = str(Path(sys.executable).with_name("vigil"))
READY = 30.0  # seconds a child gets to become ready
TOKEN = "durability-token"

RECORDER = '''\
"""The durability tests' alert handler: one fsynced JSON line per call."""
import json
import os
import time

_PATH = os.environ["RECORD_FILE"]
_DELAY = float(os.environ.get("HANDLER_DELAY", "0"))


def handle(alert):
    time.sleep(_DELAY)  # a slow handler (a pager API, a ticket system)
    line = json.dumps({"id": alert["id"], "alertname": alert["labels"].get("alertname"),
                       "status": alert["status"], "pid": os.getpid(),
                       "labels": alert["labels"]})
    with open(_PATH, "a", encoding="utf-8") as out:
        out.write(line + "\\n")
        out.flush()
        os.fsync(out.fileno())
'''


def write_recorder(folder: Path) -> Path:
    """The handler module ``recorder`` in ``folder``; returns the record file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recorder.py").write_text(RECORDER, encoding="utf-8")
    return folder / "records.jsonl"


def records(path: Path) -> list[dict[str, Any]]:
    """Every handler call recorded so far (a torn last line of a killed writer is skipped)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def deliveries_by_alert(path: Path) -> Counter[tuple[str, str]]:
    """How often each (alertname, status) reached the handler."""
    return Counter((r["alertname"], r["status"]) for r in records(path))


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy or ``timeout`` seconds pass (readiness, not sleeping
    out a timeout)."""
    return wait_until(predicate, timeout, what, interval)


def http_status(url: str, timeout: float = 2.0) -> int:
    """The status ``GET url`` answers; 0 when nothing answers (refused, timed out)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return 0


def wait_ready(url: str, proc: subprocess.Popen[Any], what: str, log: Callable[[], str],
               timeout: float = READY) -> None:
    """Poll ``url`` until it answers 200; fail with ``log()`` if ``proc`` exits or time runs
    out first."""
    deadline = time.monotonic() + timeout
    while http_status(url) != 200:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready within {timeout:.0f}s:\n{log()[-3000:]}")
        time.sleep(0.05)  # readiness polling against the deadline


# --- vigil serve ----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A ``vigil serve --handler recorder:handle`` child on 127.0.0.1:``port``."""

    state_dir: Path
    handler_dir: Path
    port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return self.url + "/alertmanager/webhook"

    def start(self) -> Receiver:
        """Start it (again, on the same port and state folder) and wait for /readyz."""
        env = {**os.environ, "PYTHONPATH": str(self.handler_dir),
               "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN": TOKEN,
               "VIGIL_EXPORTER_DELIVERY_POLL_INTERVAL": "0.05", **self.env}
        self.log_path = self.state_dir.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [VIGIL, "serve", "--port", str(self.port), "--state-dir", str(self.state_dir),
                 "--handler", "recorder:handle"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.handler_dir, start_new_session=True)
        wait_ready(self.url + "/readyz", self.proc, "vigil serve", self.log)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines (other output skipped)."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGKILL if still running (the tests' finally)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


# --- Alertmanager ----------------------------------------------------------------------------


def alertmanager_config(webhooks: Sequence[str], *, group_wait: str = "1s",
                        group_interval: str = "1s", repeat_interval: str = "1h",
                        group_by: Sequence[str] = ("alertname",)) -> dict[str, Any]:
    """One route to one receiver posting (with the bearer token) to every URL in ``webhooks``."""
    return {
        "route": {"receiver": "vigil", "group_by": list(group_by), "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": repeat_interval},
        "receivers": [{"name": "vigil", "webhook_configs": [
            {"url": url, "send_resolved": True, "max_alerts": 0,
             "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}
            for url in webhooks]}],
    }


@dataclass
class Alertmanager:
    """One Alertmanager on loopback; ``peers`` makes it a cluster member."""

    work: Path
    config: Mapping[str, Any]
    port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    peers: Sequence[int] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        binary = find_alertmanager()
        assert binary is not None
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "alertmanager.yml"
        config.write_text(yaml.safe_dump(dict(self.config)), encoding="utf-8")
        argv = [binary, f"--config.file={config}", f"--storage.path={self.work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        if self.cluster_port is None:
            argv.append("--cluster.listen-address=")
        else:
            argv += [f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
                     "--cluster.advertise-address=127.0.0.1:" + str(self.cluster_port),
                     "--cluster.peer-timeout=2s", "--cluster.gossip-interval=100ms",
                     "--cluster.pushpull-interval=2s", "--cluster.settle-timeout=2s"]
            argv += [f"--cluster.peer=127.0.0.1:{peer}" for peer in self.peers]
        log = self.work / "alertmanager.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        wait_ready(self.url + "/-/ready", self.proc, "alertmanager", self.log)
        return self

    def log(self) -> str:
        path = self.work / "alertmanager.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Push alerts into it as Prometheus does (``/api/v2/alerts``)."""
        request = urllib.request.Request(
            self.url + "/api/v2/alerts", data=json.dumps(list(alerts)).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        terminate(self.proc)


def accepted_alertnames(receiver: Receiver) -> set[str]:
    """The alertnames of the notifications ``receiver`` answered 2xx for (its log lines name
    each accepted notification's group key, ``{}:{alertname="X"}`` with group_by alertname)."""
    names = set()
    for line in receiver.log_lines():
        if line.get("message") == "webhook notification accepted":
            key = line["metadata"].get("group_key", "")
            if 'alertname="' in key and line["metadata"].get("alerts", 0) > 0:
                names.add(key.split('alertname="', 1)[1].split('"', 1)[0])
    return names
