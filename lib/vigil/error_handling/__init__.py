"""The error-handling half of vigil: circuit breakers, retry, the recovery manager, handlers.

Every name the seed imports from ``app.core.error_handling`` is here::

    from vigil.error_handling import (CircuitBreaker, with_retry, error_recovery_manager,
                                      ErrorCategory, ErrorSeverity, FileProcessingErrorHandler,
                                      AgentExecutionErrorHandler, MemoryStorageErrorHandler)
"""

from typing import TYPE_CHECKING

from vigil._lazy import forwarding
from vigil.error_handling.breaker import (
    BreakerPolicy,
    BreakerStateMachine,
    CallOutcome,
    CallRejected,
    CircuitBreaker,
    CircuitState,
    FailureRateExceeded,
    SlowCallRateExceeded,
    StateTransition,
    all_breakers,
)
from vigil.error_handling.errors import CircuitOpenError
from vigil.error_handling.events import EventPublisher
from vigil.error_handling.handlers import (
    AgentExecutionErrorHandler,
    FileProcessingErrorHandler,
    MemoryStorageErrorHandler,
)
from vigil.error_handling.recovery import (
    DEFAULT_POLICY,
    CustomCategory,
    ErrorCategory,
    ErrorRecord,
    ErrorRecoveryManager,
    ErrorSeverity,
    RecoveryAction,
    RecoveryActionType,
    RecoveryPolicy,
    is_transient,
)
from vigil.error_handling.retry import (
    Attempt,
    Retrier,
    RetryDecision,
    RetryGaveUp,
    Retrying,
    RetryPolicy,
    RetryScheduled,
    RetrySucceeded,
    current_attempt,
    retry_events,
    retrying,
    wait_chain,
    wait_exponential,
    wait_fixed,
    wait_incrementing,
    wait_random,
    with_jitter,
    with_retry,
)

# The shared manager is built on first use, in its own module (see vigil._lazy).
if TYPE_CHECKING:
    from vigil.error_handling.recovery import error_recovery_manager
else:
    __getattr__ = forwarding(__name__, {
        "error_recovery_manager": "vigil.error_handling.recovery"})

__all__ = [
    "AgentExecutionErrorHandler",
    "Attempt",
    "BreakerPolicy",
    "BreakerStateMachine",
    "CallOutcome",
    "CallRejected",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "CustomCategory",
    "DEFAULT_POLICY",
    "ErrorCategory",
    "ErrorRecord",
    "ErrorRecoveryManager",
    "ErrorSeverity",
    "EventPublisher",
    "FailureRateExceeded",
    "FileProcessingErrorHandler",
    "MemoryStorageErrorHandler",
    "RecoveryAction",
    "RecoveryActionType",
    "RecoveryPolicy",
    "Retrier",
    "RetryDecision",
    "RetryGaveUp",
    "RetryPolicy",
    "RetryScheduled",
    "RetrySucceeded",
    "Retrying",
    "SlowCallRateExceeded",
    "StateTransition",
    "all_breakers",
    "current_attempt",
    "error_recovery_manager",
    "is_transient",
    "retry_events",
    "retrying",
    "wait_chain",
    "wait_exponential",
    "wait_fixed",
    "wait_incrementing",
    "wait_random",
    "with_jitter",
    "with_retry",
]
