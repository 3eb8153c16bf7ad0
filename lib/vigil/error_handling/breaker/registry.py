"""The live breakers: :func:`all_breakers` (the exporter's ``/api/breakers``), the serial
names of unnamed breakers, and their re-arming in a forked child.

Breakers are held weakly: one nobody references drops out. A breaker is listed from the moment
it is named (at construction when given ``name``, else on first use).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import TYPE_CHECKING

from vigil.forks import at_fork

if TYPE_CHECKING:
    from vigil.error_handling.breaker.driver import CircuitBreaker

__all__ = ["add", "all_breakers", "unnamed_name"]

_lock = threading.Lock()
_live: weakref.WeakValueDictionary[int, CircuitBreaker] = weakref.WeakValueDictionary()
_keys = itertools.count()  # insertion order: all_breakers() lists the oldest first
_unnamed = itertools.count(1)


def unnamed_name() -> str:
    """A fresh ``breaker-N`` for a breaker first used without a name."""
    return f"breaker-{next(_unnamed)}"


def add(breaker: CircuitBreaker) -> None:
    """List a breaker that was just named."""
    with _lock:
        _live[next(_keys)] = breaker


def all_breakers() -> list[CircuitBreaker]:
    """Every named breaker still alive, oldest first (for the exporter's ``/api/breakers``).

    Held weakly: a breaker nobody references drops out. Names need not be unique here.
    """
    with _lock:
        return list(_live.values())


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload) shows each breaker's state in its own files.

    prometheus_client gives a child fresh per-pid files, where the state gauge would read 0
    for every state until the breaker's next transition (and an alert on it could never
    fire); each breaker publishes its current state at once instead.
    """
    global _lock
    _lock = threading.Lock()
    for breaker in list(_live.values()):
        breaker._after_fork_in_child()


at_fork(after_in_child=_after_fork_in_child)
