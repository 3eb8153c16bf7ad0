"""Who holds a claimed delivery: :func:`owner_id` names this process (host, pid, start time)
and :func:`owner_is_dead` tells whether a process of this host that held one has gone."""

from __future__ import annotations

import os
import socket

import psutil

__all__ = ["owner_id", "owner_is_dead"]

_HOST = socket.gethostname()


def owner_id(pid: int | None = None) -> str:
    """``host:pid:start-time`` of this process: unique even when a pid is reused."""
    pid = os.getpid() if pid is None else pid
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = 0.0
    return f"{_HOST}:{pid}:{started:.3f}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that no longer runs (False: alive, or on
    another host, where only its lease can tell)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_text, started = parts
    if host != _HOST or not pid_text.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid_text)).create_time():.3f}" != started
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
