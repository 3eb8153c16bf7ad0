"""vigil.monitoring.multiprocess: gauge modes, the scrape view of many workers, dead workers.

prometheus_client fixes multiprocess mode at import, so each case runs a child interpreter
with ``PROMETHEUS_MULTIPROC_DIR`` set (several, for several workers) and reads what it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vigil.monitoring import multiprocess

REPO = Path(__file__).resolve().parents[3]

WORKER = """
import os, sys
from prometheus_client import CollectorRegistry
from vigil.error_handling import CircuitBreaker
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
registry = CollectorRegistry()
monitor = PerformanceMonitor(registry=registry)
@monitor_performance("job", monitor=monitor)
def job(): pass
for _ in range(int(sys.argv[1])):
    job()
breaker = CircuitBreaker(name="b", registry=registry)
if sys.argv[2] == "open":
    breaker.force_open()
print(os.getpid())
"""


def _python(code: str, folder: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]  # after any log lines


def _scrape(folder: Path, extra: str = "") -> dict[str, object]:
    """Families of MultiprocessRegistry in a reader process: name -> samples."""
    code = """
    import json
    from prometheus_client import CollectorRegistry, Gauge
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector
    from vigil.monitoring.multiprocess import MultiprocessRegistry
    local = CollectorRegistry()
    class Own:
        def collect(self):
            yield GaugeMetricFamily("app_own_value", "a custom collector", value=7)
    local.register(Own())
    EXTRA
    out = {}
    for family in MultiprocessRegistry(local).collect():
        assert family.name not in out, family.name
        out[family.name] = [[s.name, s.labels, s.value] for s in family.samples]
    print(json.dumps(out))
    """.replace("EXTRA", extra)
    return dict(json.loads(_python(code, folder)))


def test_gauge_modes_are_live_and_user_gauges_per_worker() -> None:
    """Every vigil gauge has a live mode (dead workers leave); unknown names get liveall."""
    assert all(mode.startswith("live") for mode in multiprocess.GAUGE_MODES.values())
    assert multiprocess.gauge_mode("vigil_circuit_breaker_state") == "liveall"
    assert multiprocess.gauge_mode("app_queue_depth") == multiprocess.USER_GAUGE_MODE == "liveall"


def test_scrape_adds_up_workers_and_keeps_each_family_once(tmp_path: Path) -> None:
    """Two workers' calls add up; a breaker open in one shows by pid; custom collectors stay."""
    first = _python(WORKER, tmp_path, "3", "open")
    second = _python(WORKER, tmp_path, "4", "closed")
    families = _scrape(tmp_path, "MultiProcessCollector(local)  # a second copy adds nothing")
    calls = families["vigil_function_calls"]
    assert calls == [["vigil_function_calls_total", {"function": "job"}, 7.0]]
    states = {(s[1]["pid"], s[1]["state"]): s[2] for s in families["vigil_circuit_breaker_state"]}
    assert states[(first, "OPEN")] == 1
    assert states[(second, "OPEN")] == 0
    assert states[(second, "CLOSED")] == 1
    assert families["app_own_value"] == [["app_own_value", {}, 7.0]]


def test_dead_worker_gauges_go_and_its_counts_stay(tmp_path: Path) -> None:
    """mark_process_dead drops the pid's live gauges; its calls stay in the totals."""
    first = _python(WORKER, tmp_path, "3", "open")
    second = _python(WORKER, tmp_path, "4", "closed")
    multiprocess.mark_process_dead(int(first), str(tmp_path))
    families = _scrape(tmp_path)
    pids = {s[1]["pid"] for s in families["vigil_circuit_breaker_state"]}
    assert pids == {second}
    assert families["vigil_function_calls"][0][2] == 7.0
    assert sorted(p.name for p in tmp_path.glob(f"*_{first}.db")) == [
        f"counter_{first}.db", f"histogram_{first}.db"]


def test_restricted_view_keeps_only_the_named_samples(tmp_path: Path) -> None:
    """restricted_registry(names) keeps the named samples, from files and local collectors."""
    _python(WORKER, tmp_path, "2", "closed")
    code = """
    import json
    from prometheus_client import CollectorRegistry, generate_latest
    from vigil.monitoring.multiprocess import MultiprocessRegistry
    view = MultiprocessRegistry(CollectorRegistry()).restricted_registry(
        ["vigil_function_calls_total"])
    print(json.dumps(generate_latest(view).decode()))
    """
    text = json.loads(_python(code, tmp_path))
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == ['vigil_function_calls_total{function="job"} 2.0']


def test_mark_process_dead_outside_multiprocess_mode_does_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR there is no folder to clean: no error."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert multiprocess.multiprocess_dir() is None
    multiprocess.mark_process_dead(12345)


def test_function_errors_cap_alike_in_both_modes(tmp_path: Path) -> None:
    """max_series=2 and 5 exception classes: the same series and drops in both modes."""
    code = """
    import json
    import vigil
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
    from vigil.monitoring.multiprocess import MULTIPROCESS
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": 2}}})
    registry = CollectorRegistry()
    @monitor_performance("f", monitor=PerformanceMonitor(registry=registry))
    def f(kind):
        raise type(kind, (Exception,), {})()
    for kind in ["A", "B", "C", "D", "E"]:
        try:
            f(kind)
        except Exception:
            pass
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    out = {k: registry.get_sample_value("vigil_function_errors_total",
                                        {"function": "f", "exception": k})
           for k in ["A", "B", "C", "other"]}
    out["dropped"] = registry.get_sample_value("vigil_dropped_series_total",
                                               {"metric": "vigil_function_errors_total"})
    print(json.dumps(out))
    """
    multi = json.loads(_python(code, tmp_path))
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    single = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {"A": 1.0, "B": 1.0, "C": None, "other": 3.0, "dropped": 3.0}
    assert single == expected
    assert multi == expected


def test_forked_child_shows_its_breakers_state_at_once(tmp_path: Path) -> None:
    """After a fork (gunicorn --preload) the child's own files say CLOSED=1 / OPEN=1."""
    code = """
    import json, os
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    from vigil.error_handling import CircuitBreaker
    registry = CollectorRegistry()
    closed = CircuitBreaker(name="closed", registry=registry)
    opened = CircuitBreaker(name="opened", registry=registry)
    opened.force_open()
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # the child only forks in; its after-fork hooks have run
    os.waitpid(pid, 0)
    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    def state(name, value):
        return merged.get_sample_value("vigil_circuit_breaker_state",
                                       {"breaker": name, "state": value, "pid": str(pid)})
    print(json.dumps([state("closed", "CLOSED"), state("opened", "OPEN"),
                      state("opened", "CLOSED")]))
    """
    assert json.loads(_python(code, tmp_path)) == [1.0, 1.0, 0.0]
