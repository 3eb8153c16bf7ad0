"""Resource usage of this process and of the machine: one-off captures and a background sampler.

:func:`capture_resource_usage` reads psutil once and returns a :class:`ResourceUsage`.
:class:`ResourceMonitor` publishes those readings as Prometheus gauges, either on demand
(:meth:`ResourceMonitor.sample_once`) or from one daemon thread (:meth:`ResourceMonitor.start`).

CPU percentages are psutil's non-blocking ones (``interval=None``): usage *since the previous
reading*. The very first reading therefore has nothing to compare with and is meaningless
(process CPU reads ``0.0``). This module keeps one cached :class:`psutil.Process` for the current
process, so the second and later :func:`capture_resource_usage` calls give real numbers. psutil
tracks the system-wide CPU figure per calling thread, so the first reading in each thread (the
sampler's first sample included) covers an almost empty window: ``0.0`` or noise.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from prometheus_client import CollectorRegistry, Gauge

from vigil import validate
from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import get_config
from vigil.forks import at_fork
from vigil.monitoring.instruments import counter, gauge

__all__ = ["THREAD_NAME", "ResourceMonitor", "ResourceUsage", "capture_resource_usage"]

THREAD_NAME = "vigil-resource-monitor"
_MIB = 1024 * 1024

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """One reading of the process's and the machine's resource use.

    ``cpu_percent`` is a percentage of ONE core, as psutil reports it: a process keeping two cores
    busy reads 200.0. The other percentages are 0..100. ``memory_mb`` is the resident set size in
    MiB; ``open_fds`` is ``None`` where the platform has no file descriptors (Windows).
    ``timestamp`` is wall-clock seconds since the epoch.
    """

    cpu_percent: float
    memory_mb: float
    memory_percent: float
    threads: int
    open_fds: int | None
    system_cpu_percent: float
    system_memory_percent: float
    timestamp: float

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


_process: psutil.Process | None = None


def _own_process() -> psutil.Process:
    """The cached Process for this process, re-created when the pid changed (after a fork)."""
    global _process
    # No lock: a race creates two Process objects and one wins, costing one 0.0 CPU reading; a
    # lock could be held by another thread at fork time and deadlock the child.
    proc = _process
    if proc is None or proc.pid != os.getpid():
        proc = psutil.Process(os.getpid())
        _process = proc
    return proc


def _open_fds(proc: psutil.Process) -> int | None:
    if not psutil.POSIX:  # Windows has handles, not file descriptors
        return None
    try:
        return proc.num_fds()
    except psutil.AccessDenied:  # another user's process
        return None


def capture_resource_usage(process: psutil.Process | None = None, *,
                           clock: Clock = SYSTEM_CLOCK) -> ResourceUsage:
    """Read the resource use of ``process`` (default: this process) and of the machine.

    Non-blocking. CPU figures cover the time since the previous reading of the same
    :class:`psutil.Process` object (system CPU: since the previous reading in the same thread),
    so a first reading is meaningless (``0.0`` for the process); pass the same ``process`` each
    time to get real numbers (the default does this). Raises psutil's ``NoSuchProcess`` /
    ``AccessDenied`` for a process that is gone or not readable.
    """
    proc = process if process is not None else _own_process()
    with proc.oneshot():  # one /proc read for all the per-process fields
        cpu = proc.cpu_percent(interval=None)
        rss = proc.memory_info().rss
        memory_percent = proc.memory_percent()
        threads = proc.num_threads()
        fds = _open_fds(proc)
    return ResourceUsage(
        cpu_percent=float(cpu),
        memory_mb=rss / _MIB,
        memory_percent=float(memory_percent),
        threads=threads,
        open_fds=fds,
        system_cpu_percent=float(psutil.cpu_percent(interval=None)),
        system_memory_percent=float(psutil.virtual_memory().percent),
        timestamp=clock.time(),
    )


def _check_interval(value: object) -> float:
    return validate.number("interval", value, minimum=0, exclusive=True)


@dataclass(frozen=True, slots=True)
class _Gauges:
    cpu: Gauge
    rss: Gauge
    memory: Gauge
    threads: Gauge
    system_cpu: Gauge
    system_memory: Gauge
    timestamp: Gauge


def _make_gauges(registry: CollectorRegistry) -> _Gauges:
    # Their multiprocess modes (livesum, livemax, livemin) are vigil.monitoring.multiprocess's.
    def make(name: str, doc: str) -> Gauge:
        return gauge(registry, name, doc).metric

    return _Gauges(
        cpu=make("vigil_process_cpu_usage_cores",
                 "CPU used by the process since the previous sample, in cores "
                 "(1 = one core busy)."),
        rss=make("vigil_process_resident_memory_bytes",
                 "Resident set size of the process, in bytes."),
        memory=make("vigil_process_memory_usage_ratio",
                    "Resident set size of the process as a share of physical memory (0..1)."),
        threads=make("vigil_process_threads", "Threads in the process."),
        system_cpu=make("vigil_system_cpu_usage_ratio",
                        "CPU busy on the whole machine since the previous sample (0..1)."),
        system_memory=make("vigil_system_memory_usage_ratio",
                           "Memory in use on the whole machine (0..1)."),
        timestamp=make("vigil_resource_last_sample_timestamp_seconds",
                       "Unix time of the last successful resource sample."),
    )


class ResourceMonitor:
    """Publishes :class:`ResourceUsage` readings as ``vigil_process_*`` / ``vigil_system_*`` gauges.

    ``interval`` and ``enabled`` default to ``monitoring.resource_monitoring.*`` of the active
    configuration, read when they are needed, so :func:`vigil.configure` changes them for a
    monitor built without them. ``sampler`` replaces :func:`capture_resource_usage` (tests).

    The gauges appear with the first successful sample (an absent series means "never sampled",
    where a 0 would be a lie); ``vigil_process_open_fds`` only where file descriptors exist.
    """

    def __init__(self, *, registry: CollectorRegistry, interval: float | None = None,
                 enabled: bool | None = None,
                 sampler: Callable[[], ResourceUsage] | None = None) -> None:
        self._registry = registry
        self._interval = None if interval is None else _check_interval(interval)
        self._enabled = enabled
        self._sampler: Callable[[], ResourceUsage] = (
            sampler if sampler is not None else capture_resource_usage)
        self._lock = threading.Lock()
        # Held while a sample is taken and published, and across a fork (vigil.forks): the
        # child must not inherit prometheus_client's file lock held by a half-done sample.
        self._sample_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event: threading.Event | None = None
        self._in_forks = False  # leave_to_workers(): sample in forked children, not here
        self._last_usage: ResourceUsage | None = None
        self._gauges: _Gauges | None = None
        self._open_fds: Gauge | None = None
        self._failing = False
        # Created now, not lazily, so that rate() over it works from the first scrape.
        self._errors = counter(
            registry, "vigil_resource_sample_errors_total",
            "Resource samples that raised instead of producing a reading.").metric
        at_fork(before=self._hold_for_fork, after_in_parent=self._release_after_fork,
                after_in_child=self._after_fork_in_child)

    def _hold_for_fork(self) -> None:
        self._sample_lock.acquire()

    def _release_after_fork(self) -> None:
        self._sample_lock.release()

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, and the sampler restarted if the parent ran one
        (or handed it to its workers with :meth:`leave_to_workers`)."""
        self._lock, self._sample_lock = threading.Lock(), threading.Lock()
        stop = self._stop_event
        wanted = self._in_forks or (self._thread is not None and stop is not None
                                    and not stop.is_set())
        self._thread = self._stop_event = None
        self._in_forks = False
        if wanted:
            self.start()

    def leave_to_workers(self) -> None:
        """Stop sampling in this process, and sample in every process forked from it.

        For a prefork master (gunicorn's ``when_ready`` hook in :mod:`vigil.gunicorn`): its
        workers report themselves; the master, which serves nothing, reports nothing.
        """
        with self._lock:
            self._in_forks = self._in_forks or self.running
        self.stop()

    @property
    def interval(self) -> float:
        """Seconds between two samples of the background thread."""
        if self._interval is not None:
            return self._interval
        return get_config().monitoring.resource_monitoring.interval

    @property
    def enabled(self) -> bool:
        """Whether :meth:`start` may start the background thread."""
        if self._enabled is not None:
            return self._enabled
        return get_config().monitoring.resource_monitoring.enabled

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def last_usage(self) -> ResourceUsage | None:
        """The last successful reading, or ``None`` before the first one."""
        return self._last_usage

    def sample_once(self) -> ResourceUsage:
        """Take one reading now, update the gauges and return it.

        A sampler that raises is counted in ``vigil_resource_sample_errors_total`` and the
        exception propagates (the background thread catches it); the gauges keep their values.
        """
        try:
            with self._sample_lock:
                usage = self._sampler()
                self._publish(usage)
        except Exception:
            self._errors.inc()
            raise
        self._last_usage = usage
        return usage

    def _publish(self, usage: ResourceUsage) -> None:
        if self._gauges is None:
            self._gauges = _make_gauges(self._registry)
        g = self._gauges
        g.cpu.set(usage.cpu_percent / 100)
        g.rss.set(usage.memory_mb * _MIB)  # exact: MiB is a power of two
        g.memory.set(usage.memory_percent / 100)
        g.threads.set(usage.threads)
        g.system_cpu.set(usage.system_cpu_percent / 100)
        g.system_memory.set(usage.system_memory_percent / 100)
        if usage.open_fds is not None:
            if self._open_fds is None:
                self._open_fds = gauge(self._registry, "vigil_process_open_fds",
                                       "File descriptors open in the process.").metric
            self._open_fds.set(usage.open_fds)
        # Last, so that it only moves once the reading is fully published.
        g.timestamp.set(usage.timestamp)

    def start(self, interval: float | None = None) -> bool:
        """Start the background sampler thread; ``True`` if this call started it.

        The thread samples at once, then every ``interval`` seconds. A given ``interval``
        replaces the monitor's own, and a running thread uses it from its next wait. Returns
        ``False``, starting nothing, when the thread is already running or monitoring is
        disabled. Raises :class:`~vigil.config.ConfigError` for an interval that is not > 0.
        """
        checked = None if interval is None else _check_interval(interval)
        with self._lock:
            if checked is not None:
                self._interval = checked
            if self.running or not self.enabled:
                return False
            # A fresh Event per run: a thread still winding down from an earlier stop() keeps
            # its own set Event and cannot be revived by this start.
            stop = threading.Event()
            thread = threading.Thread(target=self._run, args=(stop,), name=THREAD_NAME,
                                      daemon=True)
            self._stop_event, self._thread = stop, thread
            thread.start()
            return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the background thread and wait up to ``timeout`` seconds (None: no limit).

        The thread waits on an Event between samples, so it ends as soon as a sample in
        progress finishes. Returns ``True`` when no sampler thread is left running.
        :meth:`start` works again afterwards.
        """
        with self._lock:
            thread, stop = self._thread, self._stop_event
        if thread is None or stop is None:
            return True
        stop.set()
        if thread is not threading.current_thread():  # a sampler may call stop() itself
            thread.join(timeout)
        if thread.is_alive():
            return False
        with self._lock:
            if self._thread is thread:
                self._thread = self._stop_event = None
        return True

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sample_once()
            except Exception:
                # Log the first failure of a streak fully, then quietly: a broken sampler must
                # not flood the logs every interval. The counter has the exact number.
                if self._failing:
                    _log.debug("resource sample failed again", exc_info=True)
                else:
                    _log.warning("resource sample failed; retrying every %ss", self.interval,
                                 exc_info=True)
                self._failing = True
            else:
                self._failing = False
            # Event.wait overflows past TIMEOUT_MAX; an infinite interval means "sample once".
            if stop.wait(min(self.interval, threading.TIMEOUT_MAX)):
                return

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ResourceMonitor({state}, interval={self.interval})"
