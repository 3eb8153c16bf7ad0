"""vigil's own subscribers: the metrics, log lines and alerts of breakers, retries and the
recovery manager, attached from outside the components that publish.

A component (``CircuitBreaker``, ``Retrier``, ``ErrorRecoveryManager``) decides and publishes;
when it is named it announces itself on its class's :class:`vigil.events.Hook`. Importing this
package (``import vigil`` does) attaches one function per hook, which builds the component's
reporter and subscribes it. The component's ``registry=``, ``logger=`` and ``alert_manager=``
reach the reporter through the announcement (:class:`vigil.events.ReportTo`); the component
never uses them itself.

Attaching is all an import does here: no configuration read, no metric registered, no thread.
:func:`uninstall` takes vigil's reporting off the hooks (for an application that reports
through its own subscribers instead; components built meanwhile report nothing), :func:`install`
puts it back. This package sits above vigil.error_handling and vigil.monitoring, the one place
that knows both (see tests/unit/test_layering.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vigil.error_handling.breaker.driver import CircuitBreaker
from vigil.error_handling.recovery import ErrorRecoveryManager
from vigil.error_handling.retry.retrier import Retrier
from vigil.events import set_failure_sink
from vigil.reporting.breakers import attach_breaker
from vigil.reporting.failures import report_failure
from vigil.reporting.recovery import attach_recovery
from vigil.reporting.retries import attach_retry

__all__ = ["attach_breaker", "attach_recovery", "attach_retry", "install", "uninstall"]

_lock = threading.Lock()
_detach: list[Callable[[], None]] = []


def install() -> None:
    """Attach vigil's metrics, log lines and alerts to the hooks (done on import; idempotent)."""
    with _lock:
        if _detach:
            return
        set_failure_sink(report_failure)
        _detach.extend([CircuitBreaker.named.attach(attach_breaker),
                        Retrier.named.attach(attach_retry),
                        ErrorRecoveryManager.named.attach(attach_recovery)])


def uninstall() -> None:
    """Detach them: components built from now on report nothing (the ones built before keep
    their reporters); failed deliveries go to stdlib logging."""
    with _lock:
        while _detach:
            _detach.pop()()
        set_failure_sink(None)


install()
