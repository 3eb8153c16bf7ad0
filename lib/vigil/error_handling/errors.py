"""Exceptions raised by vigil's error-handling half."""

from __future__ import annotations

import math

__all__ = ["CircuitOpenError"]


class CircuitOpenError(Exception):
    """A circuit breaker rejected the call without running it.

    ``breaker`` is the breaker's name, ``state`` its state when it rejected (``"OPEN"``,
    ``"HALF_OPEN"`` when all probe slots were taken, or ``"FORCED_OPEN"``), ``retry_after`` the
    seconds until it will let a probe through (0 when it is HALF_OPEN, infinite when FORCED_OPEN:
    no probe until someone moves it out). ``with_retry`` never retries this error: the breaker
    is the authority on when to try again.
    """

    def __init__(self, breaker: str, state: str, retry_after: float) -> None:
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after
        if math.isinf(retry_after):
            message = f"circuit breaker {breaker!r} is {state}; no probe until it is moved out"
        elif retry_after > 0:
            message = f"circuit breaker {breaker!r} is {state}; next probe in {retry_after:.3f}s"
        else:
            message = f"circuit breaker {breaker!r} is {state}; no probe slot free"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[str, str, float]]:
        # Keep the exception picklable (multiprocessing, executors) despite the custom __init__.
        return (type(self), (self.breaker, self.state, self.retry_after))
