"""Alerts: record them in a bounded buffer, fold repeats, and hand them to registered handlers.

The seed's API (``from vigil.monitoring import alert_manager``)::

    alert = alert_manager.send_alert(severity="high", component="FileProcessor",
                                     message="File processing failed",
                                     metadata={"file_path": "/path/to/file"})
    alert_manager.register_handler(lambda alert: print(f"Alert: {alert['message']}"))
    alert_manager.get_recent_alerts(count=50)

How it behaves where the seed is silent:

- **An alert reads like a dict** (:class:`Alert` is a :class:`~collections.abc.Mapping`) and has
  the same fields as attributes; ``dict(alert)`` is strict JSON in UTF-8 because everything is
  made JSON-safe when the alert is built: text follows :mod:`vigil.text`'s rule (a lone surrogate
  becomes U+FFFD, an object whose ``str()`` raises ``<unprintable TypeName>``) in the component,
  message, source, labels and annotations, and metadata follows :mod:`vigil.jsonsafe`'s (NaN
  and the infinities become ``"NaN"``/``"Infinity"``/``"-Infinity"``, dataclasses and
  NamedTuples dicts of their fields, sets lists, other objects their text, and anything nested
  deeper than 32 levels ``"[TOO DEEP]"``): never a ``str()`` of a subtree, whose secrets
  :func:`vigil.monitoring.logs.redact` could then no longer find. Handlers get the metadata
  unredacted; the exporter's JSON API redacts what it shows.
- **De-duplication.** An alert's ``fingerprint`` hashes source, severity, component, message,
  status and labels, not metadata (the file path above does not make a new alert; put what tells
  alerts apart in ``labels``). A caller may pass its own (the Alertmanager webhook passes
  Alertmanager's). The same fingerprint *with the same status* within ``dedup_window`` seconds of
  the dispatched alert is folded into it: its ``count`` grows, it is returned, handlers are not
  called again. The window is fixed from the dispatch, so a condition that keeps firing is
  dispatched again once per window (as Alertmanager's ``repeat_interval`` does). A status change
  (firing -> resolved under Alertmanager's status-independent fingerprint) is always dispatched.
  ``dedup_window: 0`` turns de-duplication off. Time is read from the injected clock.
- **Handlers run off the caller's thread**, one daemon worker thread per handler, each with its
  own queue of at most ``queue_size`` waiting alerts, so a slow or hung handler delays only itself
  and ``send_alert`` never waits for one. A handler may be sync or async (anything returning an
  awaitable); a worker runs awaitables on an event loop it owns. A handler that raises is logged
  with its traceback; one still running after ``handler_timeout`` is logged as hung (once per
  stuck call, noticed at the next dispatch or :meth:`AlertManager.flush`); an alert that finds its
  queue full is dropped for that handler only (every drop counted, one log line per run of
  drops). All three are counted in ``vigil_alert_handler_failures_total{handler,reason}``.
- **Lifecycle.** :meth:`AlertManager.close` stops the workers, dropping alerts they have not
  started (call :meth:`AlertManager.flush` first to deliver them). Like an executor after
  ``shutdown``, a closed manager raises :class:`RuntimeError` on ``send_alert`` and
  ``register_handler``: a silent re-start would hide a shutdown-order bug.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import hashlib
import inspect
import json
import queue
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from vigil._lazy import shared_objects
from vigil.clock import SYSTEM_CLOCK, Clock, format_rfc3339
from vigil.config import (
    VigilConfig,
    get_config,
    get_config_or_defaults,
    on_configure,
    with_arguments,
)
from vigil.forks import at_fork
from vigil.jsonsafe import json_safe
from vigil.monitoring.instruments import counter, default_registry
from vigil.monitoring.logger_protocol import Logger
from vigil.monitoring.logs import StructuredLogger
from vigil.text import safe_text
from vigil.vocabulary import SEVERITY_NAMES, Severity

__all__ = ["SEVERITY_NAMES", "Alert", "AlertHandler", "AlertManager", "AlertSeverity",
           "alert_manager"]

FIRING = "firing"
RESOLVED = "resolved"
_STATUSES = (FIRING, RESOLVED)

# flush() re-checks for handlers that became hung at least this often (real seconds).
_FLUSH_POLL_SECONDS = 0.05

AlertHandler = Callable[["Alert"], object]
"""A handler: called with the :class:`Alert`; may return an awaitable (an ``async def``)."""


AlertSeverity = Severity
"""How bad an alert is: :class:`vigil.vocabulary.Severity`, the one scale of alerts and
handled errors. ``AlertSeverity("HIGH")`` and ``AlertSeverity("warning")`` work."""


def _parse_status(value: str) -> str:
    status = value.strip().lower() if isinstance(value, str) else value
    if status not in _STATUSES:
        raise ValueError(f"invalid alert status {value!r}; expected one of: {', '.join(_STATUSES)}")
    return status


# --- the alert ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Alert(Mapping[str, Any]):
    """One alert. Read it as a mapping (``alert["message"]``, ``dict(alert)``) or by attribute.

    Fields are read-only; only ``count`` changes, when a repeat is folded into this alert.
    Treat ``metadata``, ``labels`` and ``annotations`` as read-only too: every handler gets the
    same object.
    """

    id: str
    timestamp: str
    severity: str
    component: str
    message: str
    metadata: dict[str, Any]
    fingerprint: str
    source: str = "vigil"
    status: str = FIRING
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    count: int = 1

    def __getitem__(self, key: str) -> Any:
        if key in _ALERT_KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_ALERT_KEYS)

    def __len__(self) -> int:
        return len(_ALERT_KEYS)


_ALERT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Alert))


def _alert_size(alert: Alert) -> int:
    """About how many bytes ``alert`` holds: its text as UTF-8-ish characters, metadata as
    JSON (what the buffer's byte budget counts)."""
    text = len(alert.message) + len(alert.component) + len(alert.id) + 200
    text += sum(len(k) + len(v) for k, v in alert.labels.items())
    text += sum(len(k) + len(v) for k, v in alert.annotations.items())
    try:
        text += len(json.dumps(alert.metadata, ensure_ascii=False, default=str))
    except (TypeError, ValueError):  # pragma: no cover - metadata is JSON-safe by construction
        text += 1000
    return text


def _str_dict(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {safe_text(k): safe_text(v) for k, v in (values or {}).items()}


def _fingerprint(source: str, severity: str, component: str, message: str, status: str,
                 labels: Mapping[str, str]) -> str:
    """16 hex digits (Alertmanager's length) of a SHA-256 over the alert's identity."""
    identity = [source, severity, component, message, status, sorted(labels.items())]
    encoded = json.dumps(identity, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


# --- handler workers ----------------------------------------------------------------------


def _handler_name(handler: AlertHandler) -> str:
    name = getattr(handler, "__qualname__", None)
    return name if isinstance(name, str) else type(handler).__qualname__


def _handler_key(handler: AlertHandler) -> str:
    """``module.qualname``: the handler's name where it must stay the same across processes
    and restarts (the webhook's durable store keys deliveries by it)."""
    module = getattr(handler, "__module__", None)
    if not isinstance(module, str):
        module = type(handler).__module__
    return f"{module}.{_handler_name(handler)}"


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


class HandlerRunner:
    """Calls one handler; an awaitable result runs to completion on an event loop of its own.

    One runner per thread (the loop is made on first need and reused); :meth:`close` ends the
    loop. Used by the manager's workers and by the exporter's durable delivery loop.
    """

    def __init__(self, handler: AlertHandler) -> None:
        self.handler = handler
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, alert: Alert) -> None:
        result = self.handler(alert)
        if inspect.isawaitable(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(_await(result))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None


class _Worker:
    """One handler, its queue and its thread. Counters are guarded by the manager's lock."""

    def __init__(self, handler: AlertHandler, key: str) -> None:
        self.handler = handler
        self.name = _handler_name(handler)
        self.key = key
        # None is the stop sentinel. The bound (queue_size) is enforced by the manager through
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


# --- the manager --------------------------------------------------------------------------


class AlertManager:
    """Records alerts, folds repeats and dispatches them to handlers (see the module docs).

    Every argument left as ``None`` comes from ``vigil.config`` (``monitoring.alerts.*``), the
    system clock, prometheus_client's default registry and a ``StructuredLogger("vigil.alerts")``.
    Invalid sizes raise :class:`vigil.ConfigError` (a ``ValueError``) naming the argument.
    """

    def __init__(self, *, clock: Clock | None = None, registry: CollectorRegistry | None = None,
                 buffer_size: int | None = None, dedup_window: float | None = None,
                 handler_timeout: float | None = None, queue_size: int | None = None,
                 logger: Logger | None = None) -> None:
        # Given arguments win over the configuration, now and after every configure().
        self._arguments: dict[str, tuple[str, object]] = {
            "buffer_size": ("buffer_size", buffer_size),
            "dedup_window": ("dedup_window", dedup_window),
            "handler_timeout": ("handler_timeout", handler_timeout),
            "queue_size": ("queue_size", queue_size)}
        self._settings = with_arguments(get_config().monitoring.alerts, self._arguments)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._logger: Logger = logger if logger is not None else StructuredLogger("vigil.alerts")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a handler call finished
        # (alert, its size in bytes), oldest first; bounded by buffer_size and buffer_max_bytes.
        self._buffer: deque[tuple[Alert, int]] = deque()
        self._buffer_bytes = 0
        # fingerprint -> (alert, dispatch time, size); insertion order is dispatch order.
        self._recent: OrderedDict[str, tuple[Alert, float, int]] = OrderedDict()
        self._recent_bytes = 0
        self._workers: list[_Worker] = []
        self._closed = False
        self._exit_flush_armed = False
        registry = registry if registry is not None else default_registry()
        self._sent = counter(registry, "vigil_alerts_total",
                             "Alerts dispatched to handlers (repeats folded by de-duplication "
                             "not included).", ["severity", "component"])
        self._deduplicated = counter(registry, "vigil_alerts_deduplicated_total",
                                     "Repeated alerts folded into an earlier one instead of being "
                                     "dispatched.", ["severity", "component"])
        self._failures = counter(registry, "vigil_alert_handler_failures_total",
                                 "Alert handler failures: reason is error (raised), hung (ran "
                                 "past handler_timeout) or dropped (its queue was full).",
                                 ["handler", "reason"])
        at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        """A forked child's manager: fresh locks and queues, a new thread per handler.

        Alerts queued in the parent are the parent's to handle (its threads still run there);
        the child starts empty and handles what it sends itself, so a handler registered
        before gunicorn's ``--preload`` fork works in every worker.
        """
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        if self._closed:
            return
        for worker in self._workers:
            worker.queue = queue.SimpleQueue()
            worker.queued, worker.started_at = 0, None
            worker.hung_reported = worker.dropping = False
            worker.runner = HandlerRunner(worker.handler)
            worker.thread = self._thread_for(worker)
            worker.thread.start()

    def _thread_for(self, worker: _Worker) -> threading.Thread:
        return threading.Thread(target=self._work, args=(worker,), daemon=True,
                                name=f"vigil-alert-handler[{worker.name}]")

    # -- settings ------------------------------------------------------------------------

    @property
    def buffer_size(self) -> int:
        """Recent alerts kept."""
        return self._settings.buffer_size

    @property
    def dedup_window(self) -> float:
        """Seconds in which a repeat is folded instead of dispatched."""
        return self._settings.dedup_window

    @property
    def handler_timeout(self) -> float:
        """Seconds a handler call may run before it is reported as hung."""
        return self._settings.handler_timeout

    @property
    def queue_size(self) -> int:
        """Alerts that may wait per handler before new ones are dropped for it."""
        return self._settings.queue_size

    def reconfigure(self, config: VigilConfig) -> None:
        """Apply ``config.monitoring.alerts``: the buffer keeps its newest alerts; the window,
        timeout and queue bound apply from the next alert on. Registered with
        :func:`vigil.config.on_configure` for the module-level ``alert_manager``."""
        settings = with_arguments(config.monitoring.alerts, self._arguments)
        with self._lock:
            self._settings = settings
            self._trim_locked()

    # -- sending -------------------------------------------------------------------------

    def send_alert(self, severity: AlertSeverity | str, component: str, message: str,
                   metadata: Mapping[str, Any] | None = None, *, source: str = "vigil",
                   status: str = FIRING, labels: Mapping[str, str] | None = None,
                   annotations: Mapping[str, str] | None = None,
                   fingerprint: str | None = None) -> Alert:
        """Record an alert and dispatch it to every handler; returns it.

        A repeat (same fingerprint and status within ``dedup_window``) is not dispatched: the
        earlier alert's ``count`` grows and that alert is returned. Raises ``ValueError`` for an
        unknown severity or status and ``RuntimeError`` once the manager is closed.
        """
        alert = self.build_alert(severity, component, message, metadata, source=source,
                                status=status, labels=labels, annotations=annotations,
                                fingerprint=fingerprint)
        now = self._clock.monotonic()
        drops: list[tuple[_Worker, bool]] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("AlertManager is closed; it cannot send alerts")
            stored = self._repeat_of_locked(alert, now)
            if stored is not None:
                # The only mutation of an Alert: frozen so handlers cannot change it.
                object.__setattr__(stored, "count", stored.count + 1)
            else:
                self._remember_locked(alert, now)
                drops = self._enqueue_locked(alert)
            hung = self._hung_locked(now)
        self._report_hung(hung)
        if stored is not None:
            self._deduplicated.labels(alert.severity, alert.component).inc()
            return stored
        self._sent.labels(alert.severity, alert.component).inc()
        self._report_drops(alert, drops)
        return alert

    def build_alert(self, severity: AlertSeverity | str, component: str, message: str,
                    metadata: Mapping[str, Any] | None = None, *, source: str = "vigil",
                    status: str = FIRING, labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None,
                    fingerprint: str | None = None, id: str | None = None,
                    timestamp: float | None = None) -> Alert:
        """An :class:`Alert` from ``send_alert``'s arguments, neither recorded nor dispatched.

        ``id`` defaults to a new random one, ``timestamp`` (epoch seconds) to the clock's now.
        The exporter's delivery loop builds webhook alerts this way, with the store's id.
        """
        level = AlertSeverity.parse(severity, "alert severity").value
        state = _parse_status(status)
        label_map = _str_dict(labels)
        component, message, source = safe_text(component), safe_text(message), safe_text(source)
        return Alert(
            id=id if id is not None else uuid.uuid4().hex,
            timestamp=format_rfc3339(self._clock.time() if timestamp is None else timestamp),
            severity=level, component=component, message=message,
            metadata=json_safe(metadata or {}),
            fingerprint=fingerprint or _fingerprint(source, level, component, message, state,
                                                    label_map),
            source=source, status=state, labels=label_map, annotations=_str_dict(annotations))

    def record(self, alert: Alert) -> None:
        """Keep ``alert`` in the recent buffer (``get_recent_alerts``) and count it in
        ``vigil_alerts_total``, without calling the handlers: for alerts that reach the handlers
        another way (the exporter's durable webhook delivery)."""
        with self._lock:
            self._buffer.append((alert, _alert_size(alert)))
            self._buffer_bytes += self._buffer[-1][1]
            self._trim_locked()
        self._sent.labels(alert.severity, alert.component).inc()

    def _trim_locked(self) -> None:
        """Keep the buffer and the de-duplication index within buffer_size alerts and
        buffer_max_bytes bytes each (the newest alert stays, however large)."""
        limit, budget = self._settings.buffer_size, self._settings.buffer_max_bytes
        while len(self._buffer) > limit or (self._buffer_bytes > budget
                                            and len(self._buffer) > 1):
            self._buffer_bytes -= self._buffer.popleft()[1]
        while len(self._recent) > limit or (self._recent_bytes > budget
                                            and len(self._recent) > 1):
            self._recent_bytes -= self._recent.popitem(last=False)[1][2]

    def _repeat_of_locked(self, alert: Alert, now: float) -> Alert | None:
        window = self._settings.dedup_window
        # Entries are in dispatch order, so expired ones are all at the front.
        while self._recent:
            _, (_, dispatched_at, _) = next(iter(self._recent.items()))
            if now - dispatched_at < window:
                break
            self._recent_bytes -= self._recent.popitem(last=False)[1][2]
        entry = self._recent.get(alert.fingerprint)
        if entry is None or entry[0].status != alert.status:
            return None
        return entry[0]

    def _remember_locked(self, alert: Alert, now: float) -> None:
        size = _alert_size(alert)
        self._buffer.append((alert, size))
        self._buffer_bytes += size
        previous = self._recent.pop(alert.fingerprint, None)
        if previous is not None:
            self._recent_bytes -= previous[2]
        self._recent[alert.fingerprint] = (alert, now, size)
        self._recent_bytes += size
        # Bounded like the buffer: a flood of distinct alerts cannot grow the dedup index.
        self._trim_locked()

    def _enqueue_locked(self, alert: Alert) -> list[tuple[_Worker, bool]]:
        """Queue ``alert`` for each worker; returns (worker, first drop of a run) per drop."""
        drops = []
        for worker in self._workers:
            if worker.queued >= self._settings.queue_size:
                drops.append((worker, not worker.dropping))
                worker.dropping = True
                continue
            worker.dropping = False
            worker.queued += 1
            worker.queue.put(alert)
        return drops

    # -- handlers ------------------------------------------------------------------------

    def register_handler(self, handler: AlertHandler) -> AlertHandler:
        """Call ``handler(alert)`` for every dispatched alert, on its own worker thread.

        Registering the same handler twice has no effect. Returns ``handler``, so this can be
        used as a decorator. Raises ``RuntimeError`` once the manager is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("AlertManager is closed; it cannot register handlers")
            if any(worker.handler == handler for worker in self._workers):
                return handler
            key = _handler_key(handler)
            taken = {worker.key for worker in self._workers}
            unique, n = key, 1
            while unique in taken:
                n += 1
                unique = f"{key}#{n}"
            worker = _Worker(handler, unique)
            worker.thread = self._thread_for(worker)
            self._workers.append(worker)
        worker.thread.start()
        self._arm_exit_flush()
        return handler

    def _arm_exit_flush(self) -> None:
        """At interpreter exit, give the handlers ``exit_flush_timeout`` seconds to finish.

        Handler threads are daemons (a hung handler must not keep the process alive forever),
        so without this a short script's alerts would die with the interpreter unhandled.
        """
        with self._lock:
            if self._exit_flush_armed:
                return
            self._exit_flush_armed = True
        atexit.register(self._flush_at_exit)

    def _flush_at_exit(self) -> None:
        with self._lock:
            if self._closed:
                return
        timeout = get_config_or_defaults().monitoring.alerts.exit_flush_timeout
        if timeout > 0 and self.flush(timeout):
            return
        with self._lock:
            left = {worker.name: worker.pending for worker in self._workers if worker.pending}
        if left:
            # A broken injected logger must not turn the exit into a traceback.
            with contextlib.suppress(Exception):
                self._logger.warning(
                    "interpreter exiting with alerts not yet handled; they are lost",
                    metadata={"pending_by_handler": left, "exit_flush_timeout": timeout})

    def handlers(self) -> dict[str, AlertHandler]:
        """The registered handlers by name, in registration order.

        The name is ``module.qualname`` (``#2``, ``#3`` ... for further handlers of the same
        name, in registration order): the same in every process that registers the same
        handlers, which is what the exporter's durable store keys deliveries by.
        """
        with self._lock:
            return {worker.key: worker.handler for worker in self._workers}

    def unregister_handler(self, handler: AlertHandler) -> bool:
        """Stop calling ``handler``: alerts queued for it are dropped, a running call finishes.

        Returns whether it was registered.
        """
        with self._lock:
            worker = next((w for w in self._workers if w.handler == handler), None)
            if worker is None:
                return False
            self._workers.remove(worker)
            worker.stopped = True
            self._changed.notify_all()
        worker.queue.put(None)
        return True

    def _work(self, worker: _Worker) -> None:
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

    def _begin(self, worker: _Worker) -> bool:
        with self._lock:
            worker.queued -= 1
            if worker.stopped:
                return False
            worker.started_at = self._clock.monotonic()
            worker.hung_reported = False
            return True

    def _end(self, worker: _Worker) -> None:
        with self._lock:
            worker.started_at = None
            self._changed.notify_all()

    def _call(self, worker: _Worker, alert: Alert) -> None:
        try:
            worker.runner(alert)
        # BaseException too: a handler calling sys.exit() must not silently kill its worker
        # (its queue would never drain and flush() would wait on it).
        except BaseException as exc:
            self._failures.labels(worker.name, "error").inc()
            self._log("error", "alert handler raised", worker, alert, exc_info=exc)

    def _hung_locked(self, now: float) -> list[tuple[_Worker, float]]:
        """Workers whose current call just passed handler_timeout, with its running time."""
        hung = []
        for worker in self._workers:
            started = worker.started_at
            if started is None or worker.hung_reported:
                continue
            running = now - started
            if running > self._settings.handler_timeout:
                worker.hung_reported = True
                hung.append((worker, running))
        return hung

    def _report_hung(self, hung: list[tuple[_Worker, float]]) -> None:
        for worker, running in hung:
            self._failures.labels(worker.name, "hung").inc()
            self._log("warning", "alert handler hung", worker, None,
                      running_seconds=round(running, 3),
                      handler_timeout=self._settings.handler_timeout)

    def _report_drops(self, alert: Alert, drops: list[tuple[_Worker, bool]]) -> None:
        for worker, first in drops:
            self._failures.labels(worker.name, "dropped").inc()
            if first:
                self._log("warning", "alert handler queue full; dropping alerts for it",
                          worker, alert, queue_size=self._settings.queue_size)

    def _log(self, level: str, message: str, worker: _Worker, alert: Alert | None, *,
             exc_info: BaseException | None = None, **extra: Any) -> None:
        metadata: dict[str, Any] = {"handler": worker.name, **extra}
        if alert is not None:
            metadata.update(alert_id=alert.id, fingerprint=alert.fingerprint)
        try:
            if level == "error":
                self._logger.error(message, metadata=metadata, exc_info=exc_info)
            else:
                self._logger.warning(message, metadata=metadata, exc_info=exc_info)
        # A broken injected logger must not break send_alert or kill a worker.
        except Exception:  # pragma: no cover - defensive
            pass

    # -- waiting, reading, closing -------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert has been handled; returns whether all were.

        ``timeout`` is in real seconds; ``None`` waits as long as it takes (with a hung handler,
        forever) and ``0`` only looks. Handlers running past ``handler_timeout`` are reported
        as hung while it waits.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                hung = self._hung_locked(self._clock.monotonic())
            self._report_hung(hung)
            with self._lock:
                if not any(worker.pending for worker in self._workers):
                    return True
                remaining = _FLUSH_POLL_SECONDS if deadline is None else \
                    deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Woken by each finished call; the poll bound lets a call become hung meanwhile.
                self._changed.wait(min(remaining, _FLUSH_POLL_SECONDS))

    def get_recent_alerts(self, count: int = 50, *, source: str | None = None,
                          status: str | None = None,
                          severity: AlertSeverity | str | None = None) -> list[Alert]:
        """Up to ``count`` recent alerts matching every filter given, newest first."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        wanted_status = None if status is None else _parse_status(status)
        wanted_severity = None if severity is None else \
            AlertSeverity.parse(severity, "alert severity").value
        with self._lock:
            alerts = [alert for alert, _ in self._buffer]
        found: list[Alert] = []
        for alert in reversed(alerts):
            if len(found) >= count:
                break
            if ((source is None or alert.source == source)
                    and (wanted_status is None or alert.status == wanted_status)
                    and (wanted_severity is None or alert.severity == wanted_severity)):
                found.append(alert)
        return found

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the handler workers and wait up to ``timeout`` real seconds for their threads.

        Alerts not yet started are dropped; a running call finishes. Returns whether every
        thread ended (a hung handler's daemon thread cannot be stopped). Idempotent.
        """
        with self._lock:
            self._closed = True
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

    def __enter__(self) -> AlertManager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _build_shared_manager() -> AlertManager:
    manager = AlertManager()
    on_configure(manager.reconfigure)
    return manager


alert_manager: AlertManager
"""The process-wide manager: metrics on prometheus_client's default registry, follows
``configure``. Built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"alert_manager": _build_shared_manager})
