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

**Shape**, one module per job:

* :mod:`.model` the :class:`Alert` value, its statuses and severity scale, the handler
  signature, what an alert weighs against the byte budget;
* :mod:`.building` an alert from ``send_alert``'s arguments: JSON-safe, fingerprinted;
* :mod:`.budget` the bounded container the recent buffer and the de-duplication index share;
* :mod:`.dedup` which dispatched alert a new one repeats;
* :mod:`.runner` :class:`HandlerRunner` (one handler, sync or async) and the handler's names;
* :mod:`.failures` each handler failure counted and logged;
* :mod:`.pool` the worker threads and their queues, hung detection, the fork;
* :mod:`.manager` the :class:`AlertManager` facade: settings, sending, reading, lifecycle.

``alert_manager`` is built on first use, here (:mod:`vigil._lazy`), and stored as this
package's global: ``monkeypatch.setattr(vigil.monitoring.alerts, "alert_manager", ...)`` is
seen by every module that reads it through the package.
"""

from typing import TYPE_CHECKING

from vigil._lazy import shared_objects
from vigil.config import on_configure
from vigil.monitoring.alerts.manager import AlertManager
from vigil.monitoring.alerts.model import FIRING, RESOLVED, Alert, AlertHandler, AlertSeverity
from vigil.monitoring.alerts.runner import HandlerRunner
from vigil.vocabulary import SEVERITY_NAMES

__all__ = ["FIRING", "RESOLVED", "SEVERITY_NAMES", "Alert", "AlertHandler", "AlertManager",
           "AlertSeverity", "HandlerRunner", "alert_manager"]


def _build_shared_manager() -> AlertManager:
    manager = AlertManager()
    on_configure(manager.reconfigure)
    return manager


alert_manager: AlertManager
"""The process-wide manager: metrics on prometheus_client's default registry, follows
``configure``. Built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"alert_manager": _build_shared_manager})
