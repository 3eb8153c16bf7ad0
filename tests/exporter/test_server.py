"""vigil_exporter.server: the embedded exporter thread binds, serves, stops and frees its port."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.integration.conftest import wait_until

from vigil.config import ExporterSettings
from vigil.monitoring.alerts import Alert, AlertManager
from vigil_exporter.app import create_app
from vigil_exporter.server import bind_socket, start_exporter


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: 200 'hello' for HTTP, and the lifespan handshake."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def test_start_serves_on_loopback_and_stop_frees_the_port() -> None:
    """port=0 picks a free port on 127.0.0.1; after stop() the same port can be bound again."""
    handle = start_exporter(port=0, app=_hello)
    try:
        assert handle.host == "127.0.0.1"
        assert handle.url == f"http://127.0.0.1:{handle.port}"
        assert _get(handle.url + "/") == b"hello"
    finally:
        assert handle.stop()
    assert not handle.running
    assert not any(t.name == "vigil-exporter" and t.is_alive() for t in threading.enumerate())
    bind_socket("127.0.0.1", handle.port).close()


def test_default_host_comes_from_settings() -> None:
    """Without host=, the exporter binds exporter.host (loopback by default)."""
    with start_exporter(port=0, app=_hello, settings=ExporterSettings()) as handle:
        assert handle.host == "127.0.0.1"


def test_port_in_use_is_a_clear_error() -> None:
    """Binding a port that is taken fails at once, naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_exporter(port=port, app=_hello)


def test_restart_cycles_leave_no_threads() -> None:
    """Five start/stop cycles leave no exporter thread behind."""
    for _ in range(5):
        start_exporter(port=0, app=_hello).stop()
    assert not any(t.name == "vigil-exporter" for t in threading.enumerate())


def _notification(name: str) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": name}, "annotations": {},
        "startsAt": "2026-12-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": name}]}).encode()


def test_embedded_stop_finishes_the_running_call_and_keeps_the_rest(tmp_path: Path) -> None:
    """handle.stop(): the running handler call finishes, the alerts it did not reach stay in
    the store, and the next exporter on that state folder delivers them."""
    settings = ExporterSettings(state_dir=str(tmp_path), delivery_poll_interval=0.01)
    got: list[str] = []
    entered, gate = threading.Event(), threading.Event()

    def slow(alert: Alert) -> None:
        entered.set()
        assert gate.wait(10)
        got.append(alert.labels["alertname"])

    registry = CollectorRegistry()
    manager = AlertManager(registry=registry)
    manager.register_handler(slow)
    try:
        app = create_app(settings=settings, registry=registry, alert_manager=manager)
        handle = start_exporter(port=0, settings=settings, app=app)
        for name in ("a", "b", "c"):
            request = urllib.request.Request(handle.url + settings.webhook_path,
                                             data=_notification(name), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
        assert entered.wait(10)

        def release_once_stopping() -> None:
            # The call may finish only after the stop began: then b and c must stay stored.
            wait_until(lambda: not app.state.delivery.alive, 10, "the stop to begin", 0.01)
            gate.set()

        threading.Thread(target=release_once_stopping).start()
        assert handle.stop()
        assert got == ["a"]
        registry = CollectorRegistry()
        again = start_exporter(port=0, settings=settings, app=create_app(
            settings=settings, registry=registry, alert_manager=manager))
        try:
            wait_until(lambda: len(got) == 3, 10, "the stored alerts to be delivered", 0.01)
            assert got == ["a", "b", "c"]
        finally:
            again.stop()
    finally:
        gate.set()
        manager.close()
