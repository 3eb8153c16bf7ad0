"""vigil._lazy: the shared objects are built on first use, once, and `import vigil` is inert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil import _lazy

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


@pytest.fixture
def fake_module() -> Iterator[Any]:
    name = "vigil_lazy_test_module"
    module = _module(name)
    try:
        yield module
    finally:
        sys.modules.pop(name, None)


def test_import_vigil_reads_no_config_registers_nothing_and_starts_no_thread() -> None:
    """After importing vigil and all its subpackages, the default registry holds no vigil_*
    family, no configuration was loaded and no thread started; the first use of a shared
    object registers its families."""
    code = (
        "import json, threading, prometheus_client\n"
        "import vigil, vigil.monitoring, vigil.error_handling, vigil.asgi, vigil.wsgi\n"
        "import vigil.config.active\n"
        "names = lambda: sorted(n for n in prometheus_client.REGISTRY._names_to_collectors\n"
        "                       if n.startswith('vigil_'))\n"
        "before = names()\n"
        "loaded = vigil.config.active._current is not None\n"
        "threads = sorted(t.name for t in threading.enumerate())\n"
        "vigil.alert_manager\n"
        "print(json.dumps([before, loaded, threads, names()]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT / "exporter")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    before, loaded, threads, after = json.loads(done.stdout)
    assert (before, loaded, threads) == ([], False, ["MainThread"])
    assert "vigil_alerts_total" in after


def test_a_shared_object_is_built_once_even_when_threads_race(
        fake_module: Any) -> None:
    """Eight threads reading the name at once get one object; the factory ran once, and the
    object is then a plain module global."""
    calls: list[object] = []
    gate = threading.Barrier(8)

    def build() -> object:
        calls.append(object())
        return calls[-1]

    fake_module.__getattr__ = _lazy.shared_objects(fake_module.__name__, {"thing": build})
    seen: list[object] = []

    def read() -> None:
        gate.wait()
        seen.append(fake_module.thing)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert seen == [calls[0]] * 8
    assert fake_module.__dict__["thing"] is calls[0]


def test_a_factory_that_raises_is_not_cached_and_is_retried(fake_module: Any) -> None:
    """A first use that fails (a bad VIGIL_* variable) raises that error, and the next use
    tries again rather than finding a half-built object."""
    attempts: list[int] = []

    def build() -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("not yet")
        return "built"

    fake_module.__getattr__ = _lazy.shared_objects(fake_module.__name__, {"thing": build})
    with pytest.raises(ValueError, match="not yet"):
        fake_module.thing  # noqa: B018 (the access is the test)
    assert "thing" not in fake_module.__dict__
    assert fake_module.thing == "built"
    assert _lazy.shared(fake_module.__name__, "thing") == "built"


def test_unknown_names_raise_attribute_error(fake_module: Any) -> None:
    """A name outside the table is an ordinary AttributeError, so hasattr() is False."""
    fake_module.__getattr__ = _lazy.shared_objects(fake_module.__name__, {"thing": object})
    assert not hasattr(fake_module, "other")


def test_a_forwarded_name_follows_a_replacement_in_its_home(
        fake_module: Any) -> None:
    """The re-exporting package looks the name up in the defining module on every access, so
    replacing the object there (as tests and applications do) is seen through the package."""
    package: Any = types.ModuleType("vigil_lazy_test_package")
    package.__getattr__ = _lazy.forwarding(package.__name__, {"thing": fake_module.__name__})
    fake_module.thing = "first"
    assert package.thing == "first"
    fake_module.thing = "second"
    assert package.thing == "second"


def test_a_moved_name_says_where_it_went() -> None:
    """vigil.start_exporter (lib/ never imports the exporter) answers where to find it now."""
    import vigil

    with pytest.raises(AttributeError, match="from vigil_exporter import start_exporter"):
        vigil.start_exporter  # type: ignore[attr-defined]  # noqa: B018 (the access is the test)


def test_the_packages_reexport_the_shared_objects_of_their_modules() -> None:
    """vigil, vigil.monitoring and vigil.error_handling answer the very objects their defining
    modules hold (one object per process, whichever name reaches it)."""
    import vigil
    import vigil.error_handling
    import vigil.monitoring
    from vigil.error_handling import recovery
    from vigil.monitoring import alerts, metrics, tracing

    assert vigil.alert_manager is vigil.monitoring.alert_manager is alerts.alert_manager
    assert vigil.performance_monitor is vigil.monitoring.performance_monitor \
        is metrics.performance_monitor
    assert vigil.execution_tracer is vigil.monitoring.execution_tracer is tracing.execution_tracer
    assert vigil.error_recovery_manager is vigil.error_handling.error_recovery_manager \
        is recovery.error_recovery_manager


@pytest.mark.parametrize(("home", "name", "top"), [
    ("vigil.monitoring.alerts", "alert_manager", ("vigil", "vigil.monitoring")),
    ("vigil.monitoring.metrics", "performance_monitor", ("vigil", "vigil.monitoring")),
    ("vigil.monitoring.tracing", "execution_tracer", ("vigil", "vigil.monitoring")),
    ("vigil.error_handling.recovery", "error_recovery_manager",
     ("vigil", "vigil.error_handling")),
])
def test_a_shared_object_replaced_in_its_package_is_seen_through_every_package(
        monkeypatch: pytest.MonkeyPatch, home: str, name: str, top: tuple[str, ...]) -> None:
    """monkeypatch.setattr(<its package>, name, X): vigil and the subpackage answer X too."""
    import importlib

    replacement = object()
    monkeypatch.setattr(importlib.import_module(home), name, replacement)
    for package in top:
        assert getattr(importlib.import_module(package), name) is replacement, package


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_lock_is_held_can_still_build(fake_module: Any) -> None:
    """The docstring's promise: a child forked while another thread of the parent holds the
    build lock gets a fresh one, so its first use of a shared object does not hang."""
    fake_module.__getattr__ = _lazy.shared_objects(fake_module.__name__, {"thing": object})
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _lazy._lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: build under a deadline, then leave without cleanup
            import signal
            signal.alarm(5)  # a hang ends the child with SIGALRM instead of forever
            code = 1
            try:
                code = 0 if fake_module.thing is not None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
