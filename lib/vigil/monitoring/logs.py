"""STUB - being written by the lead. Stable signature:

StructuredLogger(component: str, *, registry=None, stream=None, level=None, buffer_size=None)
  .debug/.info/.warning/.error/.critical(message, metadata: dict | None = None,
                                          trace_id: str | None = None, span_id: str | None = None,
                                          exc_info: bool | BaseException | None = None)
  .get_recent_logs(count=100) -> list[dict]
"""

from __future__ import annotations

from typing import Any


class StructuredLogger:
    def __init__(self, component: str, **kwargs: Any) -> None:
        self.component = component

    def _log(self, level: str, message: str, metadata: dict[str, Any] | None = None,
             trace_id: str | None = None, span_id: str | None = None,
             exc_info: Any = None) -> None:
        pass

    def debug(self, message: str, **kw: Any) -> None:
        self._log("DEBUG", message, **kw)

    def info(self, message: str, **kw: Any) -> None:
        self._log("INFO", message, **kw)

    def warning(self, message: str, **kw: Any) -> None:
        self._log("WARNING", message, **kw)

    def error(self, message: str, **kw: Any) -> None:
        self._log("ERROR", message, **kw)

    def critical(self, message: str, **kw: Any) -> None:
        self._log("CRITICAL", message, **kw)
