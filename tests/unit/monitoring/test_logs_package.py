"""vigil.monitoring.logs as a package: its names, the state its modules share, and the fork.

The package re-exports its modules' public names; the state they share (the default stream,
the write lock, the process fields, the live formatters and loggers with their locks) lives in
one module each and is read through it, so every writer reaches every reader; each module
makes its own lock again in a forked child.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import select
import signal
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.monitoring.test_logs import FdStream

import vigil
from vigil.monitoring import logs
from vigil.monitoring.logs import (
    StructuredLogger,
    configure_logging,
    exceptions,
    formatting,
    process,
    redaction,
    structured,
    wiring,
    writing,
)
from vigil.testing import capture_logs

# The module each public name of the package comes from (TOO_DEEP is vigil.jsonsafe's).
OWNERS = {
    "REDACTED": redaction, "mask_credentials": redaction, "redact": redaction,
    "JsonLineFormatter": formatting, "JsonLineHandler": writing,
    "StructuredLogger": structured, "get_recent_logs": structured,
    "shared_logger": structured, "SERVER_LOGGERS": wiring, "configure_logging": wiring,
    "logging_config": wiring,
}
# The state the modules share, under its names now and before the split: rebound or mutated
# where it lives, so a copy of it in the package would go stale without a sound.
SHARED = {writing: ("default_stream", "write_lock"), process: ("fields", "ready"),
          formatting: ("formatters", "formatters_lock"), structured: ("loggers", "loggers_lock")}
OLD_NAMES = ("_default_stream", "_write_lock", "_process_fields", "_process_ready",
             "_formatters", "_formatters_lock", "_loggers", "_loggers_lock", "_last_stamp")

def test_every_public_name_is_the_owning_modules_object() -> None:
    """Each name of __all__ is re-exported as its module's own object, and nothing is missing."""
    assert sorted(logs.__all__) == sorted([*OWNERS, "TOO_DEEP"])
    for name, module in OWNERS.items():
        assert getattr(logs, name) is getattr(module, name), name
    assert logs.TOO_DEEP == "[TOO DEEP]"
    # Names read through the package by code outside it (tests/bench, type hints).
    assert logs._timestamp is structured._timestamp
    assert logs.ExcInfo is exceptions.ExcInfo


def test_the_package_keeps_no_copy_of_shared_state() -> None:
    """The shared state is in its modules and not re-exported (under its new or its old
    name), so code reading it through the package fails loudly instead of reading a copy."""
    for module, names in SHARED.items():
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"
            assert not hasattr(logs, name), name
    for name in OLD_NAMES:
        assert not hasattr(logs, name), name

@pytest.mark.usefixtures("root_logging")
def test_the_default_stream_has_one_place_for_every_writer_and_reader() -> None:
    """configure_logging(stream=) and capture_logs() both reach a StructuredLogger without a
    stream; capture_logs() reaches the root handler made without one, and puts back the
    stream configure_logging set."""
    configured = io.StringIO()
    configure_logging("INFO", stream=configured, registry=CollectorRegistry())
    assert writing.default_stream is configured
    own = StructuredLogger("Own", registry=CollectorRegistry())
    stdlib = logging.getLogger("tests.logs_package")
    own.info("configured")
    with capture_logs() as captured:
        own.info("captured")
        stdlib.info("stdlib, to its handler's own stream")
    own.info("configured again")
    assert captured.messages() == ["captured"]
    assert [json.loads(line)["message"] for line in configured.getvalue().splitlines()] == [
        "configured", "stdlib, to its handler's own stream", "configured again"]
    assert writing.default_stream is configured
    configure_logging("INFO", registry=CollectorRegistry())  # a handler without a stream
    with capture_logs() as captured:
        stdlib.info("stdlib, captured")
    assert captured.messages() == ["stdlib, captured"]
    assert writing.default_stream is None

def test_each_modules_lock_is_made_again_in_a_forked_child() -> None:
    """A child forked while the write, formatters' and loggers' locks are all held (by other
    threads, in real life) can make a logger, log, read recent logs and reconfigure."""
    read_end, write_end = os.pipe()
    held = [writing.write_lock, formatting.formatters_lock, structured.loggers_lock]
    for lock in held:
        lock.acquire()
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's coverage is not collected
            try:
                logger = StructuredLogger("Child", registry=CollectorRegistry(),
                                          stream=FdStream(write_end))  # type: ignore[arg-type]
                vigil.configure({"monitoring": {"logging": {"level": "DEBUG"}}})
                logger.debug("child", {"recent": len(logs.get_recent_logs(component="Child"))})
            finally:
                os._exit(0)
    finally:
        for lock in held:
            lock.release()
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10.0)  # a bounded wait, not a sleep
        assert ready, "the child's line never came: it is stuck on an inherited lock"
        line: dict[str, Any] = json.loads(os.read(read_end, 65536))
        assert (line["message"], line["metadata"]) == ("child", {"recent": 0})
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):  # it has exited already
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


class CountingLock:
    """A lock that counts how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CountingLock:
        self._lock.acquire()
        self.taken += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


@pytest.mark.usefixtures("root_logging")
def test_every_user_of_a_lock_takes_the_one_its_module_holds_now(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing a module's lock (as its fork hook does) reaches every user: the logger's and
    the handler's writes, making a logger, reconfiguring and reading recent logs."""
    locks = {name: CountingLock() for name in ("write", "formatters", "loggers")}
    monkeypatch.setattr(writing, "write_lock", locks["write"])
    monkeypatch.setattr(formatting, "formatters_lock", locks["formatters"])
    monkeypatch.setattr(structured, "loggers_lock", locks["loggers"])
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, registry=CollectorRegistry())  # one formatter
    logger = StructuredLogger("Counted", stream=stream, registry=CollectorRegistry())
    assert (locks["formatters"].taken, locks["loggers"].taken) == (2, 1)
    logger.info("structured")
    logging.getLogger("tests.logs_package").info("stdlib")
    assert locks["write"].taken == 2
    vigil.configure({"monitoring": {"logging": {"level": "DEBUG"}}})
    assert (locks["formatters"].taken, locks["loggers"].taken) == (3, 2)
    assert [e["message"] for e in logs.get_recent_logs(component="Counted")] == ["structured"]
    assert locks["loggers"].taken == 3
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "structured", "stdlib"]
