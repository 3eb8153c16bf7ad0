"""Timing in one process: subjects run interleaved, each figure a median of several repeats.

A *runner* is ``run(n) -> seconds``: it makes ``n`` calls and returns the time they took. Sync
subjects are ``timeit.Timer`` statements (the loop is compiled around the statement, so no extra
Python call per iteration); async ones are awaited ``n`` times inside one coroutine on a shared
event loop. Garbage collection stays **on** while timing (production conditions; span and log
recorders allocate, and the collector's share is part of their cost).

:func:`measure` runs every subject of a comparison once per repeat, rotating the order each
repeat, so vigil and its peers share the machine's noise; the figure is the median per call.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

Runner = Callable[[int], float]


@dataclass(frozen=True)
class Budget:
    """How long to measure: ``number`` calls per sample (``None``: calibrated), ``repeats``."""

    quick: bool
    repeats: int
    number: int | None  # fixed calls per sample (quick mode), else calibrated per subject
    sample_seconds: float  # calibration target for one sample
    warmup: int  # calls before measuring (fills ring buffers to their steady state)


FULL = Budget(quick=False, repeats=11, number=None, sample_seconds=0.05, warmup=3000)
QUICK = Budget(quick=True, repeats=3, number=200, sample_seconds=0.0, warmup=50)


def sync_runner(stmt: str, namespace: Mapping[str, Any]) -> Runner:
    """A runner timing ``stmt`` (a statement string) with ``namespace`` as its globals."""
    # timeit disables gc around the loop; its setup re-enables it (the documented idiom).
    timer = timeit.Timer(stmt, setup="_bench_gc.enable()",
                         globals={**namespace, "_bench_gc": gc})

    def run(n: int) -> float:
        return timer.timeit(n)

    return run


def async_runner(fn: Callable[[], Awaitable[Any]], loop: asyncio.AbstractEventLoop) -> Runner:
    """A runner awaiting ``fn()`` ``n`` times in one coroutine, timed inside it."""

    async def body(n: int) -> float:
        perf = time.perf_counter
        start = perf()
        for _ in range(n):
            await fn()
        return perf() - start

    def run(n: int) -> float:
        return loop.run_until_complete(body(n))

    return run


def calibrate(run: Runner, seconds: float) -> int:
    """Calls per sample so that one sample takes about ``seconds``."""
    n = 1
    while True:
        elapsed = run(n)
        if elapsed >= seconds / 5 or n >= 10_000_000:
            return max(1, int(n * seconds / max(elapsed, 1e-9)))
        n *= 10 if elapsed < seconds / 50 else 2


def measure(subjects: Mapping[str, Runner], budget: Budget) -> dict[str, float]:
    """Median seconds per call of each subject, interleaved repeats in this process."""
    names = list(subjects)
    for name in names:
        subjects[name](budget.warmup)
    numbers = {name: (budget.number if budget.number is not None
                      else calibrate(subjects[name], budget.sample_seconds)) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(budget.repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(subjects[name](numbers[name]) / numbers[name])
    return {name: statistics.median(values) for name, values in samples.items()}


# --- the machine ---------------------------------------------------------------------------

PACKAGES = ("vigil", "prometheus-client", "python-json-logger", "opentelemetry-api",
            "opentelemetry-sdk", "circuitbreaker", "pybreaker", "backoff", "tenacity",
            "structlog", "fastapi", "psutil", "starlette", "starlette-exporter",
            "prometheus-fastapi-instrumentator", "opentelemetry-instrumentation-asgi",
            "opentelemetry-exporter-otlp-proto-http")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU, cores, OS, Python and the versions of vigil and its peers."""
    facts = {
        "CPU": cpu_model(),
        "cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for package in PACKAGES:
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = "not installed"
    return facts
