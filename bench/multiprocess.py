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

from prometheus_client import CollectorRegistry

from bench.cases import decorator_subjects, timed_bound
from bench.harness import FULL, QUICK, measure, sync_runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from vigil.monitoring.metrics import PerformanceMonitor
    from vigil.monitoring.multiprocess import MULTIPROCESS

    vigil_fn, duration, calls = decorator_subjects(PerformanceMonitor(registry=CollectorRegistry()))
    peer = timed_bound(lambda: 1, duration, calls, "bench")
    seconds = measure({"vigil": sync_runner("f()", {"f": vigil_fn}),
                       "peer": sync_runner("f()", {"f": peer})}, QUICK if args.quick else FULL)
    print(json.dumps({"multiprocess": MULTIPROCESS, **seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
