"""The production recipe of ``alerts/production/`` as the tests run it: addresses replaced.

``alerts/build.py`` generates the HA pair's Prometheus configs and the Alertmanager cluster's
config; the tests load those committed files and replace only what a test machine must:

- addresses: scrape targets, the Alertmanager peers, the ``remote_write`` URL and the webhook
  URLs become the loopback ports the test picked (``None`` drops a part the test does not run);
- timings: the scrape/evaluation interval, Alertmanager's ``group_wait``/``group_interval``
  and the remote-write batch deadline, so that a test takes seconds, not minutes;
- paths: ``rule_files`` (relative to ``alerts/production/``) become absolute, plus any rule
  file of the test's own.

Everything else (external labels, the replica label dropped from alerts and from remote
writes, routes, grouping, inhibition, receivers) is the committed file's. :class:`Prometheus`
runs one server on such a config: ``Popen``, readiness polled against a deadline, stopped by
PID.
"""

from __future__ import annotations

import copy
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import terminate, wait_until
from vigil_exporter.stack import ALERTS_DIR, find_prometheus, free_port

PRODUCTION = ALERTS_DIR / "production"
REPLICAS = ("a", "b")
READY = 30.0


def load(name: str) -> dict[str, Any]:
    """A committed file of ``alerts/production/``, parsed."""
    data: dict[str, Any] = yaml.safe_load((PRODUCTION / name).read_text(encoding="utf-8"))
    return data


def prometheus_config(replica: str, *, targets: Sequence[str],
                      alertmanagers: Sequence[str] | None, remote_write_url: str | None,
                      interval: str = "1s", extra_rule_files: Sequence[Path] = (),
                      ) -> dict[str, Any]:
    """``production/prometheus-<replica>.yml`` with the test's addresses and timings."""
    config = load(f"prometheus-{replica}.yml")
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str((PRODUCTION / pattern).resolve())
                            for pattern in config.get("rule_files", [])]
    config["rule_files"] += [str(path) for path in extra_rule_files]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "vigil"]
    assert len(jobs) == 1, config["scrape_configs"]
    jobs[0]["static_configs"] = [{"targets": list(targets)}]
    if alertmanagers is None:
        config.pop("alerting")
    else:
        [group] = config["alerting"]["alertmanagers"]
        group["static_configs"] = [{"targets": list(alertmanagers)}]
    if remote_write_url is None:
        config.pop("remote_write")
    else:
        [write] = config["remote_write"]
        write["url"] = remote_write_url
        # Prometheus sends a batch when it is full or 5 s old; a test has few samples.
        write["queue_config"] = {"batch_send_deadline": "500ms"}
    return config


def alertmanager_config(webhooks: Sequence[str], token: str, *, wait: str = "1s",
                        repeat: str = "1h") -> dict[str, Any]:
    """``production/alertmanager.yml`` posting to every URL of ``webhooks`` with ``token``,
    every route's ``group_wait``/``group_interval`` set to ``wait``."""
    config = load("alertmanager.yml")

    def fast(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = wait
        if "repeat_interval" in route:
            route["repeat_interval"] = repeat
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    for receiver in config["receivers"]:
        [hook] = receiver["webhook_configs"]
        hooks = []
        for url in webhooks:
            posted = copy.deepcopy(hook)
            posted["url"] = url
            posted["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
            hooks.append(posted)
        receiver["webhook_configs"] = hooks
    return config


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def get_json(url: str) -> Any:
    """``GET url`` as JSON; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` in a Prometheus text exposition (label-filtered)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Server:
    """A child process on 127.0.0.1:``port``, ready when ``ready_path`` answers 200."""

    name = "server"
    ready_path = "/"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def spawn(self) -> None:
        """Start the child without waiting (:meth:`wait_ready` waits)."""
        self.work.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = READY) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.log()[-3000:]}")
            return _status(self.url + self.ready_path) == 200

        try:
            wait_until(ready, timeout, f"{self.name} to be ready", interval=0.05)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.log()[-3000:]}") from None

    def start(self) -> Server:
        self.spawn()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Terminate the child by PID (kill after 10 s)."""
        terminate(self.proc)


class Prometheus(Server):
    """A real Prometheus on ``config`` (written to ``work/prometheus.yml``)."""

    name = "prometheus"
    ready_path = "/-/ready"

    def __init__(self, work: Path, config: Mapping[str, Any]) -> None:
        super().__init__(work)
        self.config = dict(config)

    def argv(self) -> list[str]:
        binary = find_prometheus()
        assert binary is not None, "prometheus is not installed"
        path = self.work / "prometheus.yml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        return [binary, f"--config.file={path}", f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def metrics(self) -> str:
        """Its own ``/metrics`` text."""
        return get_text(self.url + "/metrics")
