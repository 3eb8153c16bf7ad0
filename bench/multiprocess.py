"""``@monitor_performance`` in a process of its own, in one mode: ``python -m bench.multiprocess``.

prometheus_client fixes its mode at import (``PROMETHEUS_MULTIPROC_DIR`` set or not), so each
mode is measured in a child process started with or without it; in each, vigil's decorator
runs beside the hand-written prometheus_client timing decorator of the single-process row
(children bound once), interleaved. Prints one JSON line: seconds per call of each.
"""

from __future__ import annotations

import argparse
import json
import sys

from prometheus_client import CollectorRegistry, Counter, Histogram

from bench.cases import timed_bound
from bench.harness import FULL, QUICK, measure, sync_runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from vigil.monitoring import instruments
    from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
    from vigil.monitoring.multiprocess import MULTIPROCESS

    monitor = PerformanceMonitor(registry=CollectorRegistry())

    @monitor_performance("bench_vigil", monitor=monitor)
    def vigil_fn() -> int:
        return 1

    registry = CollectorRegistry()
    duration = Histogram("bench_duration_seconds", "Call duration.", ["function"],
                         registry=registry, buckets=instruments.SECOND_BUCKETS)
    calls = Counter("bench_calls_total", "Calls.", ["function"], registry=registry)
    peer = timed_bound(lambda: 1, duration, calls, "bench")
    seconds = measure({"vigil": sync_runner("f()", {"f": vigil_fn}),
                       "peer": sync_runner("f()", {"f": peer})}, QUICK if args.quick else FULL)
    print(json.dumps({"multiprocess": MULTIPROCESS, **seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
