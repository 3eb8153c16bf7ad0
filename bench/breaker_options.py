"""The circuit breaker's success path and the cost of each option, measured side by side.

    .venv/bin/python -m bench.breaker_options            # full budget (about a minute)
    .venv/bin/python -m bench.breaker_options --quick    # tiny sizes: a check that it runs

Every subject is a breaker (its own registry) around a function returning at once, measured
with :func:`bench.harness.measure` (interleaved, median per call, garbage collection on), so a
row's ratio compares two subjects that shared the machine's noise. The rows:

* the success path, ``call()`` and the decorator, against pybreaker and ``circuitbreaker``
  (when installed) and against the breaker as it was before it became a package (the single
  ``breaker.py`` module, taken from git and imported by path; ``--old PATH`` names a copy);
* each option switched on against the same breaker without it: a time window against the
  count window, the slow-call rate, ``failure_on_result``, ``protect()`` against ``call()``
  (sync and async), a decorated generator against the same generator undecorated, and the
  ``METRICS_ONLY``/``DISABLED`` states against ``CLOSED``.

Prints a Markdown table (the format of ``bench/RESULTS.md``); writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry

from bench.cases import MICRO, Result
from bench.harness import FULL, QUICK, Budget, Runner, async_runner, machine, measure, sync_runner
from vigil.error_handling.breaker import CircuitBreaker, CircuitState

ROOT = Path(__file__).resolve().parent.parent
OLD_PATH = "lib/vigil/error_handling/breaker.py"


def plain() -> int:
    return 1


def numbers() -> Iterator[int]:
    """The generator rows' subject: three items, as a short result stream."""
    yield 1
    yield 2
    yield 3


async def async_plain() -> int:
    return 1


async def async_numbers() -> AsyncIterator[int]:
    yield 1
    yield 2
    yield 3


def old_module(path: str | None) -> ModuleType | None:
    """The single-module breaker before the package, imported under another name.

    From ``path`` if given, else from git: ``HEAD:lib/vigil/error_handling/breaker.py`` while
    it exists there, else the parent of the commit that deleted it. ``None`` when neither works.
    """
    source: str | None = None
    if path is not None:
        source = Path(path).read_text(encoding="utf-8")
    else:
        for revision in ("HEAD", _deleting_commit()):
            if revision is None:
                continue
            where = f"{revision}:{OLD_PATH}" if revision == "HEAD" else \
                f"{revision}^:{OLD_PATH}"
            done = subprocess.run(["git", "show", where], cwd=ROOT, capture_output=True,
                                  text=True, check=False)
            if done.returncode == 0:
                source = done.stdout
                break
    if source is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="vigil-old-breaker-"))
    file = folder / "vigil_old_breaker.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("vigil_old_breaker", file)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def _deleting_commit() -> str | None:
    done = subprocess.run(["git", "log", "--diff-filter=D", "-1", "--format=%H", "--",
                           OLD_PATH], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def _breaker(**kwargs: Any) -> CircuitBreaker:
    kwargs.setdefault("failure_threshold", None if "failure_rate_threshold" in kwargs else 5)
    return CircuitBreaker(recovery_timeout=30.0, name=kwargs.pop("name", "bench"),
                          registry=CollectorRegistry(), **kwargs)


def _us(runners: dict[str, Runner], budget: Budget) -> dict[str, float]:
    return {name: seconds * MICRO for name, seconds in measure(runners, budget).items()}


def success_rows(budget: Budget, old: ModuleType | None) -> list[Result]:
    """``call()`` and the decorator on a closed breaker, against the peers and the old module."""
    cb = _breaker()
    runners: dict[str, Runner] = {
        "call": sync_runner("call(f)", {"call": cb.call, "f": plain}),
        "decorator": sync_runner("f()", {"f": cb(plain)}),
    }
    peers: dict[str, str] = {}
    try:
        import pybreaker

        py_cb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
        runners["pybreaker call"] = sync_runner("call(f)", {"call": py_cb.call, "f": plain})
        runners["pybreaker decorator"] = sync_runner("f()", {"f": py_cb(plain)})
        peers["pybreaker"] = pybreaker.__name__
    except ImportError:
        pass
    try:
        import circuitbreaker  # type: ignore[import-untyped]

        decorated = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=30,
                                           name="bench")(plain)
        runners["circuitbreaker decorator"] = sync_runner("f()", {"f": decorated})
        peers["circuitbreaker"] = circuitbreaker.__name__
    except ImportError:
        pass
    if old is not None:
        old_cb = old.CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, name="bench-old",
                                    registry=CollectorRegistry())
        runners["old call"] = sync_runner("call(f)", {"call": old_cb.call, "f": plain})
        runners["old decorator"] = sync_runner("f()", {"f": old_cb(plain)})
    us = _us(runners, budget)
    call_case = "`CircuitBreaker.call`, closed, success (locked, counted)"
    decorator_case = "`@CircuitBreaker` function, closed, success"
    rows = []
    if "pybreaker" in peers:
        rows += [Result(call_case, us["call"], "pybreaker `call`", us["pybreaker call"], "µs",
                        1.0),
                 Result(decorator_case, us["decorator"], "pybreaker decorator",
                        us["pybreaker decorator"], "µs", 1.0)]
    if "circuitbreaker" in peers:
        rows += [Result(call_case, us["call"], "`circuitbreaker` decorator (no lock)",
                        us["circuitbreaker decorator"], "µs"),
                 Result(decorator_case, us["decorator"], "`circuitbreaker` decorator (no lock)",
                        us["circuitbreaker decorator"], "µs")]
    if old is not None:
        rows += [Result(call_case, us["call"], "the same, before the package (`breaker.py`)",
                        us["old call"], "µs", 1.1),
                 Result(decorator_case, us["decorator"], "the same, before the package",
                        us["old decorator"], "µs", 1.1)]
    return rows


def option_rows(budget: Budget, old: ModuleType | None) -> list[Result]:
    """Each option on, against the same breaker without it (sync ``call()`` unless named)."""
    rate = {"failure_rate_threshold": 0.5, "minimum_calls": 10, "sliding_window_size": 20}
    count = _breaker(**rate)
    time_window = _breaker(**rate, sliding_window_type="time")
    slow = _breaker(slow_call_duration=10.0)
    slow_rate = _breaker(slow_call_duration=10.0, slow_call_rate_threshold=0.5)
    base = _breaker()
    on_result = _breaker(failure_on_result=lambda result: result is None)
    metrics_only = _breaker(name="metrics-only")
    metrics_only.transition_to(CircuitState.METRICS_ONLY)
    disabled = _breaker(name="disabled")
    disabled.transition_to(CircuitState.DISABLED)
    guarded = base(numbers)
    runners: dict[str, Runner] = {
        "base": sync_runner("call(f)", {"call": base.call, "f": plain}),
        "count": sync_runner("call(f)", {"call": count.call, "f": plain}),
        "time": sync_runner("call(f)", {"call": time_window.call, "f": plain}),
        "slow": sync_runner("call(f)", {"call": slow.call, "f": plain}),
        "slow rate": sync_runner("call(f)", {"call": slow_rate.call, "f": plain}),
        "on result": sync_runner("call(f)", {"call": on_result.call, "f": plain}),
        "protect": sync_runner("with protect():\n    f()", {"protect": base.protect,
                                                           "f": plain}),
        "generator": sync_runner("for _ in g(): pass", {"g": guarded}),
        "bare generator": sync_runner("for _ in g(): pass", {"g": numbers}),
        "metrics only": sync_runner("call(f)", {"call": metrics_only.call, "f": plain}),
        "disabled": sync_runner("call(f)", {"call": disabled.call, "f": plain}),
    }
    if old is not None:
        old_rate = old.CircuitBreaker(**rate, failure_threshold=None, recovery_timeout=30.0,
                                      name="bench-old-rate", registry=CollectorRegistry())
        runners["old count"] = sync_runner("call(f)", {"call": old_rate.call, "f": plain})
    us = _us(runners, budget)
    asynchronous = _async_option_us(budget)
    before = [Result("failure-rate mode, count window (20 calls)", us["count"],
                     "the same, before the package", us["old count"], "µs")] \
        if old is not None else []
    return [
        *before,
        Result("failure-rate mode, count window (20 calls)", us["count"],
               "failures-in-a-row mode (the default)", us["base"], "µs"),
        Result("failure-rate mode, `sliding_window_type=\"time\"` (20 s)", us["time"],
               "failure-rate mode, count window (20 calls)", us["count"], "µs"),
        Result("`slow_call_rate_threshold` (with `slow_call_duration`)", us["slow rate"],
               "`slow_call_duration` alone", us["slow"], "µs"),
        Result("`failure_on_result` (a lambda)", us["on result"], "`call()` without it",
               us["base"], "µs"),
        Result("`with cb.protect():` block", us["protect"], "`cb.call(f)`", us["base"], "µs"),
        Result("`async with cb.protect():` block", asynchronous["protect"],
               "`await cb.call_async(f)`", asynchronous["call_async"], "µs"),
        Result("`@cb` generator of 3 items, iterated (added cost)",
               us["generator"] - us["bare generator"], "`cb.call(f)`", us["base"], "µs"),
        Result("`@cb` async generator of 3 items, iterated (added cost)",
               asynchronous["generator"] - asynchronous["bare generator"],
               "`await cb.call_async(f)`", asynchronous["call_async"], "µs"),
        Result("`call()` in `METRICS_ONLY`", us["metrics only"], "`call()` in `CLOSED`",
               us["base"], "µs"),
        Result("`call()` in `DISABLED`", us["disabled"], "`call()` in `CLOSED`", us["base"],
               "µs"),
    ]


def _async_option_us(budget: Budget) -> dict[str, float]:
    base = _breaker(name="bench-async")
    guarded = base(async_numbers)

    async def call_async() -> int:
        return await base.call_async(async_plain)

    async def protected() -> int:
        async with base.protect():
            return await async_plain()

    async def iterate(generator: Callable[[], AsyncIterator[int]]) -> None:
        async for _ in generator():
            pass

    async def decorated_generator() -> None:
        await iterate(guarded)

    async def bare_generator() -> None:
        await iterate(async_numbers)

    loop = asyncio.new_event_loop()
    try:
        return _us({
            "call_async": async_runner(call_async, loop),
            "protect": async_runner(protected, loop),
            "generator": async_runner(decorated_generator, loop),
            "bare generator": async_runner(bare_generator, loop),
        }, budget)
    finally:
        loop.close()


def table(rows: Sequence[Result]) -> str:
    """The rows as RESULTS.md's Markdown table."""
    lines = ["| vigil | figure | against | figure | ratio | target | met |",
             "| --- | ---: | --- | ---: | ---: | --- | --- |"]
    for row in rows:
        target = f"{row.op} {row.target:g}" if row.target is not None else "—"
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.case} | {row.vigil:.2f} {row.unit} | {row.peer_name} | "
                     f"{row.peer:.2f} {row.unit} | {row.ratio:.2f} | {target} | {met} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--old", metavar="PATH",
                        help="the pre-package breaker.py to compare with (default: from git)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    old = old_module(args.old)
    rows = success_rows(budget, old) + option_rows(budget, old)
    facts = machine()
    print(f"- Machine: {facts['CPU']}, {facts['cores']} cores, {facts['Python']}; "
          f"pybreaker {facts['pybreaker']}, circuitbreaker {facts['circuitbreaker']}"
          + ("" if old is not None else "; the pre-package module was not found"))
    print(f"- Budget: {'quick' if args.quick else 'full'}, {budget.repeats} repeats, "
          "median per call, interleaved\n")
    print(table(rows))
    missed = [row for row in rows if row.met is False]
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
