"""Security: webhook credentials over a real socket, secrets kept out of log lines (fuzzed
metadata keys), servers bound to loopback by default.

Already proven in-process (cited, not repeated as such; tests/exporter/test_app.py): fixed lists
of wrong bearer and basic credentials get 401 and dispatch nothing
(test_bearer_token_is_required_when_configured, test_basic_auth_is_required_when_configured),
the configured secrets never appear in the exporter's logs (test_secrets_are_never_logged);
redaction of a fixed nested example (tests/unit/monitoring/test_logs.py::
test_secrets_are_redacted_including_nested); start_exporter's default host
(tests/exporter/test_server.py::test_default_host_comes_from_settings, which checks the handle,
not the socket).

Heavy variants (``-m heavy``): 2,000 generated credentials and 3,000 generated metadata trees
instead of 150 and 300.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import ipaddress
import json
import logging
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.integration.conftest import requires_stack
from tests.reliability.conftest import WAIT, LiveExporter, live_exporter, raw_request, sizes
from vigil.monitoring.logs import StructuredLogger, configure_logging, get_recent_logs
from vigil_exporter.stack import LocalStack

TOKEN = "reliability-bearer-Zq8u3"
USER, PASSWORD = "alertmanager", "reliability-pass-8Hk2"
FIRING = (Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
          / "firing.json").read_bytes()
NEEDLES = ("password", "secret", "token", "api_key", "authorization", "cookie")



# --- webhook credentials --------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[dict[str, LiveExporter]]:
    """Two live exporters: one requiring a bearer token, one requiring basic auth."""
    with contextlib.ExitStack() as stack:
        yield {"bearer": live_exporter(stack, webhook_bearer_token=TOKEN),
               "basic": live_exporter(stack, webhook_username=USER, webhook_password=PASSWORD)}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40)
_wrong_credentials = st.one_of(
    st.none(),  # no Authorization header at all
    _printable,
    _printable.map(lambda t: f"Bearer {t}"),
    st.sampled_from(["Bearer", "Bearer ", "Basic", "Basic ", "bearer  ", "Digest x"]),
    st.tuples(_printable, _printable).map(lambda up: _basic(*up)),
    st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.sampled_from([f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}", TOKEN,
                     _basic(USER, PASSWORD + "x"), _basic(USER.upper(), PASSWORD),
                     _basic(USER, ""), _basic("", PASSWORD), f"Bearer {PASSWORD}",
                     "Basic " + base64.b64encode(f"{USER}{PASSWORD}".encode()).decode()]),
).map(lambda value: None if value is None else value.strip())  # as it goes on the wire


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
@pytest.mark.parametrize("examples", sizes(150, 2000))
def test_wrong_or_missing_credentials_get_401_and_dispatch_nothing(
        guarded: dict[str, LiveExporter], scheme: str, examples: int) -> None:
    """Generated missing, malformed and near-miss credentials over the socket: always 401 with
    WWW-Authenticate, never dispatched; the right credentials then get 200."""
    live = guarded[scheme]
    before = live.sample("vigil_webhook_requests_total", code="401")
    sent = 0
    with httpx.Client(base_url=live.url, timeout=WAIT) as client:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(authorization=_wrong_credentials)
        def run(authorization: str | None) -> None:
            nonlocal sent
            headers = {"Content-Type": "application/json"}
            if authorization is not None:
                headers["Authorization"] = authorization
            response = client.post(live.settings.webhook_path, content=FIRING, headers=headers)
            sent += 1
            assert response.status_code == 401, (authorization, response.text)
            assert response.headers["www-authenticate"].lower().startswith(scheme)

        run()
        assert live.delivered() == []
        assert live.sample("vigil_alertmanager_alerts_received_total", alertname="DemoErrors",
                           status="firing") == 0
        assert live.sample("vigil_webhook_requests_total", code="401") - before == sent
        good = f"Bearer {TOKEN}" if scheme == "bearer" else _basic(USER, PASSWORD)
        assert client.post(live.settings.webhook_path, content=FIRING,
                           headers={"Authorization": good,
                                    "Content-Type": "application/json"}).status_code == 200
    assert len(live.delivered()) == 1
    live.received.clear()


def test_credentials_are_checked_before_the_body_is_read(
        guarded: dict[str, LiveExporter]) -> None:
    """An unauthenticated request announcing a 1 MiB body, sending none of it, gets its 401 at
    once: the server never waits for a body it would throw away."""
    live = guarded["bearer"]
    head = (f"POST {live.settings.webhook_path} HTTP/1.1\r\nHost: vigil\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1048576\r\n"
            f"Authorization: Bearer wrong\r\n\r\n").encode()
    status, answer, _ = raw_request(live.url, head)
    assert status == 401, answer[:300]
    assert live.delivered() == []


# --- secrets never reach a log line ---------------------------------------------------------


def _any_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c for c, up in zip(word, flips, strict=True))


@st.composite
def _secret_key(draw: st.DrawFn) -> str:
    """A key containing a secret word in any case, anywhere: 'X-Api_KEY-2', 'dbPassword'."""
    around = st.text(string.ascii_letters + string.digits + "-_. ", max_size=6)
    return draw(around) + _any_case(draw, draw(st.sampled_from(NEEDLES))) + draw(around)


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime"}  # names stdlib logging refuses as extra= keys
_plain_key = st.text(string.ascii_letters + "_", min_size=1, max_size=8).filter(
    lambda k: not any(n in k.lower() for n in NEEDLES) and k not in _RESERVED)


@st.composite
def _metadata(draw: st.DrawFn, marker: str) -> dict[str, Any]:
    """Metadata whose secret keys (at any depth, in dicts inside dicts, lists and tuples) hold
    values carrying ``marker``; plain keys hold harmless values. One secret is always at the
    top."""
    serial = iter(range(10_000))

    def secret_value() -> Any:
        value = f"{marker}-{next(serial)}"
        shape = draw(st.sampled_from(["str", "bearer", "subtree", "list"]))
        if shape == "subtree":  # a whole subtree under a secret key goes
            return {"inner": value, "more": [value, {"deeper": value}]}
        if shape == "list":
            return [value, value]
        return f"Bearer {value}" if shape == "bearer" else value

    def tree(depth: int) -> dict[str, Any]:
        items: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 4))):
            if draw(st.booleans()):
                items[draw(_secret_key())] = secret_value()
            elif depth < 4 and draw(st.booleans()):
                child = tree(depth + 1)
                wrap = draw(st.sampled_from(["dict", "list", "tuple"]))
                items[draw(_plain_key)] = (child if wrap == "dict" else [child, "plain"]
                                           if wrap == "list" else (child,))
            else:
                items[draw(_plain_key)] = draw(st.integers() | st.text(string.ascii_letters,
                                                                      max_size=5))
        return items

    return {draw(_secret_key()): secret_value(), **tree(0)}


@pytest.mark.parametrize("examples", sizes(300, 3000))
@pytest.mark.usefixtures("root_logging")
def test_secret_values_never_reach_a_log_line(examples: int) -> None:
    """Generated metadata with secret-looking keys in any case and position, nested in dicts,
    lists and tuples, logged at every level by a StructuredLogger and through the stdlib root
    logger: the secret values appear in no JSON line and in no get_recent_logs entry."""
    stream = io.StringIO()
    logger = StructuredLogger("SecurityFuzz", registry=CollectorRegistry(), stream=stream,
                              level="DEBUG", buffer_size=10)
    configure_logging("DEBUG", stream=stream, registry=CollectorRegistry())
    stdlib = logging.getLogger("security.fuzz")
    marker = "S3CR3T-" + "q7Zx"

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(metadata=_metadata(marker), level=st.sampled_from(
        ["debug", "info", "warning", "error", "critical"]))
    def run(metadata: dict[str, Any], level: str) -> None:
        stream.seek(0)
        stream.truncate()
        assert marker in json.dumps(metadata)  # the generator did put secrets in
        getattr(logger, level)("fuzzed", metadata)
        try:
            raise RuntimeError("with an exception attached")
        except RuntimeError:
            logger.error("fuzzed with exc", metadata)
        getattr(stdlib, level)("fuzzed stdlib", extra=metadata)
        written = stream.getvalue()
        assert len(written.splitlines()) == 3
        for line in written.splitlines():
            assert marker not in line, line
            json.loads(line)  # still one JSON object per line
        recent = json.dumps(logger.get_recent_logs(10)) + json.dumps(
            get_recent_logs(10, component="SecurityFuzz"))
        assert marker not in recent

    run()


@dataclasses.dataclass
class _DatabaseSettings:
    host: str
    password: str


class _ApiCredentials(NamedTuple):
    user: str
    api_key: str


@pytest.mark.parametrize(("value", "secret"), [
    (_DatabaseSettings("db.internal", "hunter2-dataclass"), "hunter2-dataclass"),
    ({"nested": [_DatabaseSettings("db", "hunter2-in-a-list")]}, "hunter2-in-a-list"),
    (_ApiCredentials("svc", "ak-namedtuple-123"), "ak-namedtuple-123"),
], ids=["dataclass", "dataclass-in-a-list", "namedtuple"])
def test_secret_fields_of_structured_values_are_redacted(value: Any, secret: str) -> None:
    """A dataclass or NamedTuple in metadata whose field is secret-looking (password, api_key)
    does not write that field's value: the JSON line shows its keys, so they must redact."""
    stream = io.StringIO()
    logger = StructuredLogger("SecurityStructured", registry=CollectorRegistry(), stream=stream)
    logger.info("connecting", {"settings": value})
    line = stream.getvalue()
    assert secret not in line, line
    assert secret not in json.dumps(logger.get_recent_logs(1), default=str)


# --- loopback by default --------------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket and bound UDP socket of process ``pid``."""
    found = []
    for conn in psutil.Process(pid).net_connections("inet"):
        if conn.status == psutil.CONN_LISTEN or (conn.type.name == "SOCK_DGRAM" and conn.laddr):
            found.append((conn.laddr.ip, conn.laddr.port))
    return found


def test_start_exporter_listens_on_loopback_only_by_default(
        exporter: Callable[..., LiveExporter]) -> None:
    """start_exporter() without host= (the exporter of create_app): the kernel shows its one
    listening socket on 127.0.0.1, nothing on a wildcard or external address."""
    live = exporter()
    mine = [(ip, port) for ip, port in _listening(psutil.Process().pid)
            if port == live.handle.port]
    assert mine == [("127.0.0.1", live.handle.port)]


@pytest.mark.integration
@requires_stack
def test_local_stack_children_listen_on_loopback_only(
        exporter: Callable[..., LiveExporter]) -> None:
    """Prometheus and Alertmanager started by LocalStack: every socket they listen on (TCP) or
    bind (UDP, Alertmanager's cluster gossip) is a loopback address."""
    live = exporter()
    with LocalStack(exporter_url=live.url, webhook_url=live.url + live.settings.webhook_path,
                    scrape_interval="1s") as local:
        assert len(local.pids) == 2
        for pid in local.pids:
            sockets = _listening(pid)
            name = psutil.Process(pid).name()
            assert sockets, f"{name} listens on nothing?"
            assert all(_is_loopback(ip) for ip, _ in sockets), f"{name}: {sockets}"
