"""vigil.error_handling.recovery: the decision table, overrides, reporting, breaker registry."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import ERROR_CATEGORIES, ERROR_SEVERITIES, RECOVERY_ACTIONS
from vigil.error_handling.recovery import (
    DEFAULT_POLICY,
    ErrorCategory,
    ErrorRecoveryManager,
    ErrorSeverity,
    RecoveryActionType,
    RecoveryPolicy,
    is_transient,
)
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import SpanContext, new_span_id, new_trace_id, use_span
from vigil.monitoring.logs import StructuredLogger
from vigil.testing import FakeClock


class Env:
    """A manager wired to its own registry, alert manager, log stream and clock."""

    def __init__(self, **kwargs: object) -> None:
        self.registry = CollectorRegistry()
        self.clock = FakeClock()
        self.alerts = AlertManager(registry=self.registry, clock=self.clock)
        self.stream = io.StringIO()
        self.manager = ErrorRecoveryManager(
            registry=self.registry, alert_manager=self.alerts, clock=self.clock,
            logger=StructuredLogger("vigil.recovery", stream=self.stream,
                                    registry=self.registry), **kwargs)  # type: ignore[arg-type]

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def env() -> Iterator[Env]:
    """A fresh manager; its alert workers are closed afterwards."""
    made = Env()
    yield made
    made.alerts.close()


def test_seed_example_decides_and_reports(env: Env) -> None:
    """The seed's handle_error call returns an action with action_type and a reason."""
    action = env.manager.handle_error(
        error=OSError("disk unreadable"), category=ErrorCategory.FILE_PROCESSING,
        severity=ErrorSeverity.HIGH, component="FileProcessor", operation="read_file",
        metadata={"file_path": "/path/to/file"})
    assert action.action_type == "fallback"
    assert "FILE_PROCESSING x HIGH" in action.reason


def test_enums_match_the_config_vocabulary() -> None:
    """Categories, severities and actions carry the names config overrides use."""
    assert tuple(c.name for c in ErrorCategory) == ERROR_CATEGORIES
    assert tuple(s.name for s in ErrorSeverity) == ERROR_SEVERITIES
    assert tuple(a.value for a in RecoveryActionType) == RECOVERY_ACTIONS


@pytest.mark.parametrize("category", list(ErrorCategory))
@pytest.mark.parametrize("severity", list(ErrorSeverity))
def test_default_table_applies_to_plain_errors(category: ErrorCategory,
                                               severity: ErrorSeverity) -> None:
    """A non-transient error with no fallback gets the table's action (critical: abort)."""
    action = RecoveryPolicy().decide(ValueError("x"), category, severity)
    expected = DEFAULT_POLICY[category][severity.rank]
    if severity is ErrorSeverity.CRITICAL or category is ErrorCategory.CONFIGURATION:
        expected = RecoveryActionType.ABORT
    assert action.action_type is expected


def test_transient_errors_are_retried_with_a_delay() -> None:
    """Connection and timeout errors answer retry with the configured initial delay."""
    policy = RecoveryPolicy(retry_delay=0.5)
    for error in (ConnectionResetError(), TimeoutError(), OSError("x")):
        action = policy.decide(error, ErrorCategory.FILE_PROCESSING, ErrorSeverity.LOW)
        if is_transient(error):
            assert (action.action_type, action.delay) == (RecoveryActionType.RETRY, 0.5)
        else:
            assert action.action_type is RecoveryActionType.SKIP
            assert action.delay is None


def test_transient_is_recognised_by_class_name() -> None:
    """Third-party timeout and connection classes count as transient by their names."""

    class ReadTimeout(Exception):
        pass

    class ServiceUnavailable(Exception):
        pass

    assert is_transient(ReadTimeout())
    assert is_transient(ServiceUnavailable())
    assert not is_transient(KeyError("k"))


def test_critical_and_configuration_abort_even_when_transient() -> None:
    """Critical severity and configuration errors abort whatever the exception."""
    policy = RecoveryPolicy()
    assert policy.decide(TimeoutError(), ErrorCategory.API_CALL,
                         ErrorSeverity.CRITICAL).action_type is RecoveryActionType.ABORT
    assert policy.decide(TimeoutError(), ErrorCategory.CONFIGURATION,
                         ErrorSeverity.LOW).action_type is RecoveryActionType.ABORT


def test_registered_fallback_wins_over_retry(env: Env) -> None:
    """A fallback registered for a category is returned on the action."""

    def in_memory_store() -> str:
        return "memory"

    env.manager.register_fallback(ErrorCategory.VECTOR_DB, in_memory_store)
    action = env.manager.handle_error(ConnectionError("down"), "VECTOR_DB", "medium", "Store", "q")
    assert action.action_type is RecoveryActionType.FALLBACK
    assert action.fallback is in_memory_store
    env.manager.unregister_fallback("vector_db")
    again = env.manager.handle_error(ConnectionError("down"), "VECTOR_DB", "medium", "Store", "q")
    assert again.action_type is RecoveryActionType.RETRY


def test_user_overrides_most_specific_first() -> None:
    """Overrides beat every rule; an exact key beats a wildcard."""
    policy = RecoveryPolicy(overrides={
        (ErrorCategory.API_CALL, None): RecoveryActionType.SKIP,
        (ErrorCategory.API_CALL, ErrorSeverity.CRITICAL): RecoveryActionType.FALLBACK,
    })
    assert policy.decide(TimeoutError(), ErrorCategory.API_CALL,
                         ErrorSeverity.LOW).action_type is RecoveryActionType.SKIP
    crit = policy.decide(TimeoutError(), ErrorCategory.API_CALL, ErrorSeverity.CRITICAL)
    assert crit.action_type is RecoveryActionType.FALLBACK
    assert "override for API_CALL.CRITICAL" in crit.reason


def test_config_overrides_apply_to_the_shared_manager() -> None:
    """policy_overrides in config reach error_recovery_manager through configure()."""
    from vigil.error_handling.recovery import error_recovery_manager

    vigil.configure({"error_handling": {"recovery": {"policy_overrides": ["SYSTEM.*=skip"]}}})
    assert error_recovery_manager.policy.decide(
        KeyError(), ErrorCategory.SYSTEM, ErrorSeverity.HIGH).action_type is RecoveryActionType.SKIP


def test_bad_config_override_names_the_entry() -> None:
    """An override with an unknown action is a ConfigError naming the key and entry."""
    expected = r"error_handling\.recovery\.policy_overrides: got 'API_CALL\.LOW=nap'"
    with pytest.raises(vigil.ConfigError, match=expected):
        vigil.configure({"error_handling": {"recovery": {
            "policy_overrides": ["API_CALL.LOW=nap"]}}})


def test_unknown_category_or_severity_is_a_clear_error(env: Env) -> None:
    """A category or severity outside the enums raises ValueError listing the valid ones."""
    with pytest.raises(ValueError, match="FILE_PROCESSING, AGENT_EXECUTION"):
        env.manager.handle_error(KeyError(), "DISK", "low", "c", "o")
    with pytest.raises(ValueError, match="LOW, MEDIUM, HIGH, CRITICAL"):
        env.manager.handle_error(KeyError(), "SYSTEM", "urgent", "c", "o")


def test_each_error_is_counted_logged_and_kept(env: Env) -> None:
    """Metrics by category/severity/component and action; one ERROR line with the trace id."""
    span = SpanContext(new_trace_id(), new_span_id())
    with use_span(span):
        try:
            raise ConnectionError("refused")
        except ConnectionError as err:
            env.manager.handle_error(err, ErrorCategory.API_CALL, ErrorSeverity.MEDIUM,
                                     "EmbeddingClient", "embed", {"model": "m", "api_key": "s"})
    reg = env.registry
    assert reg.get_sample_value("vigil_errors_total", {
        "category": "api_call", "severity": "medium", "component": "EmbeddingClient"}) == 1
    assert reg.get_sample_value("vigil_recovery_actions_total",
                                {"category": "api_call", "action": "retry"}) == 1
    (line,) = env.lines()
    assert line["level"] == "ERROR"
    assert line["trace_id"] == span.trace_id
    assert line["exception"]["type"] == "ConnectionError"  # type: ignore[index]
    assert line["metadata"]["api_key"] == "[REDACTED]"  # type: ignore[index]
    assert line["metadata"]["action"] == "retry"  # type: ignore[index]
    (record,) = env.manager.get_recent_errors()
    assert (record.trace_id, record.error_type, record.action) == (
        span.trace_id, "ConnectionError", RecoveryActionType.RETRY)


def test_alerts_from_high_severity_only(env: Env) -> None:
    """HIGH and CRITICAL errors raise an alert; LOW and MEDIUM do not."""
    env.manager.handle_error(KeyError("a"), "SYSTEM", "low", "Svc", "op1")
    env.manager.handle_error(KeyError("b"), "SYSTEM", "medium", "Svc", "op2")
    env.manager.handle_error(KeyError("c"), "SYSTEM", "high", "Svc", "op3")
    env.manager.handle_error(KeyError("d"), "SYSTEM", "critical", "Svc", "op4")
    alerts = env.alerts.get_recent_alerts(10)
    assert sorted(a.severity for a in alerts) == ["critical", "high"]
    assert {a.labels["operation"] for a in alerts} == {"op3", "op4"}


def test_alert_threshold_is_configurable() -> None:
    """alert_min_severity=LOW alerts on every handled error."""
    made = Env(alert_min_severity="low")
    try:
        made.manager.handle_error(KeyError("a"), "SYSTEM", "low", "Svc", "op")
        assert [a.severity for a in made.alerts.get_recent_alerts(5)] == ["low"]
    finally:
        made.alerts.close()


def test_history_is_bounded_and_stats_count_it() -> None:
    """The history keeps history_size records; stats count the kept ones plus a lifetime total."""
    made = Env(history_size=3)
    try:
        for i in range(5):
            made.manager.handle_error(KeyError(str(i)), "FILE_PROCESSING", "low", "F", "read")
        made.manager.handle_error(TimeoutError(), "API_CALL", "medium", "Api", "call")
        stats = made.manager.get_error_stats()
        assert stats["total"] == 6
        assert stats["retained"] == 3
        assert stats["by_category"] == {"file_processing": 2, "api_call": 1}
        assert stats["by_action"] == {"skip": 2, "retry": 1}
        assert [r.error_type for r in made.manager.get_recent_errors(2)] == ["TimeoutError",
                                                                             "KeyError"]
    finally:
        made.alerts.close()


def test_get_circuit_breaker_is_one_per_name_under_threads(env: Env) -> None:
    """16 threads asking for one name at once all get the same breaker."""
    barrier = threading.Barrier(16)
    found: list[object] = []

    def ask() -> None:
        barrier.wait()
        found.append(env.manager.get_circuit_breaker("my_service", failure_threshold=2))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in found}) == 1
    breaker = env.manager.get_circuit_breaker("my_service")
    assert breaker is found[0]
    assert env.manager.circuit_breakers() == {"my_service": breaker}


def test_troubleshooting_reset_example(env: Env) -> None:
    """The seed's 'Circuit Breaker Stuck Open' steps close a breaker from the registry."""
    cb = env.manager.get_circuit_breaker("my_service", failure_threshold=1)
    with pytest.raises(RuntimeError):
        cb.call(_raise_runtime)
    assert cb.state == "OPEN"
    cb.failure_count = 0
    cb.state = "CLOSED"
    assert cb.state == "CLOSED"
    assert cb.call(lambda: 7) == 7


def _raise_runtime() -> None:
    raise RuntimeError("down")


def test_caller_can_state_the_errors_nature() -> None:
    """transient=True retries a plain error; transient=False stops a timeout from retrying."""
    policy = RecoveryPolicy()
    assert policy.decide(KeyError(), ErrorCategory.SYSTEM, ErrorSeverity.LOW,
                         transient=True).action_type is RecoveryActionType.RETRY
    assert policy.decide(TimeoutError(), ErrorCategory.SYSTEM, ErrorSeverity.LOW,
                         transient=False).action_type is RecoveryActionType.SKIP


def test_bad_history_size_is_a_config_error() -> None:
    """history_size=0 is rejected with the key and the bound."""
    with pytest.raises(vigil.ConfigError, match="history_size: got 0; must be a number >= 1"):
        ErrorRecoveryManager(registry=CollectorRegistry(), history_size=0)
