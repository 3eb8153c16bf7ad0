"""Retry's options, measured: the first-try path against tenacity and vigil before issue 15,
and what each new option costs when it is on.

    .venv/bin/python -m bench.retry_options            # full (about a minute)
    .venv/bin/python -m bench.retry_options --quick    # tiny sizes: a check that it runs

Three tables, every figure a median per call from :func:`bench.harness.measure` (subjects of a
table interleaved in one process), printed as markdown; read the ratios:

1. **First try**: a function returning at once under ``@with_retry(3, (OSError,))``, vigil now
   against vigil before the retry package (``lib/vigil/error_handling/retry.py`` read out of
   git with ``git show`` and imported from a temporary file; ``--baseline REV`` picks the
   commit), tenacity and backoff; sync and async.
2. **Options on, first try**: the same call with ``wait=``, ``retry_if_result``, ``max_time``,
   ``expose_attempt``, through ``Retrier.call`` and as a ``retrying()`` loop; ratio to the
   plain decorator, and tenacity's nearest equivalent beside it.
3. **One retry**: attempt 1 fails (or returns a rejected result), attempt 2 succeeds, with a
   clock whose sleeps return at once and logging above WARNING (so the figure is the retry's
   bookkeeping, not a log line); the same options, and tenacity with a no-op ``sleep``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any, cast

from prometheus_client import CollectorRegistry

from bench.cases import MICRO, NullStream
from bench.harness import FULL, QUICK, Budget, async_runner, machine, measure, sync_runner

ROOT = Path(__file__).resolve().parent.parent
OLD_PATH = "lib/vigil/error_handling/retry.py"

Row = tuple[str, float, str, float]  # subject, µs, compared with, its µs


class InstantClock:
    """The real monotonic clock with sleeps that return at once (retry paths without waiting)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        pass

    async def sleep_async(self, seconds: float) -> None:
        pass


def old_retry_module(rev: str | None) -> tuple[ModuleType | None, str]:
    """vigil's single-module retry.py at ``rev`` (default: the last commit that had it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout

    try:
        if rev is None:
            last = git("rev-list", "-1", "HEAD", "--", OLD_PATH).strip()
            if not last:
                return None, "no commit has lib/vigil/error_handling/retry.py"
            has_file = bool(git("ls-tree", last, "--", OLD_PATH).strip())
            rev = last if has_file else f"{last}^"  # the commit that removed it: its parent
        source = git("show", f"{rev}:{OLD_PATH}")
        label = git("rev-parse", "--short", rev).strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"git could not read the old retry.py ({exc})"
    with tempfile.TemporaryDirectory(prefix="vigil-old-retry-") as folder:
        path = Path(folder) / "old_retry.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("bench_old_retry", path)
        if spec is None or spec.loader is None:
            return None, f"cannot import {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)  # compiled now: the file is not needed afterwards
    return module, label


# --- subjects -----------------------------------------------------------------------------


def _returns_one() -> int:
    return 1


async def _returns_one_async() -> int:
    return 1


def _fails_every_other_call() -> Callable[[], int | None]:
    """Attempt 1 of each retried call raises OSError, attempt 2 returns 1."""
    count = [0]

    def flaky() -> int:
        count[0] += 1
        if count[0] & 1:
            raise OSError("odd attempt")
        return 1

    return flaky


def _none_every_other_call() -> Callable[[], int | None]:
    """Attempt 1 of each retried call returns None (rejected), attempt 2 returns 1."""
    count = [0]

    def flaky() -> int | None:
        count[0] += 1
        return None if count[0] & 1 else 1

    return flaky


def _is_none(value: object) -> bool:
    return value is None


def _us(seconds: dict[str, float]) -> dict[str, float]:
    return {name: value * MICRO for name, value in seconds.items()}


def first_try_rows(budget: Budget, old: ModuleType | None, old_label: str) -> list[Row]:
    """Table 1: the success-first-try decorator path, sync and async."""
    import backoff
    import tenacity

    from vigil.error_handling.retry import with_retry

    registry = CollectorRegistry()
    decos: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
        "vigil": lambda fn: with_retry(3, (OSError,), registry=registry)(fn),
        "tenacity": lambda fn: tenacity.retry(
            stop=tenacity.stop_after_attempt(3), retry=tenacity.retry_if_exception_type(OSError),
            wait=tenacity.wait_exponential(), reraise=True)(fn),
        "backoff": lambda fn: backoff.on_exception(backoff.expo, OSError, max_tries=3)(fn),
    }
    if old is not None:
        old_registry = CollectorRegistry()
        decos[f"vigil {old_label}"] = lambda fn: old.with_retry(
            3, (OSError,), registry=old_registry)(fn)
    loop = asyncio.new_event_loop()
    try:
        sync = _us(measure({name: sync_runner("f()", {"f": deco(_returns_one)})
                            for name, deco in decos.items()}, budget))
        asy = _us(measure({name: async_runner(deco(_returns_one_async), loop)
                           for name, deco in decos.items()}, budget))
    finally:
        loop.close()
    rows: list[Row] = []
    for kind, us in (("sync", sync), ("async", asy)):
        for peer in decos:
            if peer != "vigil":
                rows.append((f"`@with_retry` first try, {kind}", us["vigil"], peer, us[peer]))
    return rows


def _sync_loop(attempts: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``for attempt in attempts: with attempt: fn()``: the same loop for vigil's retrying()
    and tenacity's Retrying."""

    def run() -> Any:
        for attempt in attempts:
            with attempt:
                result = fn()
        return result

    return run


def _sync_loop_result(attempts: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        for attempt in attempts:
            with attempt:
                attempt.set_result(fn())
        return attempt.result

    return run


def _tenacity_loop_result(attempts: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        for attempt in attempts:
            with attempt:
                value = fn()
            if not attempt.retry_state.outcome.failed:
                attempt.retry_state.set_result(value)
        return value

    return run


def _async_loop(attempts: Any, fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        async for attempt in attempts:
            with attempt:
                result = fn()
        return result

    return run


def option_subjects(clock: Any, registry: CollectorRegistry, logger: Any,
                    flaky: Callable[[], Callable[[], Any]],
                    rejected: Callable[[], Callable[[], Any]]
                    ) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """vigil's subjects and tenacity's, sync, one entry per option (``flaky`` builds the
    function: one that succeeds at once, or one whose first attempt fails)."""
    import tenacity

    from vigil.error_handling.retry import (
        Retrier,
        RetryPolicy,
        retrying,
        wait_exponential,
        with_retry,
    )

    common: dict[str, Any] = {"clock": clock, "registry": registry, "logger": logger}
    vigil: dict[str, Callable[[], Any]] = {
        "plain": with_retry(3, (OSError,), operation="plain", **common)(flaky()),
        "wait=": with_retry(3, (OSError,), operation="wait", wait=wait_exponential(1, 2),
                            **common)(flaky()),
        "retry_if_result": with_retry(3, (OSError,), operation="result",
                                      retry_if_result=_is_none, **common)(rejected()),
        "max_time": with_retry(3, (OSError,), operation="max_time", max_time=60,
                               **common)(flaky()),
        "expose_attempt": with_retry(3, (OSError,), operation="expose", expose_attempt=True,
                                     **common)(flaky()),
    }
    retrier = Retrier(RetryPolicy.from_config(3, (OSError,)), operation="retrier", **common)
    target = flaky()
    vigil["Retrier.call"] = lambda: retrier.call(target)
    vigil["retrying()"] = _sync_loop(retrying(3, (OSError,), operation="loop", **common),
                                     flaky())
    vigil["retrying(retry_if_result)"] = _sync_loop_result(
        retrying(3, (OSError,), operation="loop_result", retry_if_result=_is_none, **common),
        rejected())

    def t_retry(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        options: dict[str, Any] = {"stop": tenacity.stop_after_attempt(3),
                                   "retry": tenacity.retry_if_exception_type(OSError),
                                   "wait": tenacity.wait_exponential(), "reraise": True,
                                   "sleep": clock.sleep}
        options.update(kwargs)
        deco: Callable[[Callable[..., Any]], Callable[..., Any]] = tenacity.retry(**options)
        return deco

    peers: dict[str, Callable[[], Any]] = {
        "plain": t_retry()(flaky()),
        "wait=": t_retry(wait=tenacity.wait_exponential(1, min=1))(flaky()),
        "retry_if_result": t_retry(retry=tenacity.retry_if_exception_type(OSError)
                                   | tenacity.retry_if_result(_is_none))(rejected()),
        "max_time": t_retry(stop=tenacity.stop_after_attempt(3)
                            | tenacity.stop_after_delay(60))(flaky()),
        "retrying()": _sync_loop(tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3), retry=tenacity.retry_if_exception_type(OSError),
            wait=tenacity.wait_exponential(), reraise=True, sleep=clock.sleep), flaky()),
        "retrying(retry_if_result)": _tenacity_loop_result(tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3),
            retry=tenacity.retry_if_exception_type(OSError) | tenacity.retry_if_result(_is_none),
            wait=tenacity.wait_exponential(), reraise=True, sleep=clock.sleep), rejected()),
    }
    return vigil, peers


def option_rows(budget: Budget, *, retried: bool, old: ModuleType | None = None,
                old_label: str = "") -> list[Row]:
    """Table 2 (``retried=False``) or 3: each option against the plain decorator and tenacity
    (and, given ``old``, the plain decorator of vigil before the retry package)."""
    from vigil.monitoring.logs import StructuredLogger

    registry = CollectorRegistry()
    logger = StructuredLogger("bench.retry", stream=cast(IO[str], NullStream()),
                              registry=registry, level="ERROR")
    clock = InstantClock()
    if retried:
        vigil, peers = option_subjects(clock, registry, logger, _fails_every_other_call,
                                       _none_every_other_call)
    else:
        vigil, peers = option_subjects(clock, registry, logger, lambda: _returns_one,
                                       lambda: _returns_one)
    subjects = {f"vigil {k}": sync_runner("f()", {"f": f}) for k, f in vigil.items()}
    subjects.update({f"tenacity {k}": sync_runner("f()", {"f": f}) for k, f in peers.items()})
    if old is not None:
        before = old.with_retry(3, (OSError,), operation="old", clock=clock,
                                registry=CollectorRegistry(), logger=logger)(
            _fails_every_other_call() if retried else _returns_one)
        subjects["old plain"] = sync_runner("f()", {"f": before})
    us = _us(measure(subjects, budget))
    rows: list[Row] = []
    if old is not None:
        rows.append(("plain", us["vigil plain"], f"vigil {old_label}", us["old plain"]))
    for option in vigil:
        mine = us[f"vigil {option}"]
        if option != "plain":
            rows.append((option, mine, "vigil plain", us["vigil plain"]))
        if option in peers:
            rows.append((option, mine, "tenacity", us[f"tenacity {option}"]))
    return rows


def async_loop_rows(budget: Budget) -> list[Row]:
    """``async for attempt in retrying()`` against the plain async decorator and tenacity."""
    import tenacity

    from vigil.error_handling.retry import retrying, with_retry
    from vigil.monitoring.logs import StructuredLogger

    registry = CollectorRegistry()
    logger = StructuredLogger("bench.retry", stream=cast(IO[str], NullStream()),
                              registry=registry, level="ERROR")
    common: dict[str, Any] = {"clock": InstantClock(), "registry": registry, "logger": logger}
    loop = asyncio.new_event_loop()
    try:
        us = _us(measure({
            "plain": async_runner(with_retry(3, (OSError,), operation="a", **common)(
                _returns_one_async), loop),
            "retrying()": async_runner(_async_loop(
                retrying(3, (OSError,), operation="aloop", **common), _returns_one), loop),
            "tenacity": async_runner(_async_loop(tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(3),
                retry=tenacity.retry_if_exception_type(OSError), reraise=True), _returns_one),
                loop),
        }, budget))
    finally:
        loop.close()
    return [("async retrying()", us["retrying()"], "vigil plain async", us["plain"]),
            ("async retrying()", us["retrying()"], "tenacity AsyncRetrying", us["tenacity"])]


def table(title: str, rows: Sequence[Row]) -> str:
    lines = [f"### {title}", "", "| vigil | µs | against | µs | ratio |",
             "| --- | ---: | --- | ---: | ---: |"]
    for subject, mine, peer, theirs in rows:
        ratio = mine / theirs if theirs else math.inf
        lines.append(f"| {subject} | {mine:.2f} | {peer} | {theirs:.2f} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retry_options",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="the commit whose lib/vigil/error_handling/retry.py is 'before' "
                             "(default: the last commit that had that file)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    old, label = old_retry_module(args.baseline)
    if old is None:
        print(f"(no baseline row: {label})", file=sys.stderr)
    facts = machine()
    print(f"Machine: {facts['CPU']}, {facts['cores']} cores, {facts['Python']}; "
          f"tenacity {facts['tenacity']}, backoff {facts['backoff']}; "
          f"{'quick (figures mean nothing)' if args.quick else 'full'} mode.\n")
    print(table("1. Success on the first try: `@with_retry(3, (OSError,))`",
                first_try_rows(budget, old, label)), end="\n\n")
    print(table("2. Options on, success on the first try (sync)",
                option_rows(budget, retried=False) + async_loop_rows(budget)), end="\n\n")
    print(table("3. Options on, one retry then success (sync, sleeps instant, no log line)",
                option_rows(budget, retried=True, old=old, old_label=label)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
