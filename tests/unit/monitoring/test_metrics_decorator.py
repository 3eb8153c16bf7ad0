"""vigil.monitoring.metrics' decorator: @monitor_performance, its recorders and Timing.

The plain-function wrapper spells out what Timing does (the one hot-path trick in
vigil.monitoring.metrics.decorator); the tests at the top pin that it reports exactly what
Timing reports, outcome by outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

import vigil
from vigil.monitoring import context, metrics
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.metrics import recorder as recorder_module
from vigil.monitoring.metrics.calls import CallHistory
from vigil.monitoring.metrics.decorator import timed_function
from vigil.monitoring.metrics.recorder import Timing

REPO = Path(__file__).resolve().parents[3]


def _monitor(**kwargs: object) -> PerformanceMonitor:
    return PerformanceMonitor(registry=CollectorRegistry(), **kwargs)  # type: ignore[arg-type]


class LoggingRecorder(CallHistory):
    """A recorder that writes down each step it is asked to take."""

    __slots__ = ("enter", "steps")

    def __init__(self) -> None:
        super().__init__(10)
        self.steps: list[tuple[str, float | None, BaseException | None]] = []
        self.enter: Callable[[], object] = lambda: self.steps.append(("enter", None, None))

    def finish(self, seconds: float, error: BaseException | None) -> None:
        self.steps.append(("finish", seconds, error))


class Ticks:
    """perf_counter stand-in: 1.0, 2.0, 3.0, ... one per read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


ERROR = ValueError("boom")
INTERRUPT = KeyboardInterrupt()
EXIT = SystemExit(3)


def _outcome(raised: BaseException | None) -> Callable[[], str]:
    def body() -> str:
        if raised is not None:
            raise raised
        return "result"

    return body


def _run(call: Callable[[], str]) -> tuple[str | None, BaseException | None]:
    try:
        return call(), None
    except BaseException as exc:  # the outcome is what is compared
        return None, exc


@pytest.mark.parametrize("raised", [None, ERROR, INTERRUPT, EXIT],
                         ids=["returns", "raises", "interrupted", "exits"])
def test_spelled_out_wrapper_reports_what_timing_reports(
        raised: BaseException | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a return, an Exception, KeyboardInterrupt and SystemExit, the plain-function wrapper
    and `with Timing(rec)` take the same steps (enter, then finish with the same seconds and
    the same exception object), and the caller sees the same result or the same exception."""
    body = _outcome(raised)
    reports = []
    for form in ("spelled out", "Timing"):
        ticks = Ticks()
        monkeypatch.setattr(time, "perf_counter", ticks)
        monkeypatch.setattr(recorder_module, "perf_counter", ticks)
        rec = LoggingRecorder()
        if form == "spelled out":
            call = timed_function(body, rec)
        else:
            def call(rec: LoggingRecorder = rec) -> str:
                with Timing(rec):
                    return body()
        result, error = _run(call)
        reports.append((rec.steps, result, error))
    assert reports[0] == reports[1]
    assert reports[0][0] == [("enter", None, None), ("finish", 1.0, raised)]


def test_timing_never_swallows_the_exception() -> None:
    """Timing.__exit__ is falsy: the exception leaves the with block unchanged."""
    rec = LoggingRecorder()
    with pytest.raises(ValueError, match="boom") as info, Timing(rec):
        raise ValueError("boom")
    assert rec.steps[-1][2] is info.value


def test_a_recorder_that_raises_in_finish_is_not_hidden() -> None:
    """A recorder failing at finish surfaces (the fault is vigil's, not silent)."""

    class Broken(LoggingRecorder):
        def finish(self, seconds: float, error: BaseException | None) -> None:
            raise RuntimeError("recorder broke")

    with pytest.raises(RuntimeError, match="recorder broke"):
        timed_function(_outcome(None), Broken())()


def test_every_wrapper_form_uses_the_patched_shared_monitor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without monitor=, the decorator records on metrics.performance_monitor as it is when
    decorating, so monkeypatching the package's name redirects it."""
    replacement = _monitor()
    monkeypatch.setattr(metrics, "performance_monitor", replacement)

    @monitor_performance("patched")
    def work() -> int:
        return 1

    assert work() == 1
    assert replacement.registry.get_sample_value("vigil_function_calls_total",
                                                 {"function": "patched"}) == 1


def test_decorator_records_seed_names_and_prometheus_metrics() -> None:
    """@monitor_performance records name.duration_ms/calls/errors and vigil_function_*."""
    monitor = _monitor()

    @monitor_performance("my_function", monitor=monitor)
    def my_function(fail: bool) -> str:
        if fail:
            raise KeyError("x")
        return "ok"

    assert my_function(False) == "ok"
    with pytest.raises(KeyError):
        my_function(True)
    assert monitor.get_metric_stats("my_function.calls")["count"] == 2
    assert monitor.get_metric_stats("my_function.errors")["count"] == 1
    assert monitor.get_metric_stats("my_function.duration_ms")["count"] == 2
    reg = monitor.registry
    labels = {"function": "my_function"}
    assert reg.get_sample_value("vigil_function_calls_total", labels) == 2
    assert reg.get_sample_value("vigil_function_duration_seconds_count", labels) == 2
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "my_function", "exception": "KeyError"}) == 1
    assert reg.get_sample_value("vigil_function_in_progress", labels) == 0
    # the seed names stay local: no Prometheus series named after them
    assert reg.get_sample_value("my_function_calls_total") is None


def test_decorator_on_async_function_counts_in_progress() -> None:
    """An async function is timed across its awaits and shows as in progress meanwhile."""
    monitor = _monitor()
    seen: list[float | None] = []

    @monitor_performance("my_function", monitor=monitor)
    async def my_function() -> int:
        seen.append(monitor.registry.get_sample_value("vigil_function_in_progress",
                                                      {"function": "my_function"}))
        await asyncio.sleep(0)
        return 3

    assert asyncio.run(my_function()) == 3
    assert seen == [1.0]
    assert monitor.registry.get_sample_value("vigil_function_calls_total",
                                             {"function": "my_function"}) == 1


def test_decorator_keeps_function_metadata() -> None:
    """The wrapper keeps the wrapped function's name and docstring."""

    @monitor_performance("documented", monitor=_monitor())
    def documented() -> None:
        """Docstring."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docstring."


def test_decorator_on_generators_covers_the_iteration() -> None:
    """Generators and async generators are one call each, ending when exhausted."""
    monitor = _monitor()

    @monitor_performance("gen", monitor=monitor)
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    @monitor_performance("agen", monitor=monitor)
    async def agen() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def drain() -> list[int]:
        return [x async for x in agen()]

    assert list(gen()) == [1, 2]
    assert asyncio.run(drain()) == [1, 2]
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "gen"}) == 1
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "agen"}) == 1


def test_cancellation_is_a_call_not_an_error() -> None:
    """A cancelled coroutine counts as a call but not as an error."""
    monitor = _monitor()

    @monitor_performance("waits", monitor=monitor)
    async def waits() -> None:
        await asyncio.Event().wait()

    async def run() -> None:
        task = asyncio.create_task(waits())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "waits"}) == 1
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "waits", "exception": "CancelledError"}) is None


def test_duration_carries_trace_id_exemplar() -> None:
    """Inside a trace, the duration observation has the trace id as an OpenMetrics exemplar."""
    monitor = _monitor()

    @monitor_performance("traced", monitor=monitor)
    def traced() -> None:
        pass

    span = context.SpanContext(context.new_trace_id(), context.new_span_id())
    with context.use_span(span):
        traced()
    text = generate_openmetrics(monitor.registry).decode()  # type: ignore[no-untyped-call]
    assert f'# {{trace_id="{span.trace_id}"}}' in text


def test_decorator_metrics_pass_promtool() -> None:
    """The decorator's families (histogram, exemplar-free text format) are valid exposition."""
    import shutil
    import subprocess

    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")
    monitor = _monitor()

    @monitor_performance("checked", monitor=monitor)
    def checked(fail: bool) -> None:
        if fail:
            raise KeyError("x")

    checked(False)
    with pytest.raises(KeyError):
        checked(True)
    result = subprocess.run(["promtool", "check", "metrics"],
                            input=generate_latest(monitor.registry), capture_output=True,
                            check=False)
    assert (result.stdout + result.stderr).decode() == ""


def test_exception_classes_are_capped() -> None:
    """Past max_series_per_metric exception classes, new ones are counted as 'other'."""
    vigil.configure({"monitoring": {"metrics": {"max_series_per_metric": 2}}})
    monitor = _monitor()

    @monitor_performance("raises", monitor=monitor)
    def raises(kind: type[Exception]) -> None:
        raise kind()

    for kind in (KeyError, ValueError, OSError, TypeError):
        with pytest.raises(kind):
            raises(kind)
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "raises", "exception": "ValueError"}) == 1
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "raises", "exception": "other"}) == 2


def test_multiprocess_mode_uses_prometheus_client_values(tmp_path: object) -> None:
    """Under PROMETHEUS_MULTIPROC_DIR the decorator's counts reach MultiProcessCollector."""
    script = textwrap.dedent("""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance

        @monitor_performance("worker_job", monitor=PerformanceMonitor())
        def job() -> None:
            pass

        for _ in range(3):
            job()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(registry.get_sample_value("vigil_function_calls_total",
                                        {"function": "worker_job"}))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"


def test_function_series_carry_created_like_prometheus_clients_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """vigil_function_calls/errors/duration have _created samples (the decoration time), as
    prometheus_client's counters and histograms do, and none when it is told not to write them."""
    from prometheus_client import Counter
    from prometheus_client import metrics as prometheus_metrics

    registry = CollectorRegistry()
    monitor = PerformanceMonitor(registry=registry)
    before = time.time()

    @monitor_performance("created_probe", monitor=monitor)
    def probe() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        probe()
    peer = Counter("peer_calls", "A prometheus_client counter.", registry=registry)
    peer.inc()
    labels = {"function": "created_probe"}
    for name in ("vigil_function_calls_created", "vigil_function_duration_seconds_created"):
        value = registry.get_sample_value(name, labels)
        assert value is not None, name
        assert before <= value <= time.time(), name
    assert registry.get_sample_value("vigil_function_errors_created",
                                     {**labels, "exception": "KeyError"}) is not None
    assert registry.get_sample_value("peer_calls_created") is not None
    monkeypatch.setattr(prometheus_metrics, "_use_created", False)
    assert registry.get_sample_value("vigil_function_calls_created", labels) is None


def test_generator_closed_early_is_a_call_not_an_error() -> None:
    """A generator abandoned after one item (GeneratorExit) counts one call, no error, and is
    in progress only while suspended."""
    monitor = _monitor()
    labels = {"function": "gen"}

    @monitor_performance("gen", monitor=monitor)
    def gen() -> Generator[int, None, None]:
        yield 1
        yield 2

    iterator = gen()
    assert next(iterator) == 1
    assert monitor.registry.get_sample_value("vigil_function_in_progress", labels) == 1
    iterator.close()
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_in_progress", labels) == 0
    assert reg.get_sample_value("vigil_function_calls_total", labels) == 1
    assert monitor.get_metric_stats("gen.errors")["count"] == 0


def test_generator_return_value_and_sent_values_pass_through() -> None:
    """The wrapper forwards send() and the generator's return value (yield from)."""

    @monitor_performance("echo", monitor=_monitor())
    def echo() -> Generator[str, str, str]:
        received = yield "ready"
        return f"got {received}"

    iterator = echo()
    assert next(iterator) == "ready"
    with pytest.raises(StopIteration) as stop:
        iterator.send("x")
    assert stop.value.value == "got x"


def test_async_generator_failing_mid_iteration_is_an_error() -> None:
    """An async generator raising after its first item counts one call and one error of its
    class, and the exception reaches the consumer."""
    monitor = _monitor()

    @monitor_performance("agen", monitor=monitor)
    async def agen() -> AsyncIterator[int]:
        yield 1
        raise OSError("disk")

    async def drain() -> list[int]:
        return [x async for x in agen()]

    with pytest.raises(OSError, match="disk"):
        asyncio.run(drain())
    reg = monitor.registry
    assert reg.get_sample_value("vigil_function_calls_total", {"function": "agen"}) == 1
    assert reg.get_sample_value("vigil_function_errors_total",
                                {"function": "agen", "exception": "OSError"}) == 1


def test_async_function_error_is_recorded_and_raised() -> None:
    """An async function that raises is one call and one error; the caller gets the error."""
    monitor = _monitor()

    @monitor_performance("fails", monitor=monitor)
    async def fails() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        asyncio.run(fails())
    assert monitor.get_metric_stats("fails.errors")["count"] == 1
    assert monitor.get_metric_stats("fails.duration_ms")["count"] == 1


def test_redecorating_a_name_shares_its_recorder() -> None:
    """Two functions given one name are one function label and one history."""
    monitor = _monitor()

    @monitor_performance("shared_name", monitor=monitor)
    def first() -> None:
        pass

    @monitor_performance("shared_name", monitor=monitor)
    async def second() -> None:
        pass

    first()
    asyncio.run(second())
    assert monitor.get_metric_stats("shared_name.calls")["count"] == 2
    assert monitor.registry.get_sample_value("vigil_function_calls_total",
                                             {"function": "shared_name"}) == 2


def test_a_seed_name_clash_is_refused_at_each_decoration() -> None:
    """A name whose .calls is already a gauge cannot be decorated, the second time either."""
    monitor = _monitor()
    monitor.record_gauge("clash.calls", 1)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"'clash\.calls' is a gauge"):
            monitor_performance("clash", monitor=monitor)(lambda: None)


def test_decorated_calls_are_exact_under_threads() -> None:
    """8 threads x 2,000 calls, a third of them raising: exact calls, errors, sum of buckets,
    and nothing left in progress."""
    monitor = _monitor()
    barrier = threading.Barrier(8)

    @monitor_performance("threaded", monitor=monitor)
    def work(i: int) -> None:
        if i % 3 == 0:
            raise ValueError(i)

    def run() -> None:
        barrier.wait()
        for i in range(2000):
            with contextlib.suppress(ValueError):
                work(i)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg = monitor.registry
    labels = {"function": "threaded"}
    assert reg.get_sample_value("vigil_function_calls_total", labels) == 16000
    assert reg.get_sample_value("vigil_function_duration_seconds_bucket",
                                {**labels, "le": "+Inf"}) == 16000
    assert reg.get_sample_value("vigil_function_errors_total",
                                {**labels, "exception": "ValueError"}) == 8 * 667
    assert reg.get_sample_value("vigil_function_in_progress", labels) == 0


def test_every_wrapper_form_reaches_multiprocess_files(tmp_path: Path) -> None:
    """Under PROMETHEUS_MULTIPROC_DIR, coroutines, generators and async generators (the Timing
    forms) record into prometheus_client's files too, in-progress back to 0, errors counted."""
    script = textwrap.dedent("""
        import asyncio
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance

        monitor = PerformanceMonitor()

        @monitor_performance("co", monitor=monitor)
        async def co(fail):
            if fail:
                raise KeyError("x")

        @monitor_performance("gen", monitor=monitor)
        def gen():
            yield 1

        @monitor_performance("agen", monitor=monitor)
        async def agen():
            yield 1

        async def main():
            await co(False)
            try:
                await co(True)
            except KeyError:
                pass
            assert [x async for x in agen()] == [1]

        asyncio.run(main())
        assert list(gen()) == [1]
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        value = registry.get_sample_value
        print(value("vigil_function_calls_total", {"function": "co"}),
              value("vigil_function_errors_total", {"function": "co", "exception": "KeyError"}),
              value("vigil_function_calls_total", {"function": "gen"}),
              value("vigil_function_calls_total", {"function": "agen"}),
              sum(value("vigil_function_in_progress", {"function": f}) or 0
                  for f in ("co", "gen", "agen")))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, cwd=REPO, check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2.0", "1.0", "1.0", "1.0", "0"]


def test_importing_the_package_builds_no_shared_monitor() -> None:
    """import vigil.monitoring.metrics (and its modules) leaves performance_monitor unbuilt
    and the default registry without vigil's families."""
    code = textwrap.dedent("""
        import prometheus_client
        import vigil.monitoring.metrics as metrics
        from vigil.monitoring.metrics import decorator, monitor, shared
        names = {m.name for m in prometheus_client.REGISTRY.collect()}
        print("performance_monitor" in vars(metrics), any(n.startswith("vigil_") for n in names))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=False, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "False"]
