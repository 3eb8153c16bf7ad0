"""Handlers run off the caller's thread: one daemon worker thread and one queue per handler.

A slow or hung handler delays only itself. Each handler's queue holds at most ``queue_size``
waiting alerts (enforced here under the lock, so the bound can change at run time); an alert
that finds it full is dropped for that handler only. A call running past ``handler_timeout``
(injected clock) is reported as hung once, when the next dispatch or :meth:`HandlerPool.flush`
looks. The pool's lock is the manager's one lock: the manager takes it to dispatch, the
workers to start and finish a call.

In a forked child (gunicorn ``--preload``) the pool makes its lock again and a new thread per
handler, with empty queues: alerts queued in the parent are the parent's to handle.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from vigil.clock import Clock
from vigil.config import AlertSettings
from vigil.forks import at_fork
from vigil.monitoring.alerts.failures import HandlerFailures
from vigil.monitoring.alerts.model import Alert, AlertHandler
from vigil.monitoring.alerts.runner import HandlerRunner, handler_key, handler_name

__all__ = ["Drops", "HandlerPool", "Hung", "Worker"]

# flush() re-checks for handlers that became hung at least this often (real seconds).
_FLUSH_POLL_SECONDS = 0.05


class Worker:
    """One handler, its queue and its thread. Counters are guarded by the pool's lock."""

    def __init__(self, handler: AlertHandler, key: str) -> None:
        self.handler = handler
        self.name = handler_name(handler)
        self.key = key
        # None is the stop sentinel. The bound (queue_size) is enforced by the pool through
        # ``queued`` under its lock, so the limit can change at run time.
        self.queue: queue.SimpleQueue[Alert | None] = queue.SimpleQueue()
        self.queued = 0  # put but not yet started
        self.started_at: float | None = None  # injected-clock time the current call began
        self.hung_reported = False
        self.dropping = False
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.runner = HandlerRunner(handler)

    @property
    def pending(self) -> int:
        return self.queued + (self.started_at is not None)


Drops = list[tuple[Worker, bool]]
"""The workers an alert was dropped for, each with whether it began a run of drops."""

Hung = list[tuple[Worker, float]]
"""The workers whose current call just passed handler_timeout, each with its running time."""


class HandlerPool:
    """The registered handlers' workers. ``settings`` answers the manager's current settings
    (``queue_size`` and ``handler_timeout`` are read from it where they apply)."""

    def __init__(self, clock: Clock, settings: Callable[[], AlertSettings],
                 failures: HandlerFailures) -> None:
        self._clock = clock
        self._settings = settings
        self._failures = failures
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)  # a handler call finished
        self._workers: list[Worker] = []
        self.closed = False
        at_fork(after_in_child=self._after_fork_in_child)

    # -- membership ----------------------------------------------------------------------

    def register(self, handler: AlertHandler) -> bool:
        """Start a worker for ``handler``; returns ``False`` if it already has one. Raises
        ``RuntimeError`` once closed."""
        with self.lock:
            if self.closed:
                raise RuntimeError("AlertManager is closed; it cannot register handlers")
            if any(worker.handler == handler for worker in self._workers):
                return False
            worker = Worker(handler, self._unique_key_locked(handler_key(handler)))
            worker.thread = self._thread_for(worker)
            self._workers.append(worker)
        worker.thread.start()
        return True

    def _unique_key_locked(self, key: str) -> str:
        """``key``, or ``key#2``, ``key#3`` ... when a registered handler has it already."""
        taken = {worker.key for worker in self._workers}
        unique, n = key, 1
        while unique in taken:
            n += 1
            unique = f"{key}#{n}"
        return unique

    def unregister(self, handler: AlertHandler) -> bool:
        """Stop ``handler``'s worker (its queued alerts are dropped, a running call finishes);
        returns whether it was registered."""
        with self.lock:
            worker = next((w for w in self._workers if w.handler == handler), None)
            if worker is None:
                return False
            self._workers.remove(worker)
            worker.stopped = True
            self._changed.notify_all()
        worker.queue.put(None)
        return True

    def handlers(self) -> dict[str, AlertHandler]:
        with self.lock:
            return {worker.key: worker.handler for worker in self._workers}

    def pending_by_handler(self) -> dict[str, int]:
        """Alerts queued or running, by handler name, for the handlers that have any."""
        with self.lock:
            return {worker.name: worker.pending for worker in self._workers if worker.pending}

    # -- dispatching (the caller holds the lock) -----------------------------------------

    def enqueue_locked(self, alert: Alert) -> Drops:
        """Queue ``alert`` for each worker with room; returns the drops."""
        drops = []
        for worker in self._workers:
            if worker.queued >= self._settings().queue_size:
                drops.append((worker, not worker.dropping))
                worker.dropping = True
                continue
            worker.dropping = False
            worker.queued += 1
            worker.queue.put(alert)
        return drops

    def hung_locked(self, now: float) -> Hung:
        """Workers whose current call just passed handler_timeout, marked as reported."""
        hung = []
        for worker in self._workers:
            started = worker.started_at
            if started is None or worker.hung_reported:
                continue
            running = now - started
            if running > self._settings().handler_timeout:
                worker.hung_reported = True
                hung.append((worker, running))
        return hung

    def report_hung(self, hung: Hung) -> None:
        for worker, running in hung:
            self._failures.hung(worker.name, running, self._settings().handler_timeout)

    def report_drops(self, alert: Alert, drops: Drops) -> None:
        for worker, first in drops:
            self._failures.dropped(worker.name, alert, first, self._settings().queue_size)

    # -- the worker threads --------------------------------------------------------------

    def _thread_for(self, worker: Worker) -> threading.Thread:
        return threading.Thread(target=self._work, args=(worker,), daemon=True,
                                name=f"vigil-alert-handler[{worker.name}]")

    def _work(self, worker: Worker) -> None:
        """A worker thread's loop: one alert at a time until the stop sentinel."""
        try:
            while (alert := worker.queue.get()) is not None:
                if not self._begin(worker):
                    continue
                try:
                    self._call(worker, alert)
                finally:
                    self._end(worker)
        finally:
            worker.runner.close()

    def _begin(self, worker: Worker) -> bool:
        with self.lock:
            worker.queued -= 1
            if worker.stopped:
                return False
            worker.started_at = self._clock.monotonic()
            worker.hung_reported = False
            return True

    def _end(self, worker: Worker) -> None:
        with self.lock:
            worker.started_at = None
            self._changed.notify_all()

    def _call(self, worker: Worker, alert: Alert) -> None:
        try:
            worker.runner(alert)
        # BaseException too: a handler calling sys.exit() must not silently kill its worker
        # (its queue would never drain and flush() would wait on it).
        except BaseException as exc:
            self._failures.raised(worker.name, alert, exc)

    def _after_fork_in_child(self) -> None:
        """A forked child's pool: a fresh lock and queues, a new thread per handler.

        The child starts empty and handles what it sends itself, so a handler registered
        before gunicorn's ``--preload`` fork works in every worker.
        """
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        if self.closed:
            return
        for worker in self._workers:
            worker.queue = queue.SimpleQueue()
            worker.queued, worker.started_at = 0, None
            worker.hung_reported = worker.dropping = False
            worker.runner = HandlerRunner(worker.handler)
            worker.thread = self._thread_for(worker)
            worker.thread.start()

    # -- waiting and stopping ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert has been handled; returns whether all were (see
        :meth:`vigil.monitoring.alerts.AlertManager.flush`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                hung = self.hung_locked(self._clock.monotonic())
            self.report_hung(hung)
            with self.lock:
                if not any(worker.pending for worker in self._workers):
                    return True
                remaining = _FLUSH_POLL_SECONDS if deadline is None else \
                    deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Woken by each finished call; the poll bound lets a call become hung meanwhile.
                self._changed.wait(min(remaining, _FLUSH_POLL_SECONDS))

    def close(self, timeout: float) -> bool:
        """Stop every worker and wait up to ``timeout`` real seconds for the threads; returns
        whether they all ended. Idempotent."""
        with self.lock:
            self.closed = True
            workers, self._workers = self._workers, []
            for worker in workers:
                worker.stopped = True
            self._changed.notify_all()
        for worker in workers:
            worker.queue.put(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        return not any(w.thread is not None and w.thread.is_alive() for w in workers)
