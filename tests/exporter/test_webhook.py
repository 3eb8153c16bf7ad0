"""vigil_exporter.webhook: parsing Alertmanager payloads, the error messages, the mapping."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil_exporter.webhook import (
    MAX_ALERTS,
    MAX_LABEL_LENGTH,
    MAX_PAIRS,
    MAX_TEXT_LENGTH,
    NOTIFICATION_SCHEMA,
    Notification,
    PayloadError,
    WebhookAlert,
    map_severity,
    parse_notification,
    to_send_alert_kwargs,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def rejected(body: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        parse_notification(body)
    return info.value


def minimal_alert(**fields: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {"status": "firing", "labels": {"alertname": "A"},
                             "fingerprint": "f1", "startsAt": "2026-01-01T00:00:00Z",
                             "endsAt": "0001-01-01T00:00:00Z"}
    alert.update(fields)
    return alert


def with_alert(**fields: Any) -> bytes:
    return encode({"version": "4", "alerts": [minimal_alert(**fields)]})


# --- the captured payloads --------------------------------------------------------------


def test_firing_fixture_parses_to_its_fields() -> None:
    """The firing payload from Alertmanager 0.25 parses, every field where it belongs."""
    notification = parse_notification(encode(fixture("firing")))
    assert notification.version == "4"
    assert notification.receiver == "hook"
    assert notification.status == "firing"
    assert notification.group_key == '{}:{alertname="DemoErrors"}'
    assert notification.external_url == "http://127.0.0.1:57219"
    assert notification.group_labels == {"alertname": "DemoErrors"}
    assert notification.common_annotations == {"summary": "component x is erroring"}
    assert notification.truncated_alerts == 0
    (alert,) = notification.alerts
    assert alert.status == "firing"
    assert alert.alertname == "DemoErrors"
    assert alert.labels["severity"] == "page"
    assert alert.annotations == {"summary": "component x is erroring"}
    assert alert.fingerprint == "6cca1d5ee5a27a61"
    assert alert.starts_at == "2026-11-28T18:20:07.499Z"
    assert alert.ends_at == "0001-01-01T00:00:00Z"
    assert alert.generator_url.startswith("http://127.0.0.1:39901/graph?")


def test_firing_fixture_maps_to_send_alert_arguments() -> None:
    """A firing alert becomes send_alert kwargs: mapped severity, kept labels, source, metadata."""
    notification = parse_notification(encode(fixture("firing")))
    kwargs = to_send_alert_kwargs(notification.alerts[0], notification)
    assert kwargs == {
        "severity": "critical",
        "component": "x",
        "message": "component x is erroring",
        "metadata": {
            "generatorURL": notification.alerts[0].generator_url,
            "startsAt": "2026-11-28T18:20:07.499Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "receiver": "hook",
            "groupKey": '{}:{alertname="DemoErrors"}',
            "externalURL": "http://127.0.0.1:57219",
        },
        "source": "alertmanager",
        "status": "firing",
        "labels": fixture("firing")["alerts"][0]["labels"],
        "annotations": {"summary": "component x is erroring"},
        "fingerprint": "6cca1d5ee5a27a61",
    }


def test_resolved_fixture_keeps_the_fingerprint_and_says_resolved() -> None:
    """The resolved payload maps to status resolved with the firing alert's fingerprint."""
    notification = parse_notification(encode(fixture("resolved")))
    kwargs = to_send_alert_kwargs(notification.alerts[0], notification)
    assert kwargs["status"] == "resolved"
    assert kwargs["fingerprint"] == "6cca1d5ee5a27a61"
    assert kwargs["metadata"]["endsAt"] == "2026-11-28T18:20:18.499Z"


# --- severity, component, message --------------------------------------------------------


@pytest.mark.parametrize(("label", "severity"), [
    ("critical", "critical"), ("page", "critical"), ("p1", "critical"), ("PAGE", "critical"),
    ("high", "high"), ("error", "high"), ("Major", "high"),
    ("warning", "medium"), ("warn", "medium"), ("medium", "medium"),
    ("info", "low"), ("low", "low"), ("none", "low"), ("minor", "low"), (" Info ", "low"),
    ("p3", "medium"), ("", "medium"), (None, "medium"),
])
def test_severity_label_maps_to_vigil_severity(label: str | None, severity: str) -> None:
    """The severity table, case-insensitive, with medium for unknown or missing labels."""
    assert map_severity(label) == severity


def test_original_severity_label_is_kept() -> None:
    """Mapping the severity does not change the severity label itself."""
    notification = parse_notification(with_alert(labels={"alertname": "A", "severity": "P1"}))
    kwargs = to_send_alert_kwargs(notification.alerts[0], notification)
    assert kwargs["severity"] == "critical"
    assert kwargs["labels"]["severity"] == "P1"


@pytest.mark.parametrize(("labels", "component"), [
    ({"alertname": "A", "component": "db", "job": "api"}, "db"),
    ({"alertname": "A", "job": "api"}, "api"),
    ({"alertname": "A", "component": "", "job": "api"}, "api"),
    ({"alertname": "A"}, "alertmanager"),
])
def test_component_falls_back_to_job_then_alertmanager(labels: dict[str, str],
                                                       component: str) -> None:
    """component comes from the component label, else job, else "alertmanager"."""
    notification = parse_notification(with_alert(labels=labels))
    assert to_send_alert_kwargs(notification.alerts[0], notification)["component"] == component


@pytest.mark.parametrize(("labels", "annotations", "message"), [
    ({"alertname": "A"}, {"summary": "s", "description": "d"}, "s"),
    ({"alertname": "A"}, {"description": "d"}, "d"),
    ({"alertname": "A"}, {"summary": ""}, "A"),
    ({}, {}, "alert from Alertmanager"),
])
def test_message_falls_back_to_description_then_alertname(
        labels: dict[str, str], annotations: dict[str, str], message: str) -> None:
    """message comes from summary, else description, else alertname."""
    notification = parse_notification(with_alert(labels=labels, annotations=annotations))
    assert to_send_alert_kwargs(notification.alerts[0], notification)["message"] == message


# --- redelivery keys ---------------------------------------------------------------------


def test_minimal_payload_is_accepted_with_defaults() -> None:
    """Only version, alerts and the per-alert fields vigil uses are required."""
    notification = parse_notification(with_alert())
    assert notification.receiver == ""
    assert notification.group_labels == {}
    alert = notification.alerts[0]
    assert alert.annotations == {}
    assert alert.generator_url == ""


@pytest.mark.parametrize("annotations", [None, {}])
def test_null_or_empty_annotations_mean_none(annotations: object) -> None:
    """annotations may be null or empty."""
    assert parse_notification(with_alert(annotations=annotations)).alerts[0].annotations == {}


def test_unknown_fields_are_ignored() -> None:
    """Fields a newer Alertmanager might add do not break parsing."""
    payload = fixture("firing")
    payload["newField"] = {"anything": [1, 2]}
    payload["alerts"][0]["silencedBy"] = ["x"]
    assert parse_notification(encode(payload)).alerts[0].fingerprint == "6cca1d5ee5a27a61"


def test_empty_alert_list_is_valid() -> None:
    """A notification with no alerts parses (and dispatches nothing)."""
    assert parse_notification(encode({"version": "4", "alerts": []})).alerts == ()


def test_values_at_the_caps_are_accepted() -> None:
    """The caps are inclusive: exactly the limit passes."""
    labels = {f"l{i}": "v" for i in range(MAX_PAIRS - 1)}
    labels["alertname"] = "x" * MAX_LABEL_LENGTH
    alert = minimal_alert(labels=labels, annotations={"description": "d" * MAX_TEXT_LENGTH})
    payload = {"version": "4", "alerts": [alert] * 3}
    assert len(parse_notification(encode(payload)).alerts) == 3


def test_non_ascii_text_is_kept() -> None:
    """Valid non-ASCII text in labels and annotations passes unchanged."""
    notification = parse_notification(with_alert(labels={"alertname": "Überlast 🚨"},
                                                  annotations={"summary": "負荷"}))
    assert notification.alerts[0].alertname == "Überlast 🚨"
    assert notification.alerts[0].annotations["summary"] == "負荷"


# --- 400: not JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"version": "4", "alerts": [\xff]}', "not valid UTF-8: byte 0xff at offset 28"),
    (b'{"version": "4",\n "alerts": [,]}', "not valid JSON: Expecting value at line 2 column 13"),
    (b"", "body is empty"),
    (b"  \n", "body is empty"),
    (b'{"version": "4"', "not valid JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"version": 1' + b"0" * 5000 + b"}", "not valid JSON"),
])
def test_undecodable_bodies_are_400_saying_why(body: bytes, expected: str) -> None:
    """Bad UTF-8, bad JSON (with line and column), empty and absurdly nested bodies: 400."""
    error = rejected(body)
    assert error.status == 400
    assert expected in error.message


# --- 422: the wrong shape ----------------------------------------------------------------


def _set(path: list[Any], value: object, payload: dict[str, Any] | None = None) -> bytes:
    data: Any = copy.deepcopy(payload if payload is not None else fixture("firing"))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return encode(data)


_DELETE = object()


@pytest.mark.parametrize(("body", "expected"), [
    (encode([1, 2]), "body: expected an object, got array"),
    (encode("hello"), "body: expected an object, got string"),
    (_set(["version"], _DELETE), "version: required"),
    (_set(["version"], "3"), 'version: unsupported Alertmanager webhook version "3"; '
                             "expected '4'"),
    (_set(["version"], 4), "version: expected a string, got number"),
    (_set(["status"], "burning"), 'status: "burning" is not an alert status'),
    (_set(["alerts"], _DELETE), "alerts: required"),
    (_set(["alerts"], {"0": {}}), "alerts: expected an array, got object"),
    (_set(["alerts", 0], "x"), "alerts[0]: expected an object, got string"),
    (_set(["alerts", 0, "status"], "FIRING"), 'alerts[0].status: "FIRING" is not an alert '
                                              "status; expected 'firing' or 'resolved'"),
    (_set(["alerts", 0, "status"], None), "alerts[0].status: expected a string, got null"),
    (_set(["alerts", 0, "labels"], _DELETE), "alerts[0].labels: required"),
    (_set(["alerts", 0, "labels"], ["a"]), "alerts[0].labels: expected an object of strings, "
                                           "got array"),
    (_set(["alerts", 0, "labels", "severity"], 3),
     "alerts[0].labels.severity: expected a string, got number"),
    (_set(["alerts", 0, "labels", "a b"], True),
     'alerts[0].labels["a b"]: expected a string, got boolean'),
    (_set(["alerts", 0, "annotations"], "x"), "alerts[0].annotations: expected an object"),
    (_set(["alerts", 0, "annotations", "summary"], {"a": 1}),
     "alerts[0].annotations.summary: expected a string, got object"),
    (_set(["alerts", 0, "fingerprint"], ""), "alerts[0].fingerprint: must not be empty"),
    (_set(["alerts", 0, "fingerprint"], _DELETE), "alerts[0].fingerprint: required"),
    (_set(["alerts", 0, "startsAt"], _DELETE), "alerts[0].startsAt: required"),
    (_set(["alerts", 0, "endsAt"], 0), "alerts[0].endsAt: expected a string, got number"),
    (_set(["alerts", 0, "generatorURL"], []), "alerts[0].generatorURL: expected a string"),
    (_set(["groupLabels"], "x"), "groupLabels: expected an object of strings, got string"),
    (_set(["truncatedAlerts"], -1), "truncatedAlerts: expected an integer >= 0, got number"),
    (_set(["truncatedAlerts"], "2"), "truncatedAlerts: expected an integer >= 0, got string"),
])
def test_wrong_shapes_are_422_naming_the_path(body: bytes, expected: str) -> None:
    """Valid JSON of the wrong shape: 422 with the path of the offending value."""
    error = rejected(body)
    assert error.status == 422
    assert expected in error.message, error.message


def test_too_many_alerts_is_422() -> None:
    """More than MAX_ALERTS alerts in one notification: 422."""
    error = rejected(encode({"version": "4", "alerts": [minimal_alert()] * (MAX_ALERTS + 1)}))
    assert (error.status, error.message) == (
        422, f"alerts: {MAX_ALERTS + 1} alerts; at most {MAX_ALERTS} per notification")


def test_too_many_labels_is_422() -> None:
    """More than MAX_PAIRS labels on an alert: 422 naming the alert."""
    error = rejected(with_alert(labels={f"l{i}": "v" for i in range(MAX_PAIRS + 1)}))
    assert error.status == 422
    assert error.message == f"alerts[0].labels: {MAX_PAIRS + 1} entries; at most {MAX_PAIRS} " \
                            "allowed"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"labels": {"alertname": "x" * (MAX_LABEL_LENGTH + 1)}},
     f"alerts[0].labels.alertname: {MAX_LABEL_LENGTH + 1} characters; at most"),
    ({"labels": {"n" * (MAX_LABEL_LENGTH + 1): "v"}},
     f"alerts[0].labels: a name of {MAX_LABEL_LENGTH + 1} characters"),
    ({"annotations": {"description": "d" * (MAX_TEXT_LENGTH + 1)}},
     f"alerts[0].annotations.description: {MAX_TEXT_LENGTH + 1} characters"),
    ({"generatorURL": "u" * (MAX_TEXT_LENGTH + 1)}, "alerts[0].generatorURL: "),
])
def test_oversized_strings_are_422(fields: dict[str, Any], expected: str) -> None:
    """Label values, names and other strings past their caps: 422."""
    error = rejected(with_alert(**fields))
    assert error.status == 422
    assert expected in error.message


@pytest.mark.parametrize("fields", [
    {"labels": {"alertname": "a\ud800b"}},
    {"labels": {"a\udc00": "v"}},
    {"annotations": {"summary": "\udfff"}},
    {"fingerprint": "\ud83d"},
])
def test_lone_surrogates_are_422(fields: dict[str, Any]) -> None:
    """A JSON-escaped lone surrogate is not text vigil could log or export: 422."""
    body = with_alert(**fields)  # json.dumps escapes them as \\udXXX
    error = rejected(body)
    assert error.status == 422
    assert "not valid Unicode" in error.message
    error.message.encode("ascii")  # the message itself is safe to log


def test_messages_quote_received_values_short_and_ascii() -> None:
    """A long or odd value echoed in a message is cut and escaped."""
    error = rejected(_set(["version"], "\n" + "v" * 500))
    assert len(error.message) < 200
    assert "\\n" in error.message


def test_payload_error_is_a_value_error_with_status() -> None:
    """PayloadError carries the HTTP status and message and is a ValueError."""
    error = PayloadError(422, "x: wrong")
    assert isinstance(error, ValueError)
    assert (error.status, error.message, str(error)) == (422, "x: wrong", "x: wrong")


# --- nothing else escapes ----------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


def _near(valid: object) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), _json_values)


_alerts = st.fixed_dictionaries({}, optional={
    "status": _near("firing"), "labels": _near({"alertname": "A", "severity": "page"}),
    "annotations": _near({"summary": "s"}), "fingerprint": _near("f"),
    "startsAt": _near("2026-01-01T00:00:00Z"), "endsAt": _near("0001-01-01T00:00:00Z"),
    "generatorURL": _near("http://x")})
_notifications = st.fixed_dictionaries({}, optional={
    "version": _near("4"), "alerts": st.one_of(st.lists(_alerts, max_size=3), _json_values),
    "receiver": _near("hook"), "status": _near("firing"), "groupKey": _near("{}"),
    "externalURL": _near("http://am"), "groupLabels": _near({}), "commonLabels": _near({}),
    "commonAnnotations": _near({}), "truncatedAlerts": _near(0)})


def _parse_or_payload_error(body: bytes) -> None:
    try:
        notification = parse_notification(body)
    except PayloadError as err:
        status = err.status
        assert status in (400, 422)
        return
    for alert in notification.alerts:
        kwargs = to_send_alert_kwargs(alert, notification)
        assert kwargs["source"] == "alertmanager"
        json.dumps(kwargs).encode("utf-8")  # everything kept is encodable text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_payload_error(body: bytes) -> None:
    """Any bytes either parse or raise PayloadError (400/422): nothing else escapes."""
    _parse_or_payload_error(body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_notifications)
def test_near_valid_payloads_parse_or_raise_payload_error(payload: dict[str, Any]) -> None:
    """Payloads with any field swapped for any JSON value parse or raise PayloadError."""
    _parse_or_payload_error(json.dumps(payload).encode())


# --- the OpenAPI description ---------------------------------------------------------------


def test_schema_states_the_same_requirements_and_caps() -> None:
    """NOTIFICATION_SCHEMA matches the parser: required fields, version and caps."""
    assert NOTIFICATION_SCHEMA["required"] == ["version", "alerts"]
    props = NOTIFICATION_SCHEMA["properties"]
    assert props["version"]["enum"] == ["4"]
    assert props["alerts"]["maxItems"] == MAX_ALERTS
    alert = props["alerts"]["items"]
    assert set(alert["required"]) == {"status", "labels", "fingerprint", "startsAt", "endsAt"}
    assert alert["properties"]["labels"]["maxProperties"] == MAX_PAIRS
    assert alert["properties"]["labels"]["additionalProperties"]["maxLength"] == \
        MAX_LABEL_LENGTH
    json.dumps(NOTIFICATION_SCHEMA)


def test_types_are_plain_dataclasses() -> None:
    """Notification and WebhookAlert can be built directly (for tests and for callers)."""
    alert = WebhookAlert(status="firing", labels={"alertname": "A"}, annotations={},
                         starts_at="s", ends_at="e", fingerprint="f")
    notification = Notification(alerts=(alert,))
    assert to_send_alert_kwargs(alert, notification)["message"] == "A"
