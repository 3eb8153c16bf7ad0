"""Start and stop a local Prometheus and Alertmanager with the repository's own configs.

``vigil demo`` and the integration tests use it where there is no Docker: the Debian packages'
binaries (``prometheus``, ``prometheus-alertmanager``) run on 127.0.0.1 with temporary storage.
The configs are ``alerts/prometheus.yml``, ``alerts/alertmanager.yml`` and ``alerts/*.rules.yml``
as committed; only the addresses are replaced (the scrape target becomes the exporter's port,
the webhook URL the exporter's receiver, Alertmanager's the port picked here), so what runs
here is what docker-compose runs.

Every child is started with ``Popen``, polled for readiness against a deadline, and stopped by
PID in ``stop()`` (terminate, then kill), which context-manager use guarantees.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vigil_exporter.shipped import alerts_dir

__all__ = [
    "ALERTS_DIR",
    "LocalStack",
    "StackError",
    "find_alertmanager",
    "find_prometheus",
    "free_port",
]

ALERTS_DIR = alerts_dir()  # the checkout's alerts/, or the wheel's copy
_READY_TIMEOUT = 30.0


class StackError(RuntimeError):
    """A Prometheus or Alertmanager child could not be started."""


def find_prometheus() -> str | None:
    """The Prometheus server binary on PATH, if any."""
    return shutil.which("prometheus")


def find_alertmanager() -> str | None:
    """The Alertmanager binary on PATH (Debian names it prometheus-alertmanager)."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, log: Path,
                timeout: float = _READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with status {proc.returncode}; its log:\n"
                             f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)  # readiness poll against the deadline above
    raise StackError(f"{name} was not ready at {url} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class LocalStack:
    """A Prometheus (and an Alertmanager) on loopback, scraping ``exporter_url``.

    ``webhook_url`` is where Alertmanager posts (the exporter's receiver); ``bearer_token`` /
    ``basic_auth`` are added to that receiver's ``http_config`` when the webhook requires them.
    """

    exporter_url: str
    webhook_url: str | None = None
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    alerts_dir: Path = ALERTS_DIR
    host: str = "127.0.0.1"
    scrape_interval: str | None = None
    prometheus_url: str | None = field(default=None, init=False)
    alertmanager_url: str | None = field(default=None, init=False)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def start(self, *, alertmanager: bool = True) -> LocalStack:
        """Start Alertmanager (when asked and installed), then Prometheus; wait until ready."""
        prometheus = find_prometheus()
        if prometheus is None:
            raise StackError("prometheus is not on PATH (Debian: apt-get install prometheus)")
        self._tmp = tempfile.TemporaryDirectory(prefix="vigil-stack-")
        work = Path(self._tmp.name)
        try:
            am_port = None
            if alertmanager and self.webhook_url is not None:
                binary = find_alertmanager()
                if binary is None:
                    raise StackError("alertmanager is not on PATH "
                                     "(Debian: apt-get install prometheus-alertmanager)")
                am_port = self._start_alertmanager(binary, work)
            self._start_prometheus(prometheus, work, am_port)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_alertmanager(self, binary: str, work: Path) -> int:
        port = free_port(self.host)
        config = work / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.alertmanager_config()), encoding="utf-8")
        (work / "am-data").mkdir()
        self.alertmanager_url = f"http://{self.host}:{port}"
        self._spawn("alertmanager", [
            binary, f"--config.file={config}", f"--storage.path={work / 'am-data'}",
            f"--web.listen-address={self.host}:{port}",
            # Links in notifications name this address, not the machine's host name.
            f"--web.external-url={self.alertmanager_url}/",
            "--cluster.listen-address=",  # empty: no gossip port on every interface
        ], work, f"{self.alertmanager_url}/-/ready")
        return port

    def _start_prometheus(self, binary: str, work: Path, am_port: int | None) -> None:
        port = free_port(self.host)
        for rules in sorted(self.alerts_dir.glob("*.rules.yml")):
            shutil.copy(rules, work / rules.name)
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(am_port)), encoding="utf-8")
        self.prometheus_url = f"http://{self.host}:{port}"
        self._spawn("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address={self.host}:{port}", "--web.enable-lifecycle",
            # Alerts' generatorURL (what Alertmanager links to) names this address.
            f"--web.external-url={self.prometheus_url}/",
        ], work, f"{self.prometheus_url}/-/ready")

    def prometheus_page(self, page: str) -> str | None:
        """The URL of Prometheus's ``page`` ("alerts", "targets", "graph") that answers here:
        the React UI's ``/alerts``, or ``/classic/alerts`` where the package ships only the
        classic UI (Debian's does); ``None`` when neither answers or Prometheus is not up."""
        if self.prometheus_url is None:
            return None
        for path in (f"/{page}", f"/classic/{page}"):
            try:
                with urllib.request.urlopen(self.prometheus_url + path, timeout=2.0) as answer:
                    if answer.status == 200:
                        return self.prometheus_url + path
            except (urllib.error.URLError, OSError):
                continue
        return None

    def _spawn(self, name: str, argv: Sequence[str], work: Path, ready_url: str) -> None:
        log = work / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=work,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(proc)
        _wait_ready(ready_url, proc, name, log)

    def prometheus_config(self, alertmanager_port: int | None) -> dict[str, Any]:
        """``alerts/prometheus.yml`` with the exporter and Alertmanager addresses replaced."""
        config: dict[str, Any] = yaml.safe_load(
            (self.alerts_dir / "prometheus.yml").read_text(encoding="utf-8"))
        if self.scrape_interval:
            config.setdefault("global", {})["scrape_interval"] = self.scrape_interval
            config["global"]["evaluation_interval"] = self.scrape_interval
        target = self.exporter_url.split("://", 1)[-1].rstrip("/")
        # Every scrape job (the generated file has one, named by the rules' selector: vigil as
        # shipped, myapp for files written by `vigil rules --set job=myapp`) scrapes the exporter.
        for job in config.get("scrape_configs", []):
            job["static_configs"] = [{"targets": [target]}]
        if alertmanager_port is None:
            config.pop("alerting", None)
        else:
            config["alerting"] = {"alertmanagers": [{"static_configs": [
                {"targets": [f"{self.host}:{alertmanager_port}"]}]}]}
        return config

    def alertmanager_config(self) -> dict[str, Any]:
        """``alerts/alertmanager.yml`` with the vigil receiver pointed at ``webhook_url``."""
        config: dict[str, Any] = yaml.safe_load(
            (self.alerts_dir / "alertmanager.yml").read_text(encoding="utf-8"))
        for receiver in config.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = self.webhook_url
                http: dict[str, Any] = {}
                if self.bearer_token:
                    http["authorization"] = {"type": "Bearer",
                                             "credentials": self.bearer_token}
                elif self.basic_auth:
                    http["basic_auth"] = {"username": self.basic_auth[0],
                                          "password": self.basic_auth[1]}
                hook.pop("http_config", None)
                if http:
                    hook["http_config"] = http
        return config

    def stop(self) -> None:
        """Stop every child started (by PID) and remove the temporary storage."""
        while self._procs:
            _stop(self._procs.pop())
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def logs(self) -> dict[str, str]:
        """The children's logs so far (name -> text), e.g. to show when a test fails."""
        if self._tmp is None:
            return {}
        return {p.stem: p.read_text(errors="replace")
                for p in sorted(Path(self._tmp.name).glob("*.log"))}

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

