"""vigil.forks and its users: after a real os.fork(), vigil's threads and state work in the child.

Each test forks this interpreter; the child reports through a pipe and leaves with os._exit
(so no pytest machinery runs twice), and the parent waits for it with a deadline.
"""

from __future__ import annotations

import gc
import json
import os
import select
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vigil import forks
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.resources import ResourceMonitor, ResourceUsage

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
DEADLINE = 30.0


def in_child(body: Callable[[], Any]) -> Any:
    """Run ``body`` in a forked child; its JSON result (or the error it raised)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            out = json.dumps({"ok": body()})
        except BaseException as exc:  # reported to the parent, which fails the test
            out = json.dumps({"error": repr(exc)})
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], DEADLINE)
        assert ready, "the child did not answer in time"
        data = b""
        while chunk := os.read(read, 65536):
            data += chunk
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    result = json.loads(data)
    assert "error" not in result, result["error"]
    return result["ok"]


class _Probe:
    def __init__(self) -> None:
        self.calls: list[str] = []
        forks.at_fork(before=self.before, after_in_parent=self.parent,
                      after_in_child=self.child)

    def before(self) -> None:
        self.calls.append("before")

    def parent(self) -> None:
        self.calls.append("parent")

    def child(self) -> None:
        self.calls.append("child")


def test_hooks_run_on_their_side_of_the_fork() -> None:
    """before and after_in_parent run in the parent, after_in_child in the child."""
    probe = _Probe()
    assert in_child(lambda: probe.calls) == ["before", "child"]
    assert probe.calls == ["before", "parent"]


def test_a_collected_owner_drops_out() -> None:
    """Bound methods are held weakly: a collected object is not kept alive by its hooks, and
    the next fork drops its entries."""
    probe = _Probe()
    alive = weakref.ref(probe)
    del probe
    gc.collect()
    assert alive() is None
    in_child(lambda: None)
    assert all(ref() is not None for ref in forks._before + forks._after_in_parent)


def test_alert_handlers_registered_before_the_fork_run_in_the_child() -> None:
    """A handler registered in the parent (gunicorn --preload) handles the child's alerts."""
    manager = AlertManager(registry=CollectorRegistry())
    seen: list[tuple[int, str]] = []
    manager.register_handler(lambda alert: seen.append((os.getpid(), alert.message)))

    def child() -> list[Any]:
        manager.send_alert("high", "c", "from the child")
        assert manager.flush(DEADLINE)
        return [list(item) for item in seen]

    try:
        got = in_child(child)
        assert got[-1][1] == "from the child"
        assert got[-1][0] != os.getpid()
    finally:
        manager.close()


def test_a_running_sampler_runs_in_the_child_too() -> None:
    """A resource sampler running at the fork is restarted in the child."""
    usage = ResourceUsage(cpu_percent=1.0, memory_mb=1.0, memory_percent=1.0, threads=1,
                          system_cpu_percent=1.0, system_memory_percent=1.0, timestamp=1.0,
                          open_fds=None)
    sampled: dict[int, threading.Event] = {}  # by the pid of the process that sampled

    def sampler() -> ResourceUsage:
        sampled.setdefault(os.getpid(), threading.Event()).set()
        return usage

    monitor = ResourceMonitor(registry=CollectorRegistry(), interval=3600.0, enabled=True,
                              sampler=sampler)
    assert monitor.start()
    try:
        assert sampled.setdefault(os.getpid(), threading.Event()).wait(DEADLINE)

        def child() -> bool:
            mine = sampled.setdefault(os.getpid(), threading.Event())
            return monitor.running and mine.wait(DEADLINE)

        assert in_child(child) is True
    finally:
        monitor.stop(DEADLINE)


def test_left_to_workers_the_sampler_stops_here_and_starts_in_forks() -> None:
    """leave_to_workers(): no sampler in this process, one in each forked child."""
    monitor = ResourceMonitor(registry=CollectorRegistry(), interval=3600.0, enabled=True,
                              sampler=lambda: ResourceUsage(
                                  cpu_percent=0.0, memory_mb=1.0, memory_percent=0.0,
                                  threads=1, system_cpu_percent=0.0,
                                  system_memory_percent=0.0, timestamp=1.0, open_fds=None))
    assert monitor.start()
    try:
        monitor.leave_to_workers()
        assert not monitor.running
        assert in_child(lambda: monitor.running) is True
        assert not monitor.running
    finally:
        monitor.stop(DEADLINE)
