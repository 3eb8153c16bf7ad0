"""vigil.error_handling.recovery: the decision table, overrides, reporting, breaker registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import vigil
from vigil.config import ERROR_CATEGORIES, ERROR_SEVERITIES, RECOVERY_ACTIONS, load_config
from vigil.error_handling.recovery import (
    DEFAULT_POLICY,
    CustomCategory,
    ErrorCategory,
    ErrorRecoveryManager,
    ErrorSeverity,
    RecoveryActionType,
    RecoveryPolicy,
    is_transient,
)
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.context import SpanContext, new_span_id, new_trace_id, use_span
from vigil.testing import FakeClock, LogCapture, MetricReader


class Env:
    """A manager wired to its own registry, alert manager, log capture and clock
    (vigil.testing's pieces)."""

    def __init__(self, **kwargs: object) -> None:
        self.registry = CollectorRegistry()
        self.metrics = MetricReader(self.registry)
        self.clock = FakeClock()
        self.alerts = AlertManager(registry=self.registry, clock=self.clock)
        self.logs = LogCapture()
        self.manager = ErrorRecoveryManager(
            registry=self.registry, alert_manager=self.alerts, clock=self.clock,
            logger=self.logs.logger("vigil.recovery", registry=self.registry),
            **kwargs)  # type: ignore[arg-type]

    def lines(self) -> list[dict[str, object]]:
        return self.logs.lines()


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
    with pytest.raises(ValueError,
                       match=r"invalid severity .urgent.; expected one of: low, medium, high, "):
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
    assert env.metrics.value("vigil_errors_total", category="api_call", severity="medium",
                             component="EmbeddingClient") == 1
    assert env.metrics.value("vigil_recovery_actions_total", category="api_call",
                             action="retry") == 1
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


# --- custom categories --------------------------------------------------------------------

PAYMENTS_ROW = "PAYMENTS=retry/retry/fallback/abort"
SEARCH_ROW = "SEARCH=skip/retry/fallback/abort"
_R, _F, _S, _A = (RecoveryActionType.RETRY, RecoveryActionType.FALLBACK,
                  RecoveryActionType.SKIP, RecoveryActionType.ABORT)


def _config_policy(*categories: str, overrides: tuple[str, ...] = ()) -> RecoveryPolicy:
    return RecoveryPolicy.from_config(load_config(overrides={"error_handling": {"recovery": {
        "categories": list(categories), "policy_overrides": list(overrides)}}}, environ={}))


def test_custom_category_is_a_str_with_name_and_value() -> None:
    """CustomCategory is its lower-case value as a str, with .name upper-case, like the enum."""
    payments = CustomCategory("Payments")
    assert (payments, str(payments), f"{payments}") == ("payments",) * 3
    assert (payments.name, payments.value) == ("PAYMENTS", "payments")
    assert type(payments.value) is str
    assert json.dumps({"c": payments}) == '{"c": "payments"}'
    assert payments == CustomCategory("PAYMENTS")
    assert hash(payments) == hash("payments")
    assert repr(payments) == "CustomCategory('payments')"


def test_categories_from_a_config_mapping_reach_the_shared_manager() -> None:
    """categories in a configure() mapping give error_recovery_manager their rows."""
    from vigil.error_handling.recovery import error_recovery_manager

    vigil.configure(overrides={"error_handling": {"recovery": {"categories": [PAYMENTS_ROW]}}})
    policy = error_recovery_manager.policy
    assert [c.name for c in policy.custom_categories] == ["PAYMENTS"]
    action = policy.decide(KeyError(), "payments", "high")
    assert (action.action_type, action.category) == (_F, CustomCategory("payments"))


def test_categories_from_the_environment_with_two_entries() -> None:
    """VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES with two comma-separated entries adds both."""
    config = load_config(environ={
        "VIGIL_ERROR_HANDLING_RECOVERY_CATEGORIES": f"{PAYMENTS_ROW},{SEARCH_ROW}"})
    policy = RecoveryPolicy.from_config(config)
    assert policy.custom_categories == (CustomCategory("payments"), CustomCategory("search"))
    assert policy.table[CustomCategory("search")] == (_S, _R, _F, _A)
    assert policy.decide(KeyError(), "SEARCH", "low").action_type is _S


def test_add_category_by_api_makes_handle_error_accept_it(env: Env) -> None:
    """The issue's call, handle_error(err, "payments", "high", ...), works once it is added."""
    with pytest.raises(ValueError, match="'payments' is not one of"):
        env.manager.handle_error(KeyError(), "payments", "high", "Billing", "charge")
    added = env.manager.add_category("payments", ["retry", "retry", "fallback", "abort"])
    assert added == CustomCategory("payments")
    action = env.manager.handle_error(KeyError("declined"), "payments", "high", "Billing",
                                      "charge")
    assert action.action_type is _F
    assert action.category is added
    assert action.reason == "policy table: PAYMENTS x HIGH"
    (record,) = env.manager.get_recent_errors()
    assert record.category == "payments"
    assert record.to_dict()["category"] == "payments"


@pytest.mark.parametrize("severity", list(ErrorSeverity))
def test_decisions_per_severity_follow_the_row(severity: ErrorSeverity) -> None:
    """A plain error of a custom category gets its row's action at each severity, CRITICAL too."""
    row = (_S, _R, _F, _R)
    policy = RecoveryPolicy().with_category("search", row)
    action = policy.decide(KeyError(), CustomCategory("search"), severity)
    assert action.action_type is row[severity.rank]
    assert action.delay == (1.0 if action.action_type is _R else None)


def test_critical_answers_the_custom_rows_column_before_fallback_and_transient() -> None:
    """CRITICAL takes the custom row's CRITICAL action even for a transient error or a fallback."""
    policy = RecoveryPolicy().with_category("payments", "retry/retry/fallback/abort")
    for error in (TimeoutError(), KeyError()):
        action = policy.decide(error, "payments", "critical", lambda: None)
        assert (action.action_type, action.fallback) == (_A, None)
    # Below CRITICAL the other rules come first, as for the built-in categories.
    assert policy.decide(TimeoutError(), "payments", "high").action_type is _R


def test_with_category_is_pure_and_replaces_a_row() -> None:
    """with_category returns a new policy; adding the name again replaces its row."""
    base = RecoveryPolicy()
    one = base.with_category("payments", [_R, _R, _F, _A])
    two = one.with_category("PAYMENTS", ["skip", "skip", "skip", "abort"])
    assert base.custom_categories == ()
    assert one.table[CustomCategory("payments")] == (_R, _R, _F, _A)
    assert two.table[CustomCategory("payments")] == (_S, _S, _S, _A)
    assert two.custom_categories == (CustomCategory("payments"),)


def test_add_category_again_replaces_the_row(env: Env) -> None:
    """Re-adding a name through the manager replaces its row rather than adding a second."""
    env.manager.add_category("payments", "retry/retry/fallback/abort")
    env.manager.add_category("Payments", "skip/skip/skip/abort")
    assert env.manager.policy.custom_categories == (CustomCategory("payments"),)
    assert env.manager.handle_error(KeyError(), "payments", "high", "B", "c").action_type is _S


def test_overrides_apply_to_a_custom_category() -> None:
    """policy_overrides may name a configured category; code overrides may key one too."""
    policy = _config_policy(PAYMENTS_ROW, overrides=("payments.HIGH=skip", "PAYMENTS.*=retry"))
    high = policy.decide(KeyError(), "payments", "high")
    assert (high.action_type, high.reason) == (_S, "override for PAYMENTS.HIGH")
    assert policy.decide(KeyError(), "payments", "critical").action_type is _R
    coded = RecoveryPolicy(overrides={(CustomCategory("search"), None): _A}).with_category(
        "search", "skip/skip/skip/abort")
    assert coded.decide(KeyError(), "search", "low").action_type is _A


def test_fallbacks_on_a_custom_category(env: Env) -> None:
    """register/has/unregister_fallback take a custom category by name or value, any case."""

    def cached_quote() -> str:
        return "cached"

    env.manager.add_category("payments", "retry/retry/abort/abort")
    assert not env.manager.has_fallback("payments")
    env.manager.register_fallback("PAYMENTS", cached_quote)
    assert env.manager.has_fallback("Payments")
    assert env.manager.has_fallback(CustomCategory("payments"))
    action = env.manager.handle_error(ConnectionError(), "payments", "high", "Billing", "quote")
    assert (action.action_type, action.fallback) == (_F, cached_quote)
    env.manager.unregister_fallback(CustomCategory("payments"))
    assert not env.manager.has_fallback("payments")
    with pytest.raises(ValueError, match="'refunds' is not one of"):
        env.manager.register_fallback("refunds", cached_quote)


def test_custom_category_label_value_in_stats_metrics_logs_and_alerts(env: Env) -> None:
    """The lower-case value is the category label of metrics, log lines, alerts and stats."""
    env.manager.add_category("PAYMENTS", "retry/retry/fallback/abort")
    env.manager.handle_error(KeyError("a"), "PAYMENTS", "low", "Billing", "charge")
    env.manager.handle_error(KeyError("b"), "payments", "high", "Billing", "charge")
    assert env.manager.get_error_stats()["by_category"] == {"payments": 2}
    assert env.metrics.value("vigil_errors_total", category="payments", severity="high",
                             component="Billing") == 1
    assert env.metrics.value("vigil_recovery_actions_total", category="payments",
                             action="retry") == 1
    assert env.metrics.value("vigil_recovery_actions_total", category="payments",
                             action="fallback") == 1
    assert [line["metadata"]["category"] for line in env.lines()] == [  # type: ignore[index]
        "payments", "payments"]
    (alert,) = env.alerts.get_recent_alerts(5)
    assert alert.labels["category"] == "payments"


def test_unknown_category_message_lists_built_in_and_custom(env: Env) -> None:
    """An unknown category's ValueError names the seven built-ins and the custom ones."""
    env.manager.add_category("payments", "retry/retry/fallback/abort")
    env.manager.add_category("search", "skip/retry/fallback/abort")
    with pytest.raises(ValueError, match=r"'DISK' is not one of the built-in FILE_PROCESSING, "
                                         r"AGENT_EXECUTION, .*, SYSTEM; custom: PAYMENTS, "
                                         r"SEARCH$"):
        env.manager.handle_error(KeyError(), "DISK", "low", "c", "o")
    with pytest.raises(ValueError, match="custom: PAYMENTS, SEARCH"):
        env.manager.handle_error(KeyError(), CustomCategory("refunds"), "low", "c", "o")


@pytest.mark.parametrize("name", ["vector_db", "SYSTEM", "Api_Call"])
def test_built_in_name_is_refused(env: Env, name: str) -> None:
    """A built-in name cannot be added as a custom category, by any route."""
    with pytest.raises(ValueError, match="is a built-in category"):
        env.manager.add_category(name, "retry/retry/retry/abort")
    with pytest.raises(ValueError, match="is a built-in category"):
        RecoveryPolicy().with_category(name, "retry/retry/retry/abort")
    with pytest.raises(ValueError, match="is a built-in category"):
        CustomCategory(name)


@pytest.mark.parametrize(("name", "actions", "message"), [
    ("payments", ["retry", "nap", "skip", "abort"], "action 'nap' is not one of retry, "
                                                    "fallback, skip, abort"),
    ("payments", ["retry", "retry", "abort"], "needs 4 actions .* got 3"),
    ("pay-ments", ["retry"] * 4, "holds '-'"),
    ("9lives", ["retry"] * 4, "must start with a letter"),
    ("p" * 65, ["retry"] * 4, "65 characters long, at most 64"),
])
def test_bad_name_or_action_is_a_value_error(env: Env, name: str, actions: list[str],
                                             message: str) -> None:
    """add_category refuses a malformed name, a wrong count or an unknown action, saying which."""
    with pytest.raises(ValueError, match=message):
        env.manager.add_category(name, actions)
    assert env.manager.policy.custom_categories == ()


def test_reconfigure_keeps_categories_added_by_api(env: Env) -> None:
    """After reconfigure, API-added rows stay (and win); config-made ones follow the config."""
    env.manager.add_category("payments", "skip/skip/skip/abort")
    env.manager.reconfigure(load_config(overrides={"error_handling": {"recovery": {
        "categories": [PAYMENTS_ROW, SEARCH_ROW]}}}, environ={}))
    policy = env.manager.policy
    assert set(policy.custom_categories) == {"payments", "search"}
    assert policy.table[CustomCategory("payments")] == (_S, _S, _S, _A)  # the API's row
    env.manager.reconfigure(load_config(environ={}))
    assert env.manager.policy.custom_categories == (CustomCategory("payments"),)
    assert env.manager.handle_error(KeyError(), "payments", "low", "B", "c").action_type is _S


def test_add_category_from_threads_keeps_every_row(env: Env) -> None:
    """16 threads adding one category each at once: all 16 are in the final policy."""
    barrier = threading.Barrier(16)

    def add(i: int) -> None:
        barrier.wait()
        env.manager.add_category(f"c{i}", "retry/retry/fallback/abort")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {c.name for c in env.manager.policy.custom_categories} == {f"C{i}" for i in range(16)}


def test_arguments_given_to_the_constructor_survive_reconfigure() -> None:
    """The one config rule: alert_min_severity and history_size given to the constructor stay
    when configure() changes them; a manager built without them follows."""
    given, following = Env(alert_min_severity="low", history_size=3), Env()
    try:
        config = load_config(overrides={"error_handling": {"recovery": {
            "alert_min_severity": "CRITICAL", "history_size": 7}}})
        for made in (given, following):
            made.manager.reconfigure(config)
        assert given.manager.alert_min_severity is ErrorSeverity.LOW
        assert following.manager.alert_min_severity is ErrorSeverity.CRITICAL
        for made in (given, following):
            for n in range(10):
                made.manager.handle_error(KeyError(n), "SYSTEM", "low", "c", "o")
        assert len(given.manager.get_recent_errors(100)) == 3
        assert len(following.manager.get_recent_errors(100)) == 7
    finally:
        given.alerts.close()
        following.alerts.close()


def test_a_given_policy_keeps_api_categories_through_reconfigure() -> None:
    """A manager built with policy= keeps that policy plus its add_category rows on reconfigure."""
    made = Env(policy=RecoveryPolicy(retry_delay=0.25))
    try:
        made.manager.add_category("payments", "retry/retry/fallback/abort")
        made.manager.reconfigure(load_config(overrides={"error_handling": {"recovery": {
            "categories": [SEARCH_ROW]}}}, environ={}))
        assert made.manager.policy.custom_categories == (CustomCategory("payments"),)
        assert made.manager.policy.retry_delay == 0.25
    finally:
        made.alerts.close()
