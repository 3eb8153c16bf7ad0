"""vigil.gunicorn: the server hooks, called as gunicorn calls them.

The arbiter and worker here are stand-ins with the two attributes the hooks read (``cfg``,
``log``; ``pid``); tests/production/test_gunicorn.py runs the same hooks in a real gunicorn.
"""

from __future__ import annotations

import logging
import logging.config
from pathlib import Path
from types import SimpleNamespace

import pytest

from vigil import gunicorn


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


def test_child_exit_removes_the_workers_live_gauges_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """child_exit drops a dead worker's live-gauge files and keeps its counters."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _touch(tmp_path, "counter_41.db", "histogram_41.db", "gauge_liveall_41.db",
           "gauge_livesum_41.db", "gauge_liveall_42.db")
    gunicorn.child_exit(SimpleNamespace(), SimpleNamespace(pid=41))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_41.db", "gauge_liveall_42.db", "histogram_41.db"]


def test_stale_files_of_other_processes_are_removed(tmp_path: Path) -> None:
    """remove_stale_files keeps only the given pid's files (an earlier run's go)."""
    _touch(tmp_path, "counter_7.db", "gauge_livesum_7.db", "counter_8.db", "gauge_livemin_9.db",
           "notes.txt")
    assert gunicorn.remove_stale_files(keep_pid=7, path=str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_7.db", "gauge_livesum_7.db", "notes.txt"]


def test_on_starting_warns_about_many_workers_without_multiprocess_mode(
        caplog: pytest.LogCaptureFixture) -> None:
    """Several workers and no PROMETHEUS_MULTIPROC_DIR: the master says /metrics shows one."""
    server = SimpleNamespace(cfg=SimpleNamespace(workers=4), log=logging.getLogger("t.gunicorn"))
    with caplog.at_level(logging.WARNING, "t.gunicorn"):
        gunicorn.on_starting(server)
    assert "4 workers without PROMETHEUS_MULTIPROC_DIR" in caplog.text


def test_logconfig_dict_is_a_valid_dict_config() -> None:
    """logconfig_dict is accepted by logging.config.dictConfig and names gunicorn's loggers."""
    names = ["", *gunicorn.logconfig_dict["loggers"]]
    assert {"gunicorn.error", "gunicorn.access"} <= set(names)
    saved = [(logging.getLogger(n), logging.getLogger(n).handlers[:], logging.getLogger(n).level,
              logging.getLogger(n).propagate) for n in names]
    try:
        logging.config.dictConfig(gunicorn.logconfig_dict)
        handler = logging.getLogger("gunicorn.error").handlers[0]
        assert type(handler).__name__ == "JsonLineHandler"
    finally:  # dictConfig changed process-wide loggers: put them back for the next tests
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
