"""Process-wide objects built on first use, so that ``import vigil`` is inert.

vigil's shared objects (``alert_manager``, ``performance_monitor``, ``execution_tracer``,
``error_recovery_manager``) read the configuration and register metric families when built.
Building them at import would make ``import vigil`` read ``VIGIL_*`` (and raise on a bad one) and
put vigil's families on the application's registry before it used anything. So each defining
module declares the name (``alert_manager: AlertManager``, for type checkers) and hands a
factory to :func:`shared_objects`, whose result is the module's ``__getattr__`` (PEP 562): the
first ``module.alert_manager`` or ``from module import alert_manager`` builds the object, under
a lock, and stores it as a plain module global, so later reads cost what any global costs and
``monkeypatch.setattr(module, "alert_manager", ...)`` works as before.

Re-exporting packages (``vigil``, ``vigil.monitoring``, ``vigil.error_handling``) use
:func:`forwarding`: their name is looked up in the defining module on every access, never
copied, so replacing the object there is seen everywhere. That look-up goes through the
package's ``__getattr__`` (~0.4 µs a read, a plain global ~20 ns): in a hot loop bind the
object once (``from vigil import performance_monitor``), as the seed's examples do.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["forwarding", "shared", "shared_objects"]

# One lock for every shared object: a factory may need another shared object (the recovery
# manager's alerts go to alert_manager), so it is re-entrant. Replaced in a forked child, where
# a thread of the parent may have held it.
_lock = threading.RLock()


def _fresh_lock() -> None:
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock)


def shared_objects(module_name: str, factories: Mapping[str, Callable[[], object]]
                   ) -> Callable[[str], Any]:
    """The ``__getattr__`` for ``module_name`` that builds each of ``factories`` once."""
    table = dict(factories)

    def __getattr__(name: str) -> Any:
        factory = table.get(name)
        if factory is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        namespace = sys.modules[module_name].__dict__
        with _lock:
            if name not in namespace:  # another thread may have built it meanwhile
                namespace[name] = factory()
            return namespace[name]

    return __getattr__


def shared(module_name: str, name: str) -> Any:
    """The shared object ``name`` of ``module_name``, built if this is its first use: for code
    inside the defining module, where a global name does not go through ``__getattr__``."""
    return getattr(sys.modules[module_name], name)


def forwarding(module_name: str, homes: Mapping[str, str], *,
               moved: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """The ``__getattr__`` for a package re-exporting ``homes`` (name -> defining module).

    ``moved`` (name -> where it is now) turns the AttributeError for a name that used to be
    here into one saying where to find it.
    """
    table = dict(homes)
    hints = dict(moved or {})
    modules = sys.modules

    def __getattr__(name: str) -> Any:
        home = table.get(name)
        if home is None:
            hint = f": {hints[name]}" if name in hints else ""
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}{hint}")
        # `vigil.alert_manager` may be read per call in user code: once the defining module
        # is imported, a dict lookup finds it (import_module costs ~0.7 µs each time).
        module = modules.get(home)
        if module is None:
            module = importlib.import_module(home)
        return getattr(module, name)

    return __getattr__
