"""Calling one handler, sync or async, and naming it.

:class:`HandlerRunner` is how both the manager's worker threads and the exporter's durable
delivery loop call a handler; :func:`handler_key` is the name deliveries are keyed by.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable

from vigil.monitoring.alerts.model import Alert, AlertHandler

__all__ = ["HandlerRunner", "handler_key", "handler_name"]


def handler_name(handler: AlertHandler) -> str:
    """The handler's ``__qualname__`` (its type's, for a callable object without one): the
    ``handler`` label value and the name in log lines."""
    name = getattr(handler, "__qualname__", None)
    return name if isinstance(name, str) else type(handler).__qualname__


def handler_key(handler: AlertHandler) -> str:
    """``module.qualname``: the handler's name where it must stay the same across processes
    and restarts (the webhook's durable store keys deliveries by it)."""
    module = getattr(handler, "__module__", None)
    if not isinstance(module, str):
        module = type(handler).__module__
    return f"{module}.{handler_name(handler)}"


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
