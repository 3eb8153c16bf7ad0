"""The webhook's store and delivery loop: opened and started with the app, stopped with it.

:class:`StoreLifecycle` keeps them on the app's ``state`` (``store``, ``delivery``,
``collector``, ``accepting``: what the webhook and ``/readyz`` read). :meth:`~StoreLifecycle.start`
runs when the app's lifespan starts (or, mounted in another app, on its first request:
:class:`~vigil_exporter.middleware.StartWhenMounted`); :meth:`~StoreLifecycle.stop` when it
ends: from then on the webhook answers 503 and running handler calls get
``exporter.shutdown_timeout`` seconds. Both block (opening SQLite, joining threads): callers
run them in a thread.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.datastructures import State

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil_exporter.delivery import DeliveryLoop, StoreCollector
from vigil_exporter.policy import exposure_warning
from vigil_exporter.store import AlertStore, open_store

__all__ = ["StoreLifecycle"]


class StoreLifecycle:
    """Opens the store (``store``, the caller's, which stays open; else the one ``settings``
    name, in ``state_dir`` when given), reports it on ``registry`` and runs the
    :class:`~vigil_exporter.delivery.DeliveryLoop` handing its alerts to ``manager``'s handlers.
    """

    def __init__(self, state: State, *, settings: ExporterSettings,
                 registry: CollectorRegistry, manager: AlertManager, logger: StructuredLogger,
                 store: AlertStore | None = None, state_dir: str | None = None) -> None:
        self._state = state
        self._settings, self._registry, self._manager = settings, registry, manager
        self._logger = logger
        self._store, self._state_dir = store, state_dir
        state.store, state.delivery, state.accepting, state.collector = None, None, False, None

    def start(self) -> None:
        """Open the store, report it, start the delivery loop; the webhook accepts from here."""
        settings, registry, logger = self._settings, self._registry, self._logger
        warning = exposure_warning(settings)
        if warning is not None:
            logger.warning(warning, {"host": settings.host})
        opened = open_store(settings, self._state_dir) if self._store is None else self._store
        collector: StoreCollector | None = StoreCollector(opened)
        try:
            registry.register(collector)  # type: ignore[arg-type]
        except ValueError:  # another app's store already reports on this registry
            logger.warning("vigil_webhook_store_* already registered on this registry by "
                           "another exporter app; this app's store is not reported", {})
            collector = None
        delivery = DeliveryLoop(opened, self._manager, settings, registry, logger=logger)
        delivery.start()
        state = self._state
        state.collector = collector
        state.store, state.delivery, state.accepting = opened, delivery, True

    def stop(self) -> None:
        """The webhook answers 503 from here on; handlers get shutdown_timeout to finish."""
        state = self._state
        state.accepting = False
        delivery: DeliveryLoop | None = state.delivery
        opened: AlertStore | None = state.store
        try:
            if delivery is not None:
                delivery.stop()
        finally:
            if state.collector is not None:
                self._registry.unregister(state.collector)
                state.collector = None
            if self._store is None and opened is not None:  # ours to close, not the caller's
                opened.close()
