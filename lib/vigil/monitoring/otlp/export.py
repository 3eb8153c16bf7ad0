"""The export queue and its thread: :class:`SpanExport` takes ended entries (a bounded append
under a lock on the traced code's path), batches them as ``BatchSpanProcessor``'s variables
say, and sends them with ``OTLPSpanExporter``; :func:`export_wanted` reads whether to.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from vigil import forks
from vigil.config import get_config, get_config_or_defaults
from vigil.monitoring import instruments
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.otlp.convert import Converter, resource_for_service
from vigil.text import safe_text

if TYPE_CHECKING:
    from vigil.monitoring.tracing.entry import Entry

__all__ = ["SpanExport", "export_wanted"]

_FAILURE_LOG_INTERVAL = 60.0  # seconds between two "export failed" log lines


def export_wanted(mode: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``monitoring.tracing.export`` = ``mode`` exports spans in this environment.

    ``otlp``: always; ``none``: never; ``auto``: when OpenTelemetry's own configuration asks
    for OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set,
    ``OTEL_TRACES_EXPORTER`` unset or naming ``otlp``, ``OTEL_SDK_DISABLED`` not ``true``).
    """
    if mode == "otlp":
        return True
    if mode != "auto":
        return False
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters and "otlp" not in {name.strip() for name in exporters.split(",")}:
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def _env_number(env: Mapping[str, str], name: str, default: int, warn: Callable[[str], None],
                minimum: int) -> int:
    """An ``OTEL_BSP_*`` integer; as the SDK does, a bad value warns and keeps the default."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
        if value < minimum:
            raise ValueError(raw)
    except ValueError:
        warn(f"{name}: got {raw!r}; expected an integer >= {minimum}; using {default}")
        return default
    return value


class SpanExport:
    """A bounded queue of ended entries and the thread that exports them over OTLP.

    ``exporter`` is any OpenTelemetry ``SpanExporter`` (default: ``OTLPSpanExporter()``, built by
    the thread, reading ``OTEL_EXPORTER_OTLP_*``). The batching arguments default from the
    ``OTEL_BSP_*`` variables in ``environ`` (default ``os.environ``). Thread-safe and fork-safe.
    """

    def __init__(self, *, exporter: Any = None, registry: CollectorRegistry | None = None,
                 logger: Logger | None = None, schedule_delay: float | None = None,
                 max_queue_size: int | None = None, max_batch_size: int | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        from vigil.monitoring.logs import StructuredLogger
        self._logger: Logger = (logger if logger is not None
                                       else StructuredLogger("vigil.tracing.export"))
        warn = self._warn
        self.schedule_delay = (schedule_delay if schedule_delay is not None else
                               _env_number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, warn, 0) / 1000)
        self.max_queue_size = (max_queue_size if max_queue_size is not None else
                               _env_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, warn, 1))
        batch = (max_batch_size if max_batch_size is not None else
                 _env_number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, warn, 1))
        self.max_batch_size = min(batch, self.max_queue_size)  # as the SDK clamps it
        self._given_exporter = exporter
        self.registry = registry if registry is not None else instruments.default_registry()
        dropped = instruments.counter(
            self.registry, "vigil_traces_dropped_total",
            "Trace entries discarded before they ended, by reason.", ("reason",))
        self._dropped_full = dropped.labels("export_queue_full")
        self._dropped_failed = dropped.labels("export_failed")
        self._exported = instruments.counter(
            self.registry, "vigil_traces_exported_total",
            "Trace entries (spans) the OTLP exporter delivered.").metric
        self._resource: tuple[str, Any] | None = None  # (service, Resource), built by the thread
        self._fresh_state()
        self._exit_armed = False
        forks.at_fork(before=self._before_fork, after_in_parent=self._after_fork_in_parent,
                      after_in_child=self._after_fork_in_child)

    def _fresh_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(threading.Lock())
        self._queue: deque[Entry] = deque()
        # The queue is first in, first out: entries queued ever, and of those the ones the
        # thread is done with (sent or failed), is all force_flush needs to know.
        self._queued = 0
        self._done_count = 0
        self._thread: threading.Thread | None = None
        self._exporter: Any = self._given_exporter
        self._stopping = False
        self._next_failure_log = float("-inf")

    # --- the traced code's side ---------------------------------------------------------------

    def offer(self, entry: Entry) -> None:
        """Queue an ended, sampled entry for export; drop and count it when the queue is full."""
        with self._lock:
            queue = self._queue
            size = len(queue)
            if size < self.max_queue_size:
                queue.append(entry)
                self._queued += 1
                if self._thread is None:
                    self._start_locked()
                if size + 1 != self.max_batch_size:
                    return
            else:
                size = -1
        if size < 0:
            self._dropped_full.inc()
        else:
            self._wake.set()  # a full batch goes at once, not at the next schedule tick

    def _start_locked(self) -> None:
        if self._stopping:
            return
        thread = threading.Thread(target=self._run, name="vigil-otlp-export", daemon=True)
        self._thread = thread
        thread.start()
        if not self._exit_armed:
            self._exit_armed = True
            atexit.register(self._at_exit)

    # --- flushing -----------------------------------------------------------------------------

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Send what is queued now; ``True`` once all of it is exported (or failed) in time."""
        with self._lock:
            target = self._queued
            running = self._thread is not None
        if not running:
            return self._done_count >= target
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._done:
            while self._done_count < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush for up to ``timeout`` seconds, then stop the thread; ``True`` if all was sent."""
        flushed = self.force_flush(timeout) if timeout > 0 else False
        with self._lock:
            self._stopping = True
            thread = self._thread
            left = len(self._queue)
        self._wake.set()
        exporter = self._exporter
        if exporter is not None:
            with contextlib.suppress(Exception):  # aborts an export waiting out its retries
                exporter.shutdown()
        if thread is not None:
            thread.join(min(timeout, 1.0) if timeout > 0 else 0.1)
        return flushed and left == 0

    def _at_exit(self) -> None:
        timeout = get_config_or_defaults().monitoring.tracing.exit_flush_timeout
        with self._lock:
            if self._stopping or self._thread is None:
                return
            waiting = len(self._queue)
        if waiting == 0 and self._done_count >= self._queued:
            return
        if self.shutdown(timeout):
            return
        with self._lock:
            left = len(self._queue)
        with contextlib.suppress(Exception):  # a broken logger must not make exit a traceback
            self._logger.warning(
                "interpreter exiting with spans not yet exported; they are lost",
                metadata={"spans": left, "exit_flush_timeout": timeout})

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            exporter = self._exporter
            if exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
                exporter = self._exporter = OTLPSpanExporter()
            convert = Converter()
            self._resource_for()  # now, while the interpreter can still start its thread pool
        except Exception as exc:  # ImportError without the extra; a bad OTEL_* value
            self._unavailable(exc)
            return
        while True:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            while self._send_one_batch(exporter, convert):
                pass
            with self._lock:
                if self._stopping and not self._queue:
                    return

    def _send_one_batch(self, exporter: Any, convert: Converter) -> bool:
        with self._lock:
            queue = self._queue
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch_size))]
        if not batch:
            return False
        try:
            spans = convert.spans(batch, self._resource_for())
            ok = _succeeded(exporter.export(spans))
            error: BaseException | None = None
        except Exception as exc:  # an exporter or conversion bug must not end the thread
            ok, error = False, exc
        if ok:
            self._exported.inc(len(batch))
        else:
            self._dropped_failed.inc(len(batch))
            self._log_failure(len(batch), error)
        self._finish(len(batch))
        return True

    def _resource_for(self) -> Any:
        service = get_config().monitoring.logging.service
        cached = self._resource
        if cached is not None and cached[0] == service:
            return cached[1]
        self._resource = (service, resource_for_service(service))
        return self._resource[1]

    def _unavailable(self, exc: BaseException) -> None:
        """No exporter: say why once, then count every queued and future entry as failed."""
        with contextlib.suppress(Exception):
            self._logger.warning(
                "span export is on (monitoring.tracing.export) but cannot start; spans are "
                "counted as dropped. Install it with: pip install 'vigil[otel]'",
                metadata={"error": f"{type(exc).__name__}: {safe_text(exc)}"})
        while True:
            with self._lock:
                left = len(self._queue)
                self._queue.clear()
            if left:
                self._dropped_failed.inc(left)
                self._finish(left)
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            with self._lock:
                if self._stopping:
                    return

    def _finish(self, count: int) -> None:
        """The thread is done with the next ``count`` queued entries (sent or failed)."""
        with self._done:
            self._done_count += count
            self._done.notify_all()

    def _log_failure(self, count: int, error: BaseException | None) -> None:
        now = time.monotonic()
        if now < self._next_failure_log:
            return
        self._next_failure_log = now + _FAILURE_LOG_INTERVAL
        metadata: dict[str, Any] = {"spans": count}
        if error is not None:
            metadata["error"] = f"{type(error).__name__}: {safe_text(error)}"
        with contextlib.suppress(Exception):
            self._logger.warning("span export failed; the batch is dropped (logged at most "
                                 "once a minute; see vigil_traces_dropped_total)",
                                 metadata=metadata)

    def _warn(self, message: str) -> None:
        with contextlib.suppress(Exception):
            self._logger.warning(message)

    # --- fork ---------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        self._lock.acquire()  # no half-taken batch is copied into the child

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        # The parent's entries are the parent's to send; the thread did not survive the fork.
        self._fresh_state()


def _succeeded(result: Any) -> bool:
    return getattr(result, "name", None) == "SUCCESS"
