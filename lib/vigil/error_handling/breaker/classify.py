"""What counts as a failure: ``expected_exception`` for exceptions, ``failure_on_result`` for
returned values. Validated on construction; a predicate that raises is counted as a failure
(erring on the side of protecting the service) and reported as a :class:`PredicateFailed` event
(vigil.reporting logs it), never hides the call's own outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, cast

from vigil.config import ConfigError
from vigil.error_handling.breaker.events import PredicateFailed

__all__ = ["ExpectedException", "FailureRule", "describe"]

ExpectedException: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)

_ALLOWED = ("must be an Exception subclass, a non-empty tuple of them, or a predicate taking "
            "the exception and returning a bool")


def describe(value: object) -> str:
    """A class, function or tuple of them as text (``ValueError, KeyError``)."""
    if isinstance(value, tuple):
        return ", ".join(describe(v) for v in value)
    return str(getattr(value, "__qualname__", None) or repr(value))


class FailureRule:
    """Classifies a finished call: :meth:`is_failure` for an exception it raised,
    :meth:`is_bad_result` for a value it returned (only when ``on_result`` is set)."""

    __slots__ = ("_predicate", "_report", "_types", "on_result")

    def __init__(self, expected_exception: object, failure_on_result: object,
                 report: Callable[[PredicateFailed], object]) -> None:
        self._types, self._predicate = _expected_rule(expected_exception)
        self.on_result: Callable[[Any], object] | None
        if failure_on_result is None:
            self.on_result = None
        elif callable(failure_on_result):
            self.on_result = failure_on_result
        else:
            raise ConfigError("failure_on_result", failure_on_result,
                              "must be a predicate taking the returned value and returning a "
                              "bool (or None)")
        self._report = report  # called inside the except, so a log line gets the traceback

    def is_failure(self, exc: BaseException, breaker: str) -> bool:
        """Whether ``exc`` counts as a failure. Only ``Exception``s can (interrupts and
        cancellations say nothing about the service)."""
        if not isinstance(exc, Exception):
            return False
        types = self._types
        if types is not None:
            return isinstance(exc, types)
        predicate = self._predicate
        if predicate is None:  # not reached: _expected_rule sets one of the two
            return True
        try:
            return bool(predicate(exc))
        except Exception:
            # A broken predicate must not hide the call's own exception; counting the call as
            # a failure errs on the side of protecting the service.
            self._report(PredicateFailed(breaker, "expected_exception",
                                         type(exc).__qualname__))
            return True

    def is_bad_result(self, result: object, breaker: str) -> bool:
        """Whether ``failure_on_result(result)`` refuses the value (a raising predicate
        counts as refusing it, and is logged)."""
        predicate = self.on_result
        if predicate is None:
            return False
        try:
            return bool(predicate(result))
        except Exception:
            self._report(PredicateFailed(breaker, "failure_on_result",
                                         type(result).__qualname__))
            return True

    def describe(self) -> dict[str, str | None]:
        """The rule's settings as text, for ``snapshot()["config"]``."""
        return {"expected_exception": describe(self._types or self._predicate),
                "failure_on_result": describe(self.on_result)
                if self.on_result is not None else None}


def _expected_rule(expected: object) -> tuple[tuple[type[Exception], ...] | None,
                                               Callable[[BaseException], bool] | None]:
    """``expected_exception`` as (classes, None) or (None, predicate); ConfigError otherwise."""
    if isinstance(expected, type):
        if not issubclass(expected, Exception):
            raise ConfigError("expected_exception", expected,
                              _ALLOWED + " (KeyboardInterrupt, CancelledError and other "
                              "non-Exception errors are always ignored)")
        return (expected,), None
    if isinstance(expected, tuple):
        if not expected or not all(isinstance(t, type) and issubclass(t, Exception)
                                   for t in expected):
            raise ConfigError("expected_exception", expected, _ALLOWED)
        return expected, None
    if callable(expected):
        return None, cast(Callable[[BaseException], bool], expected)
    raise ConfigError("expected_exception", expected, _ALLOWED)
