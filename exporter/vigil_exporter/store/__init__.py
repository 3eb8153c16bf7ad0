"""The durable store between the Alertmanager webhook and the alert handlers.

The webhook answers 2xx only once :meth:`AlertStore.accept` has committed the notification's
alerts; the :class:`~vigil_exporter.delivery.DeliveryLoop` takes them out again, one delivery
(alert, handler) at a time, and removes each once its handler returned. So the store is the one
queue between receiver and handlers, and what it holds survives the process.

Backends: :class:`~vigil_exporter.store.sqlite.SQLiteStore` (the default: a file in
``exporter.state_dir``, WAL mode, synchronous commits; several receiver processes on one host
may share it) and :class:`~vigil_exporter.store.redis.RedisStore` (``exporter.store_url:
redis://...``: receivers on several hosts). Both implement :class:`AlertStore` and pass the
same contract tests (``tests/exporter/test_store.py``).

Pieces that are the same for every backend, one module each (all re-exported here):

- :mod:`.records`: :class:`Incoming` / :class:`Accepted` / :class:`Claim` / ...: what goes in
  and comes out;
- :mod:`.contract`: the :class:`AlertStore` protocol;
- :mod:`.dedup`: :func:`identity` and :func:`is_redelivery`: the de-duplication rule;
- :mod:`.owners`: :func:`owner_id` and :func:`owner_is_dead`: who holds a claimed delivery;
- here: :func:`open_store`, which picks the backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from vigil.config import ExporterSettings
from vigil_exporter.store.contract import AlertStore
from vigil_exporter.store.dedup import Episode, identity, is_redelivery, next_episode
from vigil_exporter.store.owners import owner_id, owner_is_dead
from vigil_exporter.store.records import Accepted, Claim, DeadLetter, Incoming, StoreStats

__all__ = [
    "Accepted",
    "AlertStore",
    "Claim",
    "DeadLetter",
    "Episode",
    "Incoming",
    "StoreStats",
    "default_state_dir",
    "identity",
    "is_redelivery",
    "next_episode",
    "open_store",
    "owner_id",
    "owner_is_dead",
]


def default_state_dir() -> Path:
    """Where ``vigil serve`` keeps its store without ``exporter.state_dir``: XDG's state home."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "state")
    return Path(base) / "vigil"


def open_store(settings: ExporterSettings, state_dir: str | os.PathLike[str] | None = None
               ) -> AlertStore:
    """The store ``settings`` name: Redis for ``store_url``, else SQLite in the state folder.

    ``state_dir`` overrides ``settings.state_dir``; with neither, :func:`default_state_dir`.
    """
    if settings.store_url:
        from vigil_exporter.store.redis import RedisStore

        return RedisStore(settings.store_url, settings)
    from vigil_exporter.store.sqlite import SQLiteStore

    folder = Path(state_dir) if state_dir is not None else (
        Path(settings.state_dir) if settings.state_dir else default_state_dir())
    return SQLiteStore(folder, settings)
