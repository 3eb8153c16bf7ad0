"""Re-arming vigil's per-process state in a forked child (gunicorn ``--preload``, multiprocessing).

``fork()`` copies a process with only the thread that called it: vigil's background threads
(alert handlers, the resource sampler) do not exist in the child, and a lock another thread
held at that moment stays held there forever. Objects that own threads or locks register
methods here; the methods run around every ``os.fork()`` of the process, in registration
order, held weakly (an object that is collected drops out):

- ``before``: in the parent, just before the fork (e.g. hold the lock a sampler publishes
  under, so that no sample is half-written into prometheus_client's files in the copy);
- ``after_in_parent``: in the parent, just after (release it);
- ``after_in_child``: in the child, before anything else runs: fresh locks, threads restarted,
  values re-published into the child's own multiprocess files.

A hook that raises is reported on stderr and does not stop the others (there is no logger
to trust half-way through a fork).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["at_fork"]

_Ref = Callable[[], Callable[[], Any] | None]
_Hooks = list[_Ref]
_before: _Hooks = []
_after_in_parent: _Hooks = []
_after_in_child: _Hooks = []
# Guards the lists only (the hooks run outside it); the child replaces it first, in case
# another thread of the parent held it at the fork.
_lock = threading.Lock()


def at_fork(*, before: Callable[[], Any] | None = None,
            after_in_parent: Callable[[], Any] | None = None,
            after_in_child: Callable[[], Any] | None = None) -> None:
    """Run these callables around every fork (see the module docs).

    Bound methods are held weakly (their object may still be collected); plain functions
    for the process's lifetime.
    """
    with _lock:
        for method, hooks in ((before, _before), (after_in_parent, _after_in_parent),
                              (after_in_child, _after_in_child)):
            if method is not None:
                hooks.append(_ref(method))


def _ref(method: Callable[[], Any]) -> _Ref:
    if hasattr(method, "__self__") and hasattr(method, "__func__"):
        return weakref.WeakMethod(method)
    return lambda: method


def _live(hooks: _Hooks) -> list[Callable[[], Any]]:
    """The methods whose owners are alive (call with ``_lock`` held); the rest drop out."""
    methods = []
    for ref in list(hooks):
        method = ref()
        if method is None:
            hooks.remove(ref)
        else:
            methods.append(method)
    return methods


def _run(methods: list[Callable[[], Any]]) -> None:
    for method in methods:
        try:
            method()
        except Exception:  # one broken hook must not leave the others undone
            sys.stderr.write(f"vigil: a fork hook failed in pid {os.getpid()}:\n"
                             f"{traceback.format_exc()}")


def _run_before() -> None:
    with _lock:
        methods = _live(_before)
    _run(methods[::-1])  # as os.register_at_fork orders its own "before" hooks


def _run_after_in_parent() -> None:
    with _lock:
        methods = _live(_after_in_parent)
    _run(methods)


def _run_after_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    with _lock:
        methods = _live(_after_in_child)
    _run(methods)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(before=_run_before, after_in_parent=_run_after_in_parent,
                        after_in_child=_run_after_in_child)
