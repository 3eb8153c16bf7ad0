"""The error recovery manager: classify a handled error, decide what to do, and report it.

The seed's API::

    action = error_recovery_manager.handle_error(
        error=exception, category=ErrorCategory.FILE_PROCESSING, severity=ErrorSeverity.HIGH,
        component="FileProcessor", operation="read_file", metadata={"file_path": "/path/to/file"})
    if action.action_type == "retry": ...
    elif action.action_type == "fallback": ...

**The decision is data.** :class:`RecoveryPolicy` answers in this order, first match wins:

1. an override, from the user (``RecoveryPolicy(overrides=...)``) or from config
   (``error_handling.recovery.policy_overrides: ["API_CALL.HIGH=fallback", "VECTOR_DB.*=retry"]``);
2. ``CRITICAL`` severity or the ``CONFIGURATION`` category -> ``abort`` (retrying cannot fix them);
   for a custom category (below), ``CRITICAL`` answers its row's CRITICAL action instead;
3. a fallback registered for the category (:meth:`ErrorRecoveryManager.register_fallback`) ->
   ``fallback``, with the callable on ``action.fallback``;
4. a transient error (network, connection, timeout; see :func:`is_transient`, or the caller's
   ``transient=`` when it knows the error's nature) -> ``retry``;
5. the category x severity table: :data:`DEFAULT_POLICY` below, plus a row per custom category.

=================  =========  =========  =========  ========
category           LOW        MEDIUM     HIGH       CRITICAL
=================  =========  =========  =========  ========
FILE_PROCESSING    skip       skip       fallback   abort
AGENT_EXECUTION    retry      retry      abort      abort
MEMORY_STORAGE     retry      retry      fallback   abort
VECTOR_DB          retry      retry      fallback   abort
API_CALL           retry      retry      retry      abort
CONFIGURATION      abort      abort      abort      abort
SYSTEM             skip       retry      abort      abort
=================  =========  =========  =========  ========

A ``retry`` action carries ``delay`` = ``error_handling.retry.default_initial_delay``.

**Your own categories.** The seven above are :class:`ErrorCategory` members; an application adds
its own, each with its row of the table (the actions for LOW, MEDIUM, HIGH, CRITICAL), by config
or by code::

    error_handling:
      recovery:
        categories: ["PAYMENTS=retry/retry/fallback/abort", "SEARCH=skip/retry/fallback/abort"]
        policy_overrides: ["PAYMENTS.HIGH=abort"]   # overrides may name them too

    # VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES=PAYMENTS=retry/retry/fallback/abort,SEARCH=...
    payments = error_recovery_manager.add_category("payments", ["retry", "retry", "fallback",
                                                               "abort"])
    error_recovery_manager.handle_error(err, "payments", "high", "Billing", "charge")

A custom category is a :class:`CustomCategory`, a ``str`` whose value is the lower-case name
(``"payments"``, the label value of the metrics, logs and alerts below) with ``.name`` upper-case
(``"PAYMENTS"``), like an :class:`ErrorCategory` member; wherever a category is taken it may be
given as either spelling, in any case. Only the seven built-ins and the categories configured or
added exist, so the ``category`` label stays a small set; any other name raises ``ValueError``
listing both. The rules above apply to custom categories as to built-in ones, with two
differences: the ``CONFIGURATION`` rule is the built-in category's only, and a ``CRITICAL`` error
answers the row's CRITICAL action (``abort`` in every built-in row, and what a custom row should
normally say too) before any fallback or transient rule, so that column means what it says.

**Every handled error is reported the same way:** ``vigil_errors_total{category,severity,
component}``, ``vigil_recovery_actions_total{category,action}``, one ERROR log line (with the
current trace id and the exception's stack), an alert at ``alert_min_severity`` (default HIGH) and
above, and a record in a bounded history read by :meth:`ErrorRecoveryManager.get_error_stats`.

Reporting never raises into the caller's ``except`` block, whatever it is given: the component,
operation and the error's message become text by :mod:`vigil.text`'s rule (a lone surrogate, as
in an ``os.fsdecode``-d file name, becomes U+FFFD; an error whose ``__str__`` raises is
``<unprintable TypeName>``) before they reach a label, the log line, the alert or the history.
"""

from typing import TYPE_CHECKING

from vigil._lazy import shared_objects
from vigil.error_handling.recovery.categories import (
    Category,
    CustomCategory,
    ErrorCategory,
    ErrorSeverity,
    RecoveryActionType,
)
from vigil.error_handling.recovery.events import ErrorHandled, ErrorRecord, NamedRecovery
from vigil.error_handling.recovery.manager import ErrorRecoveryManager, build_shared_manager
from vigil.error_handling.recovery.policy import (
    DEFAULT_POLICY,
    RecoveryAction,
    RecoveryPolicy,
    is_transient,
)

error_recovery_manager: ErrorRecoveryManager
"""The seed's process-wide manager; built on first use (see :mod:`vigil._lazy`), then a plain
global of this package: ``monkeypatch.setattr(recovery, "error_recovery_manager", ...)`` is
what ``vigil.error_recovery_manager`` and the seed's handlers answer."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"error_recovery_manager": build_shared_manager})

__all__ = [
    "Category",
    "CustomCategory",
    "DEFAULT_POLICY",
    "ErrorCategory",
    "ErrorHandled",
    "ErrorRecord",
    "ErrorRecoveryManager",
    "ErrorSeverity",
    "NamedRecovery",
    "RecoveryAction",
    "RecoveryActionType",
    "RecoveryPolicy",
    "error_recovery_manager",
    "is_transient",
]
