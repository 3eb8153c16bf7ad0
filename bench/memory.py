"""Memory under load, in a process of its own: ``python -m bench.memory --records N``.

Each round writes a log line, records a span (with the line inside it), calls a
``@monitor_performance`` function, records a histogram value and sends an alert with a message
never seen before (so de-duplication cannot fold it). A no-op alert handler is registered, so
alerts go through a handler queue too. RSS is read after ``--baseline`` rounds (the buffers are
then full: logs, traces, alerts and metric histories keep 1,000 each by default) and again at
the end, both after a full garbage collection; the growth between the two is printed as JSON.
Library output (the loggers' default stdout) goes to a null stream.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import TextIO, cast

import psutil


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    args = parser.parse_args(argv)
    if not 0 < args.baseline < args.records:
        parser.error("need 0 < --baseline < --records")

    out = sys.stdout
    sys.stdout = cast(TextIO, _Null())
    from vigil.monitoring import (
        StructuredLogger,
        alert_manager,
        monitor_performance,
        performance_monitor,
        trace_context,
    )

    log = StructuredLogger("Bench")
    alert_manager.register_handler(lambda alert: None)

    @monitor_performance("bench.memory")
    def work(i: int) -> int:
        return i

    start = time.perf_counter()
    before = 0
    for i in range(args.records):
        if i == args.baseline:
            before = _rss()
        with trace_context("Bench", "round", {"i": i}):
            log.info("round", metadata={"i": i, "route": f"/r/{i % 50}"})
            work(i)
        performance_monitor.record_histogram("bench.latency_ms", float(i % 100),
                                             tags={"route": f"/r/{i % 50}"})
        alert_manager.send_alert("low", "Bench", f"round {i} crossed a line")
    after = _rss()
    elapsed = time.perf_counter() - start
    alert_manager.close()
    report = {"records": args.records, "baseline": args.baseline, "rss_before": before,
              "rss_after": after, "growth_mb": (after - before) / 2**20, "seconds": elapsed}
    out.write(json.dumps(report) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
