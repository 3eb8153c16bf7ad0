"""A logging call's exception: which one ``exc_info`` names, and the line's ``exception`` field.

Also :func:`described`, the ``Type: message`` text an error gets in ``metadata.log_error``.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

from vigil.monitoring.logs.redaction import mask_credentials
from vigil.text import safe_text, valid_text

__all__ = ["ExcInfo", "described", "exc_info_of", "exception_fields"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def exc_info_of(value: object) -> ExcInfo | None:
    """The exception a logging call's ``exc_info`` names, or None (also for what is not one)."""
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple):
        if len(value) == 3 and isinstance(value[1], BaseException):
            exc = value[1]
            tb = value[2] if isinstance(value[2], TracebackType) else exc.__traceback__
            return type(exc), exc, tb
        return None
    current = sys.exc_info()  # True (or anything else truthy): the one being handled
    return current if current[1] is not None else None


def exception_fields(exc_info: ExcInfo) -> dict[str, str]:
    """The line's ``exception``: ``type``, ``message`` and ``stack``, credentials masked."""
    exc_type, exc, tb = exc_info
    message = safe_text(exc)
    name = getattr(exc_type, "__qualname__", None)
    name = safe_text(name if isinstance(name, str) else type(exc).__qualname__)
    try:  # a __str__ that raises is written as "<exception str() failed>" by traceback
        stack = "".join(traceback.format_exception(exc_type, exc, tb))
    except Exception:
        stack = f"{name}: {message}"
    return {"type": name, "message": mask_credentials(message),
            "stack": mask_credentials(stack)}


def described(err: BaseException) -> str:
    """``Type: message`` of an error, for a line's ``log_error``."""
    return f"{valid_text(type(err).__name__)}: {safe_text(err)}"
