"""Exceptions raised by vigil's error-handling half."""

from __future__ import annotations

__all__ = ["CircuitOpenError"]


class CircuitOpenError(Exception):
    """A circuit breaker rejected the call without running it.

    ``breaker`` is the breaker's name, ``state`` its state when it rejected (``"OPEN"``, or
    ``"HALF_OPEN"`` when all probe slots were taken), ``retry_after`` the seconds until it will
    let a probe through (0 when it is HALF_OPEN). ``with_retry`` never retries this error: the
    breaker is the authority on when to try again.
    """

    def __init__(self, breaker: str, state: str, retry_after: float) -> None:
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after
        super().__init__(
            f"circuit breaker {breaker!r} is {state}; next probe in {retry_after:.3f}s"
            if retry_after > 0 else f"circuit breaker {breaker!r} is {state}; no probe slot free")

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, str, float]]:
        # Keep the exception picklable (multiprocessing, executors) despite the custom __init__.
        return (type(self), (self.breaker, self.state, self.retry_after))
