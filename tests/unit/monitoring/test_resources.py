"""vigil.monitoring.resources: readings, gauges and the background sampler thread."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from prometheus_client import CollectorRegistry

import vigil.config
from vigil.config import ConfigError, load_config
from vigil.monitoring import resources
from vigil.monitoring.resources import (
    THREAD_NAME,
    ResourceMonitor,
    ResourceUsage,
    capture_resource_usage,
)

WAIT = 5.0  # upper bound for waiting on an Event; a healthy run takes milliseconds

USAGE = ResourceUsage(cpu_percent=150.0, memory_mb=64.5, memory_percent=12.5, threads=7,
                      open_fds=23, system_cpu_percent=40.0, system_memory_percent=75.0,
                      timestamp=1_700_000_000.25)


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


class CountingSampler:
    """Returns USAGE (or raises for the first ``failures`` calls); releases ``calls`` each time."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = threading.Semaphore(0)

    def __call__(self) -> ResourceUsage:
        self.calls.release()
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("sampler broke")
        return USAGE


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def monitors() -> Iterator[list[ResourceMonitor]]:
    made: list[ResourceMonitor] = []
    yield made
    for monitor in made:
        monitor.stop(timeout=WAIT)


@pytest.fixture
def make(registry: CollectorRegistry,
         monitors: list[ResourceMonitor]) -> Callable[..., ResourceMonitor]:
    def build(**kwargs: Any) -> ResourceMonitor:
        monitor = ResourceMonitor(registry=registry, **kwargs)
        monitors.append(monitor)
        return monitor
    return build


# --- readings -----------------------------------------------------------------------------


def test_real_capture_is_sane() -> None:
    """A real capture reports positive memory, at least one thread and bounded percentages."""
    capture_resource_usage()
    usage = capture_resource_usage()
    assert usage.memory_mb > 0
    assert usage.threads >= 1
    # Two captures microseconds apart: the process figure is CPU ticks over a tiny wall window,
    # which can exceed 100% x cores on a loaded machine; only its sign is meaningful here.
    assert usage.cpu_percent >= 0.0
    assert 0.0 <= usage.memory_percent <= 100.0
    assert 0.0 <= usage.system_cpu_percent <= 100.0
    assert 0.0 <= usage.system_memory_percent <= 100.0
    if psutil.POSIX:
        assert usage.open_fds is not None
        assert usage.open_fds >= 1
    assert abs(usage.timestamp - time.time()) < 60


def test_default_process_is_cached_and_renewed_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """The current process's psutil.Process is reused, and replaced when the pid changes."""
    monkeypatch.setattr(resources, "_process", None)  # restored afterwards
    first = resources._own_process()
    assert resources._own_process() is first
    real_pid, real_process = first.pid, psutil.Process
    # Pretend to be a forked child: a new pid must give a new Process object.
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)
    monkeypatch.setattr(psutil, "Process", lambda pid: real_process(real_pid))
    assert resources._own_process() is not first


def test_to_dict_has_every_field() -> None:
    """to_dict returns every field with its value."""
    assert USAGE.to_dict() == {
        "cpu_percent": 150.0, "memory_mb": 64.5, "memory_percent": 12.5, "threads": 7,
        "open_fds": 23, "system_cpu_percent": 40.0, "system_memory_percent": 75.0,
        "timestamp": 1_700_000_000.25,
    }


# --- gauges -------------------------------------------------------------------------------


def test_sample_once_sets_gauges_to_the_sampled_values(make: Callable[..., ResourceMonitor],
                                                       registry: CollectorRegistry) -> None:
    """Each gauge carries the sampler's value, percentages as 0..1 ratios and MiB as bytes."""
    monitor = make(sampler=lambda: USAGE)
    assert monitor.sample_once() is USAGE
    assert monitor.last_usage is USAGE
    value = registry.get_sample_value
    assert value("vigil_process_cpu_usage_cores") == 1.5
    assert value("vigil_process_resident_memory_bytes") == 64.5 * 1024 * 1024
    assert value("vigil_process_memory_usage_ratio") == 0.125
    assert value("vigil_process_threads") == 7
    assert value("vigil_process_open_fds") == 23
    assert value("vigil_system_cpu_usage_ratio") == 0.4
    assert value("vigil_system_memory_usage_ratio") == 0.75
    assert value("vigil_resource_last_sample_timestamp_seconds") == 1_700_000_000.25
    assert value("vigil_resource_sample_errors_total") == 0


def test_gauges_absent_before_first_sample_and_fds_absent_when_unsupported(
        make: Callable[..., ResourceMonitor], registry: CollectorRegistry) -> None:
    """No gauge exists before a sample, and open_fds=None leaves vigil_process_open_fds absent."""
    monitor = make(sampler=lambda: ResourceUsage(1.0, 1.0, 1.0, 1, None, 1.0, 1.0, 1.0))
    assert registry.get_sample_value("vigil_process_threads") is None
    monitor.sample_once()
    assert registry.get_sample_value("vigil_process_threads") == 1
    assert registry.get_sample_value("vigil_process_open_fds") is None


def test_sample_once_counts_and_reraises_sampler_errors(make: Callable[..., ResourceMonitor],
                                                        registry: CollectorRegistry) -> None:
    """A raising sampler is counted, its error propagates, and earlier gauge values stay."""
    sampler = CountingSampler()
    monitor = make(sampler=sampler)
    monitor.sample_once()
    sampler.failures = 1
    with pytest.raises(RuntimeError, match="sampler broke"):
        monitor.sample_once()
    assert registry.get_sample_value("vigil_resource_sample_errors_total") == 1
    assert registry.get_sample_value("vigil_process_threads") == 7
    assert monitor.last_usage is USAGE


def test_real_sampler_publishes(make: Callable[..., ResourceMonitor],
                                registry: CollectorRegistry) -> None:
    """The default sampler (psutil) feeds the gauges with plausible numbers."""
    monitor = make()
    usage = monitor.sample_once()
    assert registry.get_sample_value("vigil_process_resident_memory_bytes") == \
        usage.memory_mb * 1024 * 1024 > 0
    assert registry.get_sample_value("vigil_process_threads") == usage.threads >= 1


# --- the background thread ----------------------------------------------------------------


def test_start_twice_runs_one_thread(make: Callable[..., ResourceMonitor]) -> None:
    """A second start while running returns False and starts no second thread."""
    sampler = CountingSampler()
    monitor = make(interval=3600, sampler=sampler)
    assert monitor.start() is True
    assert monitor.start() is False
    assert sampler.calls.acquire(timeout=WAIT)
    assert monitor.running
    assert len(sampler_threads()) == 1
    assert sampler_threads()[0].daemon


def test_stop_is_prompt_with_a_long_interval(make: Callable[..., ResourceMonitor]) -> None:
    """stop() returns at once during an hour-long wait, and the thread is gone."""
    sampler = CountingSampler()
    monitor = make(interval=3600, sampler=sampler)
    monitor.start()
    assert sampler.calls.acquire(timeout=WAIT)  # the thread is now in its one-hour wait
    began = time.monotonic()
    assert monitor.stop(timeout=WAIT) is True
    assert time.monotonic() - began < WAIT
    assert not monitor.running
    assert sampler_threads() == []


def test_restart_after_stop(make: Callable[..., ResourceMonitor]) -> None:
    """After stop(), start() runs a new sampler thread; no thread is left over after stopping."""
    sampler = CountingSampler()
    monitor = make(interval=3600, sampler=sampler)
    for _ in range(2):
        assert monitor.start() is True
        assert sampler.calls.acquire(timeout=WAIT)
        assert len(sampler_threads()) == 1
        assert monitor.stop(timeout=WAIT) is True
        assert sampler_threads() == []


def test_stop_without_start_is_a_no_op(make: Callable[..., ResourceMonitor]) -> None:
    """stop() on a monitor that never started reports that nothing is running."""
    assert make(sampler=CountingSampler()).stop() is True


def test_raising_sampler_is_counted_and_thread_survives(make: Callable[..., ResourceMonitor],
                                                         registry: CollectorRegistry) -> None:
    """Sampler errors in the thread are counted and sampling goes on."""
    sampler = CountingSampler(failures=2)
    monitor = make(interval=0.001, sampler=sampler)
    monitor.start()
    for _ in range(3):  # two failures, then a success
        assert sampler.calls.acquire(timeout=WAIT)
    assert monitor.stop(timeout=WAIT)
    assert registry.get_sample_value("vigil_resource_sample_errors_total") == 2
    assert monitor.last_usage is USAGE
    assert registry.get_sample_value("vigil_process_threads") == 7


def test_start_interval_replaces_the_monitor_interval(make: Callable[..., ResourceMonitor]) -> None:
    """start(interval=...) sets the interval the monitor uses."""
    monitor = make(interval=3600, sampler=CountingSampler())
    monitor.start(interval=2.5)
    assert monitor.interval == 2.5


# --- configuration ------------------------------------------------------------------------


def test_disabled_monitor_does_not_start(make: Callable[..., ResourceMonitor]) -> None:
    """enabled=False makes start() return False without a thread."""
    monitor = make(enabled=False, sampler=CountingSampler())
    assert monitor.start() is False
    assert not monitor.running
    assert sampler_threads() == []


def test_settings_come_from_the_active_config(make: Callable[..., ResourceMonitor],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments, enabled and interval follow monitoring.resource_monitoring."""
    config = load_config({"monitoring": {"resource_monitoring": {"enabled": False,
                                                                 "interval": 12}}}, environ={})
    monkeypatch.setattr(vigil.config.active, "_current", config)
    monitor = make(sampler=CountingSampler())
    assert monitor.interval == 12.0
    assert monitor.enabled is False
    assert monitor.start() is False


@pytest.mark.parametrize(("bad", "rule"), [
    (0, "must be a number > 0"), (-1.5, "must be a number > 0"),
    (math.nan, "must be a finite number"), (True, "expected a number"),
    ("5", "expected a number")])
def test_invalid_interval_is_a_config_error(make: Callable[..., ResourceMonitor],
                                            bad: Any, rule: str) -> None:
    """A non-positive or non-numeric interval is refused, naming the key, value and rule."""
    with pytest.raises(ConfigError, match="interval") as caught:
        make(interval=bad)
    assert caught.value.key == "interval"
    assert caught.value.allowed == rule
    monitor = make(sampler=CountingSampler())
    with pytest.raises(ConfigError, match="interval"):
        monitor.start(interval=bad)
    assert not monitor.running
