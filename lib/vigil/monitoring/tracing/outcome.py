"""How an entry ends when its body raised: the exception made a status and an error dict.

Every form (``trace_context``, each ``trace_execution`` wrapper) hands its exception, or
``None``, to :meth:`ExecutionTracer._end <vigil.monitoring.tracing.tracer.ExecutionTracer._end>`,
which asks :func:`outcome`; ``end_trace``'s ``error`` argument goes through :func:`error_info`.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["error_info", "outcome"]


def error_info(error: BaseException | str | None) -> dict[str, Any] | None:
    """``{"type", "message"}`` for an exception; a string error has ``type`` None."""
    if error is None:
        return None
    if not isinstance(error, BaseException):
        return {"type": None, "message": str(error)}
    try:
        message = str(error)
    except Exception:  # a broken __str__ must not break the traced code's error path
        message = f"<unprintable {type(error).__name__}>"
    return {"type": type(error).__name__, "message": message}


def outcome(exc: BaseException) -> tuple[str, dict[str, Any] | None]:
    """The status and error an entry ends with when its body raised ``exc``.

    A generator closed early by its consumer (``GeneratorExit``) did nothing wrong: a success.
    """
    if isinstance(exc, GeneratorExit):
        return "success", None
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", error_info(exc)
    return "error", error_info(exc)
