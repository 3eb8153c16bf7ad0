"""The one logger protocol: what vigil's components need from the ``logger=`` they are given.

It is :class:`~vigil.monitoring.logs.StructuredLogger`'s own signature, narrowed to what
components call: ``level(message, metadata=None, *, exc_info=None)``. Inject a
``StructuredLogger`` (or :meth:`vigil.testing.LogCapture.logger`) or anything with these four
methods; components never call anything else on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Logger"]


class Logger(Protocol):
    """A logger vigil can write to (see the module docstring)."""

    def debug(self, message: str, metadata: Mapping[str, Any] | None = ..., *,
              exc_info: Any = ...) -> None: ...

    def info(self, message: str, metadata: Mapping[str, Any] | None = ..., *,
             exc_info: Any = ...) -> None: ...

    def warning(self, message: str, metadata: Mapping[str, Any] | None = ..., *,
                exc_info: Any = ...) -> None: ...

    def error(self, message: str, metadata: Mapping[str, Any] | None = ..., *,
              exc_info: Any = ...) -> None: ...
