"""gunicorn server hooks for vigil: one import in ``gunicorn.conf.py``.

::

    # gunicorn.conf.py
    from vigil.gunicorn import child_exit, logconfig_dict, on_starting, when_ready

and run with ``PROMETHEUS_MULTIPROC_DIR`` pointing at a folder only this gunicorn uses (it
must be set before prometheus_client is imported: in the environment, not in the app)::

    PROMETHEUS_MULTIPROC_DIR=/run/myservice/metrics \\
        gunicorn -c gunicorn.conf.py -k uvicorn_worker.UvicornWorker -w 4 myservice:app

The hooks (gunicorn calls them by these names; see its "Server hooks" settings):

- :func:`on_starting` (master, at start): removes files of other processes left in
  ``PROMETHEUS_MULTIPROC_DIR`` by an earlier run (a stale worker's gauges would otherwise show
  as live), and warns when several workers run without multiprocess mode.
- :func:`when_ready` (master, before the first fork): with ``--preload`` the application was
  imported in the master, so its breakers wrote state series there; the master serves nothing,
  so its live gauges are removed and its resource sampler is handed to the workers.
- :func:`child_exit` (master, a worker exited): its live gauges (breaker states, in-progress
  calls, memory) are removed; its counters stay in the totals.
- ``logconfig_dict``: gunicorn's and uvicorn's own log lines as vigil JSON lines.

vigil's threads (alert handlers, the resource sampler) restart by themselves in each forked
worker (:mod:`vigil.forks`), so ``--preload`` needs nothing more. Nothing here imports
gunicorn: the hooks only use the arbiter and worker objects gunicorn passes.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from vigil.monitoring import metrics
from vigil.monitoring.logs import logging_config
from vigil.monitoring.multiprocess import MULTIPROCESS, mark_process_dead, multiprocess_dir

__all__ = ["child_exit", "logconfig_dict", "on_starting", "when_ready"]

logconfig_dict: dict[str, Any] = logging_config()
"""gunicorn's ``logconfig_dict`` setting: ``gunicorn.error``, ``gunicorn.access`` and uvicorn's
loggers write vigil JSON lines to stdout (:func:`vigil.monitoring.logs.logging_config`)."""


def on_starting(server: Any) -> None:
    """Master, at start: clear other processes' files from ``PROMETHEUS_MULTIPROC_DIR``."""
    if not MULTIPROCESS:
        if int(getattr(server.cfg, "workers", 1) or 1) > 1:
            server.log.warning(
                "vigil: %s workers without PROMETHEUS_MULTIPROC_DIR: each scrape of /metrics "
                "shows one worker's numbers; set it (to a folder only this server uses) in "
                "the environment gunicorn starts in", server.cfg.workers)
        return
    removed = remove_stale_files(keep_pid=os.getpid())
    if removed:
        server.log.info("vigil: removed %d metric files of earlier processes from %s",
                        removed, multiprocess_dir())


def when_ready(server: Any) -> None:
    """Master, before the first fork: the master exports nothing; its workers do."""
    del server
    metrics.performance_monitor.leave_monitoring_to_workers()
    mark_process_dead(os.getpid())


def child_exit(server: Any, worker: Any) -> None:
    """Master, after a worker exited: remove the worker's live gauges."""
    del server
    mark_process_dead(worker.pid)


def remove_stale_files(keep_pid: int, path: str | None = None) -> int:
    """Remove the multiprocess files of every pid but ``keep_pid``; returns how many.

    For the start of a server that owns the folder: the files of an earlier run's processes
    would add their counters to the new totals and show their gauges as live.
    """
    folder = path if path is not None else multiprocess_dir()
    if folder is None:
        return 0
    removed = 0
    for name in glob.glob(os.path.join(folder, "*.db")):
        pid = os.path.basename(name)[:-3].rpartition("_")[2]
        if pid != str(keep_pid):
            try:
                os.remove(name)
            except FileNotFoundError:
                continue
            removed += 1
    return removed
